#!/usr/bin/env bash
# Runs Bulb's benchmarks and prints the machine they ran on. Compare figures only within
# one run: the machines are shared and noisy.
#
#   scripts/bench.sh            every part below in its quick mode (--quick: fewer clients,
#                               rounds or iterations), a few minutes in all
#   scripts/bench.sh hub        hub.Start against a sequential send, 1,000 and 10,000 clients
#   scripts/bench.sh engines    Store.Accept of the memory engine, the embedded engine (bbolt,
#                               fsync per group commit) and the Redis engine (unix socket and
#                               TCP loopback; persisting nothing, appendfsync everysec and
#                               appendfsync always), with redis-benchmark of the same Lua
#                               script on the same machine as the Redis engine's ceiling
#   scripts/bench.sh fanout     one start frame to 1,000, 5,000 and 10,000 clients, strategy
#                               after strategy in turn: sequential, pool-20, single-hub, bulb
#                               (hub.Start) and a floor (the frame's bytes written straight
#                               to the same sockets) (scripts/fanout), and the chart of their
#                               receipt-latency CDFs, a panel per size, in
#                               docs/fanout-cdf.svg; the no-argument run does a quick one:
#                               1,000 clients, 3 rounds, no chart
#   scripts/bench.sh e2e        end to end: the real server (its binary, one process, on the
#                               default engine with a fresh data directory) and
#                               scripts/loadgen (another process) on loopback, 10,000 clients
#                               in one room that behave as the student page does (clock sync,
#                               seen reports out of the fan-out's way), 30 starts under the
#                               synced reveal: receipt p50/p99/max, spread, reveal and bias as
#                               loadgen sees them, the server's fairness report of the last
#                               start, server RSS and goroutines per connection, server CPU
#                               per start; then e2e-peer below; --quick (and the no-argument
#                               run): 1,000 clients, 5 starts
#   scripts/bench.sh e2e-peer   end to end against a peer (only this part of e2e): Bulb and
#                               scripts/peer, a broadcast server on the centrifuge library
#                               (Centrifugo's core) serving the same start frame, in turns
#                               (Bulb, peer, Bulb with clients that ack at once as the old
#                               page did; each a fresh server and loadgen), 2 rounds of 10,000
#                               clients and 10 immediate starts: each one's receipt p50, p99
#                               and spread, server CPU per start, RSS per connection, and the
#                               ratios; --quick (and the no-argument run): 1,000 clients, 5
#                               starts
#   scripts/bench.sh fairness   the latency lab (scripts/fairness): the real server (built from
#                               ./server, one process) and 300 students in three latency
#                               groups (5, 25 and 60 ms one way, ± jitter) behind toxiproxy,
#                               equal reaction times, 200 questions in each of four rooms:
#                               arrival and compensated timing under the immediate reveal, and
#                               synced+arrival and synced+compensated, where the students sync
#                               their clocks and light at the start's instant as the page does;
#                               plus a cheater per group that holds back its pongs: each
#                               group's win share against a third, false starts, what the way
#                               back alone costs under synced+arrival, and what the caps give
#                               the cheater; --quick (and the no-argument run): 60 students,
#                               20 questions per room
#   scripts/bench.sh reveal     reveal skew of the synced reveal (scripts/reveal): the real
#                               server (built from ./server, one process) and students that
#                               run the page's clock sync and reveal, in a process per latency
#                               group (5, 25 and 60 ms one way ± jitter, and 5 ms down / 40 ms
#                               up) behind toxiproxy, each on a clock offset by a few seconds:
#                               the spread of the true lighting instants per start, split into
#                               the algorithm's error and the simulation's wake-up jitter, per
#                               group against half the asymmetry, late starts, and the receipt
#                               spread of immediate starts in the same room beside it; 1,000
#                               then 10,000 students, 30 starts per mode; --quick (and the
#                               no-argument run): 200 students, 5 starts per mode
#   scripts/bench.sh judge      the judge on the real bubblewrap sandbox: verdicts per second
#                               of a Pool for a trivial Python and C program (C compiled per
#                               submission, and precompiled for comparison), workers = boxes =
#                               nproc and 1; and one run of the same C binary directly against
#                               through the sandbox, case after case and in back-to-back pairs
#                               (needs root, bwrap and prlimit: Debian bubblewrap and
#                               util-linux; gcc and python3 for the programs); 3 rounds,
#                               medians; --quick (and the no-argument run): one round, 10
#                               verdicts and 50 runs per case
#
#   BENCHTIME=50x scripts/bench.sh hub     iterations of each hub benchmark (default 20x)
#   ACCEPTS=100000 COUNT=5 scripts/bench.sh engines
#                               accepts per run (default 200000) and rounds of every run
#                               (default 3; the table shows medians)
#   CLIENTS=1000 ROUNDS=20 CHART=/tmp/cdf.png PROFILES=/tmp/prof scripts/bench.sh fanout
#                               sizes, comma-separated (default 1000,5000,10000), starts per
#                               strategy and size (default 10), the chart's file (.svg, .png
#                               or .pdf; default docs/fanout-cdf.svg), and a directory for a
#                               CPU profile of the server side of every measured round (none
#                               by default: the profiler costs CPU; go tool pprof merges a
#                               strategy's rounds: go tool pprof -top /tmp/prof/10000-bulb-*)
#   CLIENTS=10000 STARTS=30 RATE=1000 SETTLE=10 REVEAL=synced PEER_STARTS=10 PEER_ROUNDS=2 scripts/bench.sh e2e
#                               clients, starts (one question each), the loadgen's
#                               connections per second (default 1000), the seconds of
#                               idling between the two idle memory samples (default 10), the
#                               quiz's reveal (synced, the default, or immediate); and for
#                               e2e-peer, the starts of each turn and the rounds (CLIENTS and
#                               RATE apply to it too)
#   CLIENTS=300 QUESTIONS=200 MODES=synced+compensated RUNS=5 scripts/bench.sh fairness
#                               honest students per room (a multiple of 3), questions per
#                               room (at most 200: a quiz's limit), the rooms (default
#                               arrival,compensated,synced+arrival,synced+compensated), and
#                               runs (default 1; more: seeds 1 to RUNS, each run's report
#                               kept, then their wins pooled by fairness pool, e.g. 5 runs
#                               for a share over 1,000 questions)
#   CLIENTS="1000 10000" STARTS=30 scripts/bench.sh reveal
#                               students, a run per figure (default "1000 10000"), and starts
#                               per reveal mode (at most 100)
#   VERDICTS=50 RUNS=200 COUNT=5 scripts/bench.sh judge
#                               verdicts per case (default 20), runs per case of the overhead
#                               benchmark (default 100) and rounds of both (default 3)
#
# e2e needs curl and jq (Debian: apt-get install curl jq) and an open-file hard limit above
# the number of clients (the script raises the soft limit to the hard one).
# engines needs redis-server, redis-cli and redis-benchmark (Debian: redis-server and
# redis-tools).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/bench.sh [hub|engines|fanout|e2e|e2e-peer|fairness|reveal|judge [--quick]]" >&2; exit 2; }

