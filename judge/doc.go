// Package judge judges code answers: it compiles and runs a program in a sandbox box on
// each test and gives a verdict (protocol.AC, WA, TLE, MLE, RE, OLE, CE or IE).
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
//   - Evaluate compiles a Program (in the sandbox, with its own limits) and runs it on
//     each Test; the first failing test decides.
//   - Boxes lease a host's boxes so that no two runs share one: MemoryBoxes in one
//     process, RedisBoxes for judge processes sharing a host (BLMOVE, no polling, and a
//     reaper that cleans and returns the boxes of dead workers).
//   - Jobs carry code submissions from the servers to the workers, fair across rooms, then
//     across the players of a room, and bounded, in all and per room (a *BusyError when
//     full); Drop takes a kicked player's waiting jobs out. MemoryJobs on a fair Queue in
//     one process, RedisJobs on a Redis Stream consumer group across processes and hosts
//     (a job whose worker died is handed to another after ClaimIdle, as a new attempt;
//     each distinct test set is stored once).
//   - Workers take jobs from Jobs, lease a box, Evaluate the job in it, release the box,
//     record the verdict (RecordFunc) and complete the job. When Run's context ends, the
//     runs in progress are killed and their jobs get no verdict from these workers:
//     RedisJobs hand them to another worker, MemoryJobs lose them with the process.
//
// Concurrency: Check is pure. The sandboxes' Run and Clean, and Evaluate, are safe to
// call concurrently on different boxes; one box must not be used by two runs at once (the
// caller holds it through a lease). Boxes, Queue and Jobs are safe for concurrent use;
// Workers.Run is called once. Languages and the Default* limits are read without
// locking: change them only before the first run.
package judge
