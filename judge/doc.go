// Package judge judges code answers: it compiles and runs a submission in a sandbox box
// on each test and gives a verdict (AC, WA, TLE, MLE, RE, OLE, CE or IE).
//
// The parts:
//
//   - Sandbox runs one command in a Box under Limits and reports a RunResult (exit status,
//     signal, CPU and wall time, peak memory, which limit killed it, bounded output, and
//     how memory was limited). Bwrap is the bubblewrap backend: no network, read-only
//     system, only /box writable, one uid per box, CPU, wall, memory (cgroup v1 or v2,
//     else RLIMIT_AS), process, output and file-size limits, and a clean box before and
//     after each run. Isolate is the backend on isolate (the IOI's sandbox), used where it
//     is installed and chosen: its --box-id, --cg, --init/--run/--cleanup and --meta.
//     Clean empties a box a dead worker left, for the reaper.
//   - Languages is the table of languages: source name, compile and run commands and
//     compile limits. Add a language by adding a row.
//   - Check compares outputs with the exact, lines, tokens and float:EPS checkers.
//   - Judge compiles a Submission (in the sandbox, with its own limits) and runs it on
//     each Test; the first failing test decides.
//   - Boxes lease a host's boxes so that no two runs share one: MemoryBoxes in one
//     process, RedisBoxes for judge processes sharing a host (BLMOVE, no polling, and a
//     reaper that cleans and returns the boxes of dead workers).
//   - Queue holds submissions waiting for a worker, bounded and fair across players.
//   - Pool judges in the process: Submit puts a Job on a fair Queue (a *BusyError when
//     full), and Run's workers each take a job, lease a box, Judge in it, release it and
//     hand the verdict to OnVerdict, one verdict per job. When Run's context ends, the
//     runs in progress are killed and their jobs, like those still queued, get no verdict
//     from the pool: with Redis another worker reclaims them, in memory they are lost.
//   - RedisJobs carries jobs between judge processes through a Redis Stream consumer
//     group: Enqueue (XADD, a *BusyError past MaxJobs), Next (XREADGROUP, and XAUTOCLAIM
//     of jobs that dead workers left idle for ClaimIdle, as a new attempt), and Complete,
//     which writes a job's verdict once, from its current attempt only, and acknowledges it.
//     It is fair across players: one job per player in the stream, the rest waiting in
//     the player's own list.
//   - Workers judge a RedisJobs' jobs in a judge process, on boxes of Boxes, and record
//     each verdict (OnVerdict) before completing the job.
//
// Concurrency: Check is pure. The sandboxes' Run and Clean, and Judge, are safe to call concurrently on
// different boxes; one box must not be used by two runs at once (the caller holds it
// through a lease). Boxes, Queue, RedisJobs and Pool.Submit are safe for concurrent use;
// Pool.Run and Workers.Run are called once. Languages and the Default* limits are read without locking:
// change them only before the first run.
package judge