machine() {
  echo "machine: $(nproc) cores, $(uname -sr), $(go version | cut -d' ' -f3-)"
  if command -v redis-server >/dev/null; then
    echo "redis:   $(redis-server --version)"
  fi
}

# show prints a command, quoted so that it can be pasted into a shell, then runs it.
show() {
  printf '$'; printf ' %q' "$@"; printf '\n'
  "$@"
}

# hub [--quick]: the quick run takes 5 iterations of each benchmark.
hub() {
  if [ "${1:-}" = --quick ]; then BENCHTIME=${BENCHTIME:-5x}; fi
  echo
  echo "== hub: broadcast of a start frame"
  echo "command: go test -run '^\$' -bench Broadcast -benchtime ${BENCHTIME:=20x} ./hub"
  go test -run '^$' -bench Broadcast -benchtime "$BENCHTIME" ./hub
}

# fanout [--quick]: scripts/fanout, which prints its own table, machine and command.
fanout() {
  echo
  echo "== fanout: one start frame to every client, strategy after strategy in turn"
  if [ "${1:-}" = --quick ]; then
    show go run ./scripts/fanout --quick ${CHART:+--chart "$CHART"} ${PROFILES:+--cpuprofile "$PROFILES"}
  else
    show go run ./scripts/fanout --clients "${CLIENTS:-1000,5000,10000}" --rounds "${ROUNDS:-10}" \
      --chart "${CHART:-docs/fanout-cdf.svg}" ${PROFILES:+--cpuprofile "$PROFILES"}
  fi
}

# The throwaway redis-server of the engines part, and the server and loadgen of the e2e
# part, stopped on any exit.
tmp="" redis_pid="" server_pid="" loadgen_pid=""
stop_redis() {
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
  fi
}
cleanup() {
  stop_redis
  local pid
  for pid in "$loadgen_pid" "$server_pid"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  loadgen_pid="" server_pid=""
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# median prints the median of the numbers on stdin (the lower one of an even count).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'; }

# engines [--quick]: the quick run takes one round of 50,000 accepts.
engines() {
  local accepts=${ACCEPTS:-200000} count=${COUNT:-3} clients=64
  if [ "${1:-}" = --quick ]; then accepts=${ACCEPTS:-50000} count=${COUNT:-1}; fi
  local prog
  for prog in redis-server redis-cli redis-benchmark; do
    command -v "$prog" >/dev/null || {
      echo "bench.sh engines: $prog is missing (Debian: apt-get install redis-server redis-tools)" >&2
      exit 1
    }
  done
  echo
  echo "== engines: Store.Accept, $clients concurrent callers, $accepts accepts per run, $count rounds"
  tmp=$(mktemp -d /tmp/bulb-bench.XXXXXX)
  local sock=$tmp/redis.sock cli
  redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --dir "$tmp" \
    --save "" --appendonly no --logfile "$tmp/redis.log" &
  redis_pid=$!
  cli=(redis-cli -s "$sock")
  local tries=0
  until "${cli[@]}" PING >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ] || ! kill -0 "$redis_pid" 2>/dev/null; then
      echo "bench.sh engines: redis-server did not start:" >&2
      cat "$tmp/redis.log" >&2
      exit 1
    fi
    sleep 0.05
  done
  # The same server on a TCP loopback port too, for the TCP ceiling: Redis 7 binds at run
  # time; try a few random ports until one is free.
  local port="" p
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    p=$((20000 + RANDOM % 40000))
    if "${cli[@]}" CONFIG SET bind 127.0.0.1 port "$p" 2>/dev/null | grep -qx OK; then
      port=$p
      break
    fi
  done

  # The ceiling's script is the Redis engine's own: quiz/award.lua then quiz/accept.lua,
  # concatenated as store_redis.go does (acceptScript), after one line that makes the
  # random player exist (HSETNX into the players hash), so that every call takes accept.lua's
  # whole path: HMGET room, HEXISTS answered, HGET players, TIME, LLEN, INCR, HINCRBY,
  # RPUSH, HSET, two cjson decodes and one encode. That HSETNX is one write per call more
  # than the engine's accept (its players exist beforehand): the ceiling is a little low.
  # Each call answers for a random player among 10^8 (__rand_int__, 12 digits, as the Go
  # benchmark's player IDs), so repeats, which accept.lua refuses early, are about 0.1%;
  # the answer list's length after each run says how many were accepted. The arguments are
  # what RedisStore.Accept sends for BenchmarkAccept's quiz: the speed rule, 100 points,
  # 20 s, question 1 live, a correct choice.
  local script=$tmp/accept-bench.lua sha
  {
    # a player as add_player.lua stores it, of the same size as the Go benchmark's
    printf '%s\n' "redis.call('HSETNX', KEYS[2], ARGV[2], '{\"seq\":1,\"playerId\":\"' .. ARGV[2] .. '\",\"name\":\"n' .. ARGV[2] .. '\",\"token\":\"0123456789abcdef0123456789abcdef\",\"joinedAt\":\"2026-01-01T00:00:00.123456789Z\"}') -- bench.sh"
    cat quiz/award.lua quiz/accept.lua
  } >"$script"
  sha=$("${cli[@]}" -x SCRIPT LOAD <"$script")
  local k="bench:{ceiling}:"
  local keys=("${k}room" "${k}players" "${k}scores" "${k}q:1:answers" "${k}q:1:answered" "${k}q:1:correct"
    "${k}q:1:solved" "${k}active")
  local head='{"n":1,"playerId":"000000000000","answer":{"choice":2},"correct":true}'
  local scoring='{"speed":true,"winners":[100],"points":100,"timeLimitNs":20000000000,"deferred":false}'
  # ARGV as RedisStore.Accept passes them: n, player, correct, head, scoring, quiz version,
  # the response's key, not code, the most code submissions, and now in µs (the room's
  # activity: fixed here, RedisStore sends its clock's).
  local argv=(1 __rand_int__ 1 "$head" "$scoring" 0 '{"choice":2}' 0 50 "$(($(date +%s%N) / 1000))")
  local evalsha=(EVALSHA "$sha" "${#keys[@]}" "${keys[@]}" "${argv[@]}")
  echo "ceiling script ($sha): $script, as follows"
  echo "  $(head -n1 "$script")"
  echo "  quiz/award.lua, quiz/accept.lua"

  # ceiling ROUND NAME ARGS...: redis-benchmark of evalsha on a fresh question, with ARGS
  # to reach the server. Appends "ROUND rps p50-µs p99-µs" to $tmp/NAME.
  ceiling() {
    local round=$1 name=$2 out
    shift 2
    "${cli[@]}" DEL "${keys[@]}" >/dev/null
    "${cli[@]}" HSET "${k}room" current 1 phase live startedAt "$(($(date +%s%N) / 1000))" quizVersion 0 >/dev/null
    out=$(show redis-benchmark "$@" -c "$clients" -n "$accepts" -r 100000000 --csv "${evalsha[@]}")
    # The CSV's first field repeats the command: print the figures only.
    echo "$out" | head -n1
    echo "$out" | tail -n1 | awk -F'","' '{ sub(/"$/, "", $NF)
      printf "requests/s %s; latency ms: avg %s, min %s, p50 %s, p95 %s, p99 %s, max %s\n",
        $(NF-6), $(NF-5), $(NF-4), $(NF-3), $(NF-2), $(NF-1), $NF }'
    local accepted
    accepted=$("${cli[@]}" LLEN "${k}q:1:answers")
    echo "accepted: $accepted of $accepts"
    if [ "$((accepted * 100))" -lt "$((accepts * 99))" ]; then
      # accept.lua refused most calls: its arguments or keys no longer match the above
      echo "bench.sh engines: the ceiling's script refused $((accepts - accepted)) of $accepts answers:" \
        "$("${cli[@]}" "${evalsha[@]/__rand_int__/000000000001}" | head -n1)" >&2
      exit 1
    fi
    # rps and latencies are the last 7 fields; the test's name holds commas and quotes.
    echo "$out" | tail -n1 |
      awk -F'","' -v r="$round" '{ sub(/"$/, "", $NF); print r, $(NF-6), $(NF-3) * 1000, $(NF-1) * 1000 }' >>"$tmp/$name"
  }

  # Rounds of the ceilings then the engines, so that each ratio below compares runs of one
  # round, minutes apart at most, on a machine whose load drifts.
  local round
  for round in $(seq "$count"); do
    echo
    echo "-- round $round of $count: ceiling over the unix socket"
    ceiling "$round" unix -s "$sock"
    if [ -n "$port" ]; then
      echo "-- round $round of $count: ceiling over TCP loopback"
      ceiling "$round" tcp -h 127.0.0.1 -p "$port"
    else
      echo "(no free TCP port found: no TCP ceiling)"
    fi
    "${cli[@]}" DEL "${keys[@]}" >/dev/null
    echo "-- round $round of $count: the engines (BenchmarkAccept starts a redis-server of its own: internal/redistest)"
    # redistest's readiness probe logs its failed dials while the server starts: not results.
    show go test -run '^$' -bench '^BenchmarkAccept$' -benchtime "${accepts}x" -count 1 -timeout 60m ./quiz 2>&1 |
      grep -v 'failed to dial after 1 attempts: dial unix .*redis.sock: connect: no such file or directory' |
      tee "$tmp/go.txt"
    awk -v r="$round" -v dir="$tmp" '/^BenchmarkAccept\/engine=/ {
        name = $1; sub(/^BenchmarkAccept\/engine=/, "", name); sub(/-[0-9]+$/, "", name)
        delete m; for (i = 3; i < NF; i += 2) m[$(i + 1)] = $i
        print r, m["accepts/s"], m["p50-µs"], m["p99-µs"], m["changes/commit"] >> (dir "/" name)
      }' "$tmp/go.txt"
  done
  stop_redis

  # col FILE N: the median of figure N (1 accepts/s, 2 p50, 3 p99, 4 changes per commit) of
  # FILE's rounds, or n/a.
  col() {
    if [ -s "$1" ]; then
      awk -v n="$2" '{ print $(n + 1) }' "$1" | median | awk '{ printf ($1 < 10 ? "%.2f\n" : "%.0f\n"), $1 }'
    else
      echo n/a
    fi
  }
  # ratios A B: A's accepts/s over B's, round by round: "median (each round's)".
  ratios() {
    [ -s "$1" ] && [ -s "$2" ] || { echo n/a; return; }
    local each
    each=$(awk 'NR == FNR { b[$1] = $2; next } ($1 in b) && b[$1] > 0 { printf "%.2f\n", $2 / b[$1] }' "$2" "$1")
    [ -n "$each" ] || { echo n/a; return; }
    echo "$(echo "$each" | median) ($(echo $each | sed 's/ /, /g'))"
  }
  echo
  echo "== engines: medians of $count rounds; $accepts accepts per run, $clients concurrent callers"
  printf '%-34s %10s %11s %11s  %s\n' "" accepts/s "p50-µs" "p99-µs" "accepts/s ÷ ceiling's, by round" # µ, ÷: 2 bytes
  local row label file ceil
  for row in "memory|memory engine|" "embedded|embedded engine (fsync per commit)|" \
    "redis|Redis engine, unix socket|unix" "redis-tcp|Redis engine, TCP loopback|tcp" \
    "redis-everysec|Redis engine, appendfsync everysec|unix" "redis-always|Redis engine, appendfsync always|unix" \
    "unix|ceiling: redis-benchmark, unix|" "tcp|ceiling: redis-benchmark, TCP|"; do
    IFS='|' read -r file label ceil <<<"$row"
    printf '%-34s %10s %10s %10s  %s\n' "$label" "$(col "$tmp/$file" 1)" "$(col "$tmp/$file" 2)" "$(col "$tmp/$file" 3)" \
      "$(if [ -n "$ceil" ]; then ratios "$tmp/$file" "$tmp/$ceil"; fi)"
  done
  echo "memory engine ÷ Redis engine (unix), accepts/s, by round: $(ratios "$tmp/memory" "$tmp/redis")"
  echo "embedded engine ÷ Redis engine with appendfsync everysec: $(ratios "$tmp/embedded" "$tmp/redis-everysec")"
  echo "embedded engine ÷ Redis engine with appendfsync always (the same promise): $(ratios "$tmp/embedded" "$tmp/redis-always")"
  echo "embedded engine, answers per commit (group commit), median: $(col "$tmp/embedded" 4)"
  echo "(ceiling rows: redis-benchmark's requests/s and its p50 and p99; engine rows: Store.Accept"
  echo " as its caller sees it, with the Go client, JSON and the benchmark on the same 2 cores)"
}

# The e2e parts' helpers. Bash scopes variables dynamically: they read and set the
# caller's port, token, base and server_pid (and the global loadgen_pid).

# need_e2e_tools: curl and jq, and as many open files as allowed (server and loadgen are
# separate processes: each needs one descriptor per client).
need_e2e_tools() {
  local prog
  for prog in curl jq; do
    command -v "$prog" >/dev/null || {
      echo "bench.sh e2e: $prog is missing (Debian: apt-get install curl jq)" >&2
      exit 1
    }
  done
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# await_healthy LOG: waits until the server at $base answers /healthz.
await_healthy() {
  local tries=0
  until curl -fsS "$base/healthz" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 200 ] || ! kill -0 "$server_pid" 2>/dev/null; then
      echo "bench.sh e2e: the server did not start:" >&2
      cat "$1" >&2
      exit 1
    fi
    sleep 0.05
  done
}

# start_bulb LOG: Bulb's binary ($tmp/bulb) on a free loopback port, run directly, so that
# server_pid is the server's; on the default engine, the embedded one, as users run it,
# with a fresh data directory under $tmp.
start_bulb() {
  port=$(free_port)
  token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  base=http://127.0.0.1:$port
  local data
  data=$(mktemp -d "$tmp/data.XXXXXX")
  # Every client comes from 127.0.0.1: no cap of connections or joins per address.
  echo "\$ BULB_ADMIN_TOKEN=… BULB_ADDR=127.0.0.1:$port BULB_DATA=$data BULB_LOG_LEVEL=info BULB_CONNS_PER_ADDR=0 BULB_JOIN_RATE=0 $tmp/bulb &"
  BULB_ADMIN_TOKEN=$token BULB_ADDR=127.0.0.1:$port BULB_DATA=$data BULB_LOG_LEVEL=info BULB_CONNS_PER_ADDR=0 BULB_JOIN_RATE=0 \
    "$tmp/bulb" >"$1" 2>&1 &
  server_pid=$!
  await_healthy "$1"
}

# start_peer LOG: the peer's binary ($tmp/peer, scripts/peer) likewise.
start_peer() {
  port=$(free_port)
  base=http://127.0.0.1:$port
  echo "\$ $tmp/peer --addr 127.0.0.1:$port &"
  "$tmp/peer" --addr "127.0.0.1:$port" >"$1" 2>&1 &
  server_pid=$!
  await_healthy "$1"
}

stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}

# metric NAME: the value of an unlabelled metric; rss: VmRSS in KiB; ticks: utime+stime.
metric() { curl -fsS "$base/metrics" | awk -v m="$1" '$1 == m && !done { print $2 + 0; done = 1 }'; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; } # comm is "bulb" or "peer": no spaces
api() { # api METHOD PATH [BODY]
  curl -fsS -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "$base$2"
}
# e2e_quiz STARTS [REVEAL]: one choice question per start, all alike, choice 0 right.
e2e_quiz() {
  jq -cn --argjson n "$1" --arg reveal "${2:-}" '{title: "bench e2e"} + (if $reveal == "" then {} else {reveal: $reveal} end) +
    {questions: [range($n) | {kind: "choice", text: "Which?", choices: ["a", "b", "c", "d"], answer: 0}]}'
}

# await_clients N CMD...: waits until CMD prints at least N (the server's count of
# connected clients), or as many as loadgen connected once it is done connecting (the
# others failed: its report says why), while loadgen runs.
await_clients() {
  local want=$1 deadline=$((SECONDS + $1 / rate + 60)) got=0 settled
  shift
  while :; do
    got=$("$@")
    [ "${got:-0}" -ge "$want" ] && break
    settled=$(sed -n 's|^loadgen: done connecting: \([0-9]*\)/.*|\1|p' "$tmp/loadgen.err")
    if [ -n "$settled" ] && [ "${got:-0}" -ge "$settled" ]; then
      echo "(only $got of $want clients connected: $(grep 'done connecting' "$tmp/loadgen.err"))"
      break
    fi
    if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$loadgen_pid" 2>/dev/null; then
      echo "bench.sh e2e: $got of $want clients connected; loadgen said:" >&2
      tail -n 20 "$tmp/loadgen.err" >&2
      exit 1
    fi
    sleep 1
  done
}

# await_loadgen: loadgen stops by itself --grace (3 s) after the last start; past a
# minute, interrupt it (SIGINT: it still prints its report), then give up on it.
await_loadgen() {
  local lg_rc=0 waited=0
  while kill -0 "$loadgen_pid" 2>/dev/null && [ "$waited" -lt 60 ]; do sleep 1; waited=$((waited + 1)); done
  if kill -0 "$loadgen_pid" 2>/dev/null; then
    echo "bench.sh e2e: loadgen still running 60 s after the last close: interrupting it" >&2
    kill -INT "$loadgen_pid" 2>/dev/null || true
    waited=0
    while kill -0 "$loadgen_pid" 2>/dev/null && [ "$waited" -lt 30 ]; do sleep 1; waited=$((waited + 1)); done
    kill -KILL "$loadgen_pid" 2>/dev/null || true
  fi
  wait "$loadgen_pid" || lg_rc=$?
  loadgen_pid=""
  if [ "$lg_rc" -ne 0 ]; then
    echo "bench.sh e2e: loadgen exited with $lg_rc:" >&2
    tail -n 20 "$tmp/loadgen.err" >&2
  fi
}

# e2e [--quick]: the server's binary and scripts/loadgen's, each in its own process, on
# loopback; the script plays the host with curl. Server figures come from /proc/PID (the
# binary runs directly, so PID is the server's) and from its /metrics. The clients behave
# as the student page does (scripts/loadgen): clock sync, seen reports.
e2e() {
  local clients=${CLIENTS:-10000} starts=${STARTS:-30} rate=${RATE:-1000} reveal=${REVEAL:-synced}
  if [ "${1:-}" = --quick ]; then clients=1000 starts=5; fi
  need_e2e_tools
  echo
  echo "== e2e: the server and scripts/loadgen in separate processes on loopback:" \
    "$clients clients in one room, $starts starts, $reveal reveal (open-file limit $(ulimit -n);" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg))"
  [ -n "$tmp" ] || tmp=$(mktemp -d /tmp/bulb-bench.XXXXXX) # removed on exit
  show go build -o "$tmp/bulb" ./server
  show go build -o "$tmp/loadgen" ./scripts/loadgen
  local port token base
  start_bulb "$tmp/server.log"
  local hz rss0 gor0 heap0 stack0
  hz=$(getconf CLK_TCK)
  rss0=$(rss) gor0=$(metric go_goroutines)
  heap0=$(metric go_memstats_heap_inuse_bytes) stack0=$(metric go_memstats_stack_inuse_bytes)

  # One choice question per start; every client answers choice 0, the right one.
  local quiz code
  quiz=$(e2e_quiz "$starts" "$reveal")
  echo "\$ curl -X POST -H 'Authorization: Bearer …' --data '{\"title\":\"bench e2e\",\"reveal\":\"$reveal\",\"questions\":[… $starts choice questions …]}' $base/api/rooms"
  code=$(api POST /api/rooms "$quiz" | jq -r .code)
  echo "room $code"

  local lg=("$tmp/loadgen" --url "$base" --room "$code" --clients "$clients" --rate "$rate"
    --starts "$starts" --reaction-ms 200,50 --choice 0 --json)
  printf '$'; printf ' %q' "${lg[@]}"; printf ' > loadgen.json &\n'
  "${lg[@]}" >"$tmp/loadgen.json" 2>"$tmp/loadgen.err" &
  loadgen_pid=$!
  await_clients "$clients" metric bulb_hub_connections
  sleep 1 # let the last joins settle
  local rss1 gor1 conns1 heap1 stack1 rss1s heap1s stack1s settle=${SETTLE:-10}
  rss1=$(rss) gor1=$(metric go_goroutines) conns1=$(metric bulb_hub_connections)
  heap1=$(metric go_memstats_heap_inuse_bytes) stack1=$(metric go_memstats_stack_inuse_bytes)
  echo "connected: $conns1 (server's bulb_hub_connections)"
  # The same after $settle s more of idling, as a room waits for its first question: the
  # ramp's garbage collected, and the pages it freed returned to the system by the runtime.
  sleep "$settle"
  rss1s=$(rss) heap1s=$(metric go_memstats_heap_inuse_bytes) stack1s=$(metric go_memstats_stack_inuse_bytes)

  # Per question: open, start (CPU ticks around the start call, which returns once the frame
  # was sent to every recipient), ~1 s from the bulb's light for reports and answers (under
  # the synced reveal the light comes at the start's reveal instant, up to a second later),
  # close (CPU ticks from before the start to after the close: fan-out, reports, answers and
  # close together).
  local n t0 t1 t2 start_ticks=0 cycle_ticks=0 rss2="" gor2="" after=0 resp recips="" lit
  for n in $(seq "$starts"); do
    api POST "/api/rooms/$code/questions/$n/open" >/dev/null
    sleep 0.2
    t0=$(ticks)
    resp=$(api POST "/api/rooms/$code/questions/$n/start")
    t1=$(ticks)
    recips="$recips $(echo "$resp" | jq -r .recipients)"
    lit=$(echo "$resp" | jq -r '.revealAt // empty')
    if [ -n "$lit" ]; then
      sleep "$(awk -v at="$(date -d "$lit" +%s.%N)" -v now="$(date +%s.%N)" 'BEGIN { printf "%.3f", (at > now ? at - now : 0) + 1 }')"
    else
      sleep 1
    fi
    api POST "/api/rooms/$code/questions/$n/close" >/dev/null
    t2=$(ticks)
    start_ticks=$((start_ticks + t1 - t0)) cycle_ticks=$((cycle_ticks + t2 - t0))
    # "after" is the last sample with every client still connected: loadgen leaves once it
    # has seen the last start and answered it, often before that question's close.
    if [ "$(metric bulb_hub_connections)" -ge "$clients" ]; then
      rss2=$(rss) gor2=$(metric go_goroutines) after=$n
    fi
    sleep 0.2
  done
  echo "start calls' recipients:$recips"
  echo "(waiting for loadgen to finish)"
  await_loadgen
  local rss3 gor3
  rss3=$(rss) gor3=$(metric go_goroutines)
  if [ -s "$tmp/server.log" ]; then
    echo "server log ($(wc -l <"$tmp/server.log") lines), by message, most frequent first:"
    sed -E 's/.*(level=[A-Z]+) (msg=("[^"]*"|[^ ]*)).* ((reason|err)=("[^"]*"|[^ ]*)).*/\1 \2 \4/; t
      s/.*(level=[A-Z]+) (msg=("[^"]*"|[^ ]*)).*/\1 \2/' "$tmp/server.log" | sort | uniq -c | sort -rn | head -n 8
  fi
  if [ ! -s "$tmp/loadgen.json" ]; then
    echo "bench.sh e2e: loadgen printed no report" >&2
    exit 1
  fi

  local j=$tmp/loadgen.json
  echo
  echo "== e2e: $clients clients, $starts starts; loadgen's view (receipt times from each start's first receipt, µs)"
  jq -r '"connected \(.connected) of \(.clients), failed \(.failed), dropped \(.dropped); starts seen \(.startsSeen); clock syncs \(.syncs) (\(.syncReplies) answered); seen \(.seen), acks \(.acks), answers \(.answers), results \(.results)" +
    (if (.answerErrors // {}) == {} then "" else "; answer errors \(.answerErrors)" end) +
    (if (.failures // {}) == {} then "" else "\nfailures: \(.failures)" end)' "$j"
  jq -r 'def med: sort | if length == 0 then "n/a" else .[((length + 1) / 2 | floor) - 1] end;
    def mx: if length == 0 then "n/a" else max end;
    .starts as $s |
    "receipt, median over starts (max over starts): p50 \([$s[].p50Us] | med) (\([$s[].p50Us] | mx)), p99 \([$s[].p99Us] | med) (\([$s[].p99Us] | mx)), max \([$s[].maxUs] | med) (\([$s[].maxUs] | mx)), spread \([$s[].spreadUs] | med) (\([$s[].spreadUs] | mx)); receivers per start: \([$s[].receivers] | map(tostring) | join(" "))"' "$j"
  jq -r 'def med: sort | if length == 0 then "n/a" else .[((length + 1) / 2 | floor) - 1] end;
    [.starts[].reveal | select(. != null)] as $r |
    (if .clockErrorMs then "clock error bound when lit: p50 \(.clockErrorMs.p50 * 1000 | round) µs, max \(.clockErrorMs.max * 1000 | round) µs" else empty end),
    (if ($r | length) > 0 then "reveal (light − the start'"'"'s instant, server time by each client'"'"'s synced clock), median over starts: p50 \([$r[].p50Us] | med), p99 \([$r[].p99Us] | med), spread \([$r[].spreadUs] | med); late \([$r[].late] | add) of \([$r[].lit] | add) lights" else empty end)' "$j"
  jq -r '"bias: \(.uniformity.verdict)", (.uniformity.tests[] | "  \(.name): " + (if .applied then "n \(.n), stat \(.stat * 1000 | round / 1000), p \(.p * 10000 | round / 10000)" else "not applied" end) + (if .note then " (\(.note))" else "" end)),
    "  clients flagged: \([.clientBias[] | select(.flagged)] | length) of \(.clientBias | length)"' "$j"

  echo
  echo "== e2e: the server's view"
  echo "\$ curl -H 'Authorization: Bearer …' '$base/api/rooms/$code/fairness?limit=1'"
  api GET "/api/rooms/$code/fairness?limit=1" | jq -r '.starts[0] |
    "last start (seq \(.seq), n \(.n)): recipients \(.recipients), acked \(.acked), dropped \(.dropped); writtenUs p50 \(.writtenUs.p50), p99 \(.writtenUs.p99), max \(.writtenUs.max); spreadUs \(.spreadUs); ackUs p50 \(.ackUs.p50), p99 \(.ackUs.p99); ackSpreadUs \(.ackSpreadUs)" +
    (if .reveal then "\nits reveal: \(.reveal | tojson)" else "" end)'
  awk -v c="$clients" -v r0="$rss0" -v r1="$rss1" -v r1s="$rss1s" -v settle="$settle" -v r2="$rss2" -v r3="$rss3" \
    -v h0="$heap0" -v h1="$heap1" -v h1s="$heap1s" -v k0="$stack0" -v k1="$stack1" -v k1s="$stack1s" \
    -v g0="$gor0" -v g1="$gor1" -v g2="$gor2" -v g3="$gor3" -v a="$after" -v s="$starts" 'BEGIN {
    printf "server RSS: %d KiB before clients, %d idle with %d clients (%d after %d s more), ", r0, r1, c, r1s, settle
    if (r2 != "") printf "%d after start %d of %d, ", r2, a, s
    printf "%d once loadgen left\n", r3
    printf "RSS per connection: idle %.1f KiB (%.1f after %d s more)", (r1 - r0) / c, (r1s - r0) / c, settle
    if (r2 != "") printf ", after the starts %.1f KiB", (r2 - r0) / c
    printf "\n"
    printf "of which, per connection: Go heap in use %.1f KiB (%.1f after %d s more), goroutine stacks %.1f KiB (%.1f)\n",
      (h1 - h0) / 1024 / c, (h1s - h0) / 1024 / c, settle, (k1 - k0) / 1024 / c, (k1s - k0) / 1024 / c
    printf "goroutines: %d before, %d idle (%.2f per connection)", g0, g1, (g1 - g0) / c
    if (g2 != "") printf ", %d after start %d (%.2f per connection)", g2, a, (g2 - g0) / c
    printf ", %d once loadgen left\n", g3
    if (r2 == "") print "(no sample after a start with every client still connected)"
  }'
  awk -v hz="$hz" -v st="$start_ticks" -v cy="$cycle_ticks" -v s="$starts" 'BEGIN {
    printf "server CPU per start: %.0f ms in the start call (fan-out), %.0f ms from start to close (fan-out, reports, answers, close); ticks of %.0f ms\n",
      st * 1000 / hz / s, cy * 1000 / hz / s, 1000 / hz
  }'
  echo "(server, loadgen and curl share the same $(nproc) cores; loadgen's receipt times include its own scheduling;" \
    "load average at the end $(cut -d' ' -f1-3 /proc/loadavg))"
  stop_server
}

# e2e_peer [--quick]: Bulb against a peer, scripts/peer (a broadcast server on the
# centrifuge library, Centrifugo's core), in turns of one fresh server process and one
# fresh loadgen each: per round Bulb with page-like clients (clock sync, seen reports),
# the peer with the same clients, and Bulb with clients that ack every start at once (the
# old page), so A B C A B C; the same clients, starts and pace for all, the immediate
# reveal (Bulb's immediate start is the peer's start frame, byte for byte), no answers.
e2e_peer() {
  local clients=${CLIENTS:-10000} starts=${PEER_STARTS:-10} rounds=${PEER_ROUNDS:-2} rate=${RATE:-1000}
  if [ "${1:-}" = --quick ]; then clients=1000 starts=5 rounds=2; fi
  need_e2e_tools
  echo
  echo "== e2e against a peer (Centrifuge): $clients clients, $starts starts per turn, $rounds rounds of" \
    "bulb, peer, bulb-ack (open-file limit $(ulimit -n); load average $(cut -d' ' -f1-3 /proc/loadavg))"
  [ -n "$tmp" ] || tmp=$(mktemp -d /tmp/bulb-bench.XXXXXX) # removed on exit
  show go build -o "$tmp/bulb" ./server
  show go build -o "$tmp/loadgen" ./scripts/loadgen
  show go build -o "$tmp/peer" ./scripts/peer
  : >"$tmp/turn-starts"
  : >"$tmp/turns"
  local round system
  for round in $(seq "$rounds"); do
    for system in bulb peer bulb-ack; do
      peer_turn "$system" "$round"
    done
  done
  peer_table
}

# peer_turn SYSTEM ROUND: one turn of e2e_peer (with its clients, starts and rate).
# Appends "SYSTEM ROUND seq p50 p99 spread receivers" per start to $tmp/turn-starts and
# "SYSTEM ROUND CPU-ms-call CPU-ms-1s RSS-KiB-per-connection load" to $tmp/turns.
peer_turn() {
  local system=$1 round=$2 port token base code load lg json=$tmp/turn-$1-$2.json
  load=$(cut -d' ' -f1 /proc/loadavg)
  echo
  echo "-- round $round of $rounds: $system (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  if [ "$system" = peer ]; then
    start_peer "$tmp/peer-$round.log"
    lg=("$tmp/loadgen" --protocol centrifuge --url "$base" --room room)
  else
    start_bulb "$tmp/$system-$round.log"
    code=$(api POST /api/rooms "$(e2e_quiz "$starts" immediate)" | jq -r .code)
    echo "room $code: $starts choice questions, immediate reveal"
    lg=("$tmp/loadgen" --url "$base" --room "$code")
    if [ "$system" = bulb-ack ]; then lg+=(--ack); fi
  fi
  lg+=(--clients "$clients" --rate "$rate" --starts "$starts" --json)
  printf '$'; printf ' %q' "${lg[@]}"; printf ' > %s &\n' "${json##*/}"
  local rss0
  rss0=$(rss)
  "${lg[@]}" >"$json" 2>"$tmp/loadgen.err" &
  loadgen_pid=$!
  if [ "$system" = peer ]; then
    await_clients "$clients" peer_subscribers
  else
    await_clients "$clients" metric bulb_hub_connections
  fi
  sleep 1 # the last clients' clock sync bursts
  local rss1 n t0 t1 t2 call=0 window=0
  rss1=$(rss)
  # As e2e, but a second between the open (Bulb's question frame to every client) and the
  # start, so that no fan-out but the start's is under way: open (Bulb), 1 s, start (CPU
  # ticks around the call), 1 s, close (Bulb); the window is the start call and the second
  # after it (the clients' reports), without the close.
  for n in $(seq "$starts"); do
    if [ "$system" != peer ]; then api POST "/api/rooms/$code/questions/$n/open" >/dev/null; fi
    sleep 1
    t0=$(ticks)
    if [ "$system" = peer ]; then
      curl -fsS -X POST "$base/start?n=$n" >/dev/null
    else
      api POST "/api/rooms/$code/questions/$n/start" >/dev/null
    fi
    t1=$(ticks)
    sleep 1
    t2=$(ticks)
    if [ "$system" != peer ]; then api POST "/api/rooms/$code/questions/$n/close" >/dev/null; fi
    call=$((call + t1 - t0)) window=$((window + t2 - t0))
    sleep 0.2
  done
  await_loadgen
  stop_server
  if [ ! -s "$json" ]; then
    echo "bench.sh e2e: loadgen printed no report" >&2
    exit 1
  fi
  jq -r '"connected \(.connected) of \(.clients), failed \(.failed), dropped \(.dropped); starts seen \(.startsSeen); clock syncs \(.syncs) (\(.syncReplies) answered); seen \(.seen), acks \(.acks)" +
    (if (.failures // {}) == {} then "" else "; failures: \(.failures)" end)' "$json"
  jq -r --arg s "$system" --arg r "$round" '.starts[] | "\($s) \($r) \(.seq) \(.p50Us) \(.p99Us) \(.spreadUs) \(.receivers)"' "$json" |
    tee -a "$tmp/turn-starts" | awk '{ printf "  start %s: p50 %.1f ms, p99 %.1f ms, spread %.1f ms, %d receivers\n", $3, $4 / 1000, $5 / 1000, $6 / 1000, $7 }'
  awk -v s="$system" -v r="$round" -v hz="$(getconf CLK_TCK)" -v c="$call" -v w="$window" -v n="$starts" \
    -v r0="$rss0" -v r1="$rss1" -v k="$clients" -v l="$load" 'BEGIN {
    printf "%s %s %.0f %.0f %.1f %s\n", s, r, c * 1000 / hz / n, w * 1000 / hz / n, (r1 - r0) / k, l
  }' | tee -a "$tmp/turns" | awk '{ printf "  server CPU per start: %s ms in the start call, %s ms in the call and the second after; RSS %s KiB per idle connection\n", $3, $4, $5 }'
}

# peer_subscribers: the peer's subscribers to its channel.
peer_subscribers() { curl -fsS "$base/stats" | jq -r .subscribers; }

# peer_table: e2e_peer's table from $tmp/turn-starts and $tmp/turns: per system the
# medians over its starts of every round (each round's in brackets), and the ratios.
peer_table() {
  echo
  echo "== e2e against a peer: receipt latency per start (from its first receipt), medians over the starts of all rounds [each round's]; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  awk '
    function med(list,   n, a, i, j, t) { # the median (the lower of an even count) of a space-separated list
      n = split(list, a, " ")
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      return n ? a[int((n + 1) / 2)] : "n/a"
    }
    function add(list, x) { return list == "" ? x : list " " x }
    function ms(us) { return sprintf("%.1f", us / 1000) }
    function rounds(sys, f,   r, out) { out = ""; for (r = 1; r <= maxr; r++) if ((sys, r) in all) out = add(out, ms(med(v[sys, r, f]))); return out }
    function ratio(a, b, f,   r, out, x, y) { # a ÷ b pooled, and round by round
      out = ""
      for (r = 1; r <= maxr; r++) if ((a, r) in all && (b, r) in all) {
        x = med(v[a, r, f]); y = med(v[b, r, f]); out = add(out, y > 0 ? sprintf("%.2f", x / y) : "n/a")
      }
      x = med(pool[a, f]); y = med(pool[b, f])
      return (y > 0 ? sprintf("%.2f", x / y) : "n/a") " [" out "]"
    }
    FILENAME ~ /turns$/ { cpu[$1] = add(cpu[$1], $3); win[$1] = add(win[$1], $4); mem[$1] = add(mem[$1], $5); load[$1] = add(load[$1], $6); next }
    {
      all[$1, $2] = 1; if ($2 > maxr) maxr = $2; seen[$1] = 1
      for (f = 1; f <= 3; f++) { v[$1, $2, f] = add(v[$1, $2, f], $(f + 3)); pool[$1, f] = add(pool[$1, f], $(f + 3)) }
    }
    END {
      printf "%-9s %-22s %-22s %-22s %-15s %-15s %-12s %s\n", "system", "p50 ms", "p99 ms", "spread ms", "CPU call ms", "CPU 1 s ms", "KiB/conn", "load"
      split("bulb peer bulb-ack", order, " ")
      for (i = 1; i <= 3; i++) {
        s = order[i]
        if (!(s in seen)) continue
        printf "%-9s %-22s %-22s %-22s %-15s %-15s %-12s %s\n", s,
          ms(med(pool[s, 1])) " [" rounds(s, 1) "]", ms(med(pool[s, 2])) " [" rounds(s, 2) "]", ms(med(pool[s, 3])) " [" rounds(s, 3) "]",
          med(cpu[s]) " [" cpu[s] "]", med(win[s]) " [" win[s] "]", med(mem[s]), "[" load[s] "]"
      }
      printf "peer ÷ bulb (above 1: Bulb ahead): p50 %s, p99 %s, spread %s\n", ratio("peer", "bulb", 1), ratio("peer", "bulb", 2), ratio("peer", "bulb", 3)
      printf "bulb-ack ÷ bulb (what deferring the report bought): p50 %s, p99 %s, spread %s\n", ratio("bulb-ack", "bulb", 1), ratio("bulb-ack", "bulb", 2), ratio("bulb-ack", "bulb", 3)
    }' "$tmp/turns" "$tmp/turn-starts"
  echo "(bulb: page-like clients, immediate reveal; peer: the same clients over centrifuge; bulb-ack: clients that ack each start at once;"
  echo " servers, loadgen and curl share the same $(nproc) cores; CPU ticks of $((1000 / $(getconf CLK_TCK))) ms)"
}

# fairness [--quick]: scripts/fairness, which builds and starts the server itself (a
# separate process on loopback, memory engine) and prints its own table, machine, load
# average and command.
fairness() {
  echo
  echo "== fairness: three latency groups behind toxiproxy, arrival against compensated timing, immediate and synced reveal (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  if [ "${1:-}" = --quick ]; then
    show go run ./scripts/fairness --quick
    return
  fi
  local runs=${RUNS:-1} run
  local modes=${MODES:-arrival,compensated,synced+arrival,synced+compensated}
  if [ "$runs" -le 1 ]; then
    show go run ./scripts/fairness --clients "${CLIENTS:-300}" --questions "${QUESTIONS:-200}" --modes "$modes"
    return
  fi
  [ -n "$tmp" ] || tmp=$(mktemp -d /tmp/bulb-bench.XXXXXX) # removed on exit
  local reports=()
  for run in $(seq "$runs"); do
    echo
    echo "-- run $run of $runs (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    show go run ./scripts/fairness --clients "${CLIENTS:-300}" --questions "${QUESTIONS:-200}" --modes "$modes" \
      --seed "$run" --json-out "$tmp/fairness-$run.json"
    reports+=("$tmp/fairness-$run.json")
  done
  echo
  echo "== fairness: $runs runs pooled (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  show go run ./scripts/fairness pool "${reports[@]}"
}

# reveal [--quick]: scripts/reveal, which builds and starts the server itself and prints
# its own table, machine, load average, command and commit; a run per size in CLIENTS.
reveal() {
  local sizes=${CLIENTS:-1000 10000} n
  printf '\n== reveal: skew of the synced reveal, four latency groups behind toxiproxy (load average %s)\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  [ "${1:-}" != --quick ] || { show go run ./scripts/reveal --quick; return; }
  for n in $sizes; do
    show go run ./scripts/reveal --clients "$n" --starts "${STARTS:-30}"
  done
}

# judge [--quick]: BenchmarkVerdicts and BenchmarkSandboxOverhead (judge/bench_test.go) on
# the real bubblewrap sandbox, in COUNT rounds (each round both benchmarks, so that a ratio
# compares runs minutes apart at most), then the medians of the rounds' figures and ratios.
# Without root or bwrap it says so and returns (the benchmarks would skip).
judge() {
  local verdicts=${VERDICTS:-20} runs=${RUNS:-100} count=${COUNT:-3}
  if [ "${1:-}" = --quick ]; then verdicts=10 runs=50 count=1; fi
  echo
  echo "== judge: verdicts per second and sandbox overhead per run, $count rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  if [ "$(id -u)" -ne 0 ] || ! command -v bwrap >/dev/null || ! command -v prlimit >/dev/null; then
    echo "(skipped: the bubblewrap sandbox needs root, bwrap and prlimit; Debian: apt-get install bubblewrap util-linux)"
    return 0
  fi
  echo "$(bwrap --version); $(gcc --version | head -n1); $(/usr/bin/python3 --version)"
  [ -n "$tmp" ] || tmp=$(mktemp -d /tmp/bulb-bench.XXXXXX) # removed on exit
  : >"$tmp/judge-figures.txt"
  local round
  for round in $(seq "$count"); do
    echo
    echo "-- round $round of $count (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    # NewBwrap's "sandbox ready" log line is not a result.
    { show go test -run '^$' -bench '^BenchmarkVerdicts$' -benchtime "${verdicts}x" -count 1 -timeout 30m ./judge 2>&1
      show go test -run '^$' -bench '^BenchmarkSandboxOverhead$' -benchtime "${runs}x" -count 1 -timeout 30m ./judge 2>&1
    } | grep -v 'INFO sandbox ready' | tee "$tmp/judge-round.txt"
    # "case round unit figure", a line for each figure of each result line.
    awk -v r="$round" '/^BenchmarkVerdicts\/|^BenchmarkSandboxOverhead\// {
        name = $1; sub(/^Benchmark[A-Za-z]+\//, "", name); sub(/-[0-9]+$/, "", name)
        for (i = 3; i < NF; i += 2) print name, r, $(i + 1), $i
      }' "$tmp/judge-round.txt" >>"$tmp/judge-figures.txt"
  done
  echo
  echo "== judge: medians of $count rounds (each round's in brackets; load average $(cut -d' ' -f1-3 /proc/loadavg))"
  awk -v nproc="$(nproc)" '
    function med(list,   n, a, i, j, t) { # the median (the lower of an even count) of a space-separated list
      n = split(list, a, " ")
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      return n ? a[int((n + 1) / 2)] : "n/a"
    }
    function add(list, x) { return list == "" ? x : list " " x }
    { v[$1, $2, $3] = $4; if ($2 > rounds) rounds = $2 }
    END {
      split("python c c-precompiled", langs, " ")
      for (i = 1; i <= 3; i++) {
        l = langs[i]; vs = ""; one = ""; sc = ""
        for (r = 1; r <= rounds; r++) {
          if ((l "/workers=" nproc, r, "verdicts/s") in v) vs = add(vs, v[l "/workers=" nproc, r, "verdicts/s"])
          if ((l "/workers=1", r, "verdicts/s") in v) one = add(one, v[l "/workers=1", r, "verdicts/s"])
          if (nproc > 1 && v[l "/workers=1", r, "verdicts/s"] > 0 && (l "/workers=" nproc, r, "verdicts/s") in v) sc = add(sc, sprintf("%.2f", v[l "/workers=" nproc, r, "verdicts/s"] / v[l "/workers=1", r, "verdicts/s"]))
        }
        if (vs == "") continue
        printf "%-14s verdicts/s: %s with %d workers [%s], %s with 1 [%s]", l, med(vs), nproc, vs, med(one), one
        if (sc != "") printf "; %d workers ÷ 1: %s [%s]", nproc, med(sc), sc # ÷: 2 bytes
        printf "\n"
      }
      cs = ""; cm = ""; pm = ""
      for (r = 1; r <= rounds; r++) {
        c = v["c/workers=1", r, "verdicts/s"]; p = v["c-precompiled/workers=1", r, "verdicts/s"]
        if (c > 0 && p > 0) { cm = add(cm, sprintf("%.0f", 1000 / c)); pm = add(pm, sprintf("%.0f", 1000 / p)); cs = add(cs, sprintf("%.0f", 100 * (1 - c / p))) }
      }
      if (cs != "") printf "C, one worker: %s ms per verdict [%s] compiling, %s ms [%s] precompiled: the compile is %s%% [%s] of a verdict\n", med(cm), cm, med(pm), pm, med(cs), cs
      d = ""; bw = ""; ov = ""; x = ""
      for (r = 1; r <= rounds; r++) {
        a = v["direct", r, "ns/op"]; b = v["bwrap", r, "ns/op"]
        if (a > 0 && b > 0) {
          d = add(d, sprintf("%.2f", a / 1e6)); bw = add(bw, sprintf("%.2f", b / 1e6))
          ov = add(ov, sprintf("%.1f", (b - a) / 1e6)); x = add(x, sprintf("%.1f", b / a))
        }
      }
      if (d != "") printf "one run, means of the direct and bwrap cases: %s ms directly [%s], %s ms in the sandbox [%s]: +%s ms [%s], %sx [%s]\n", med(d), d, med(bw), bw, med(ov), ov, med(x), x
      d = ""; bw = ""; ov = ""; x = ""
      for (r = 1; r <= rounds; r++) {
        if (!(("paired", r, "overhead-ms") in v)) continue
        d = add(d, v["paired", r, "direct-ms"]); bw = add(bw, v["paired", r, "bwrap-ms"])
        ov = add(ov, v["paired", r, "overhead-ms"]); x = add(x, v["paired", r, "×direct"])
      }
      if (d != "") printf "one run, medians of the paired case (each pair back to back): %s ms directly [%s], %s ms in the sandbox [%s]: +%s ms [%s], %sx [%s]\n", med(d), d, med(bw), bw, med(ov), ov, med(x), x
    }' "$tmp/judge-figures.txt"
}

# One compound command, read whole before it runs: an edit of this file during a run
# cannot change what the run does.
{
case "${1:-all}" in
all) machine; hub --quick; engines --quick; fanout --quick; e2e --quick; e2e_peer --quick; fairness --quick; reveal --quick; judge --quick ;;
hub) machine; hub "${2:-}" ;;
engines) machine; engines "${2:-}" ;;
fanout) machine; fanout ;;
e2e) machine; e2e "${2:-}"; e2e_peer "${2:-}" ;;
e2e-peer) machine; e2e_peer "${2:-}" ;;
fairness) machine; fairness "${2:-}" ;;
reveal) machine; reveal "${2:-}" ;;
judge) machine; judge "${2:-}" ;;
*) usage ;;
esac
exit
}
