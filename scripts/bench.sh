#!/usr/bin/env bash
# Runs Bulb's benchmarks and prints the machine they ran on. Compare figures only within
# one run: the machines are shared and noisy.
#
#   scripts/bench.sh            every part below
#   scripts/bench.sh hub        hub.Start against a sequential send, 1,000 and 10,000 clients
#   scripts/bench.sh engines    Store.Accept, memory engine against Redis engine (unix socket
#                               and TCP loopback), with redis-benchmark of the same Lua
#                               script on the same machine as the Redis engine's ceiling
#   scripts/bench.sh fanout     one start frame to 1,000, 5,000 and 10,000 clients, strategy
#                               after strategy in turn: sequential, pool-20, single-hub, bulb
#                               (hub.Start) and a raw-TCP floor (scripts/fanout); the
#                               no-argument run does a quick one: 1,000 clients, 3 rounds
#
#   BENCHTIME=50x scripts/bench.sh hub     iterations of each hub benchmark (default 20x)
#   ACCEPTS=100000 COUNT=5 scripts/bench.sh engines
#                               accepts per run (default 200000) and rounds of every run
#                               (default 3; the table shows medians)
#   CLIENTS=1000 ROUNDS=20 scripts/bench.sh fanout
#                               sizes, comma-separated (default 1000,5000,10000), and starts
#                               per strategy and size (default 10)
#
# engines needs redis-server, redis-cli and redis-benchmark (Debian: redis-server and
# redis-tools).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/bench.sh [hub|engines|fanout]" >&2; exit 2; }

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

hub() {
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
    show go run ./scripts/fanout --quick
  else
    show go run ./scripts/fanout --clients "${CLIENTS:-1000,5000,10000}" --rounds "${ROUNDS:-10}"
  fi
}

# The throwaway redis-server of the engines part, stopped on any exit.
tmp="" redis_pid=""
stop_redis() {
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
  fi
}
cleanup() {
  stop_redis
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# median prints the median of the numbers on stdin (the lower one of an even count).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'; }

engines() {
  local accepts=${ACCEPTS:-200000} count=${COUNT:-3} clients=64
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
  local keys=("${k}room" "${k}players" "${k}scores" "${k}q:1:answers" "${k}q:1:answered" "${k}q:1:correct")
  local head='{"n":1,"playerId":"000000000000","answer":{"choice":2},"correct":true}'
  local scoring='{"speed":true,"winners":[100],"points":100,"timeLimitNs":20000000000,"deferred":false}'
  # ARGV as RedisStore.Accept passes them: n, player, correct, head, scoring, quiz version,
  # submission key (Submission.key). Lua ignores ARGV an older accept.lua does not read.
  local argv=(1 __rand_int__ 1 "$head" "$scoring" 0 '{"choice":2}')
  local evalsha=(EVALSHA "$sha" 6 "${keys[@]}" "${argv[@]}")
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
        print r, m["accepts/s"], m["p50-µs"], m["p99-µs"] >> (dir "/" name)
      }' "$tmp/go.txt"
  done
  stop_redis

  # col FILE N: the median of figure N (1 accepts/s, 2 p50, 3 p99) of FILE's rounds, or n/a.
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
  for row in "memory|memory engine|" "redis|Redis engine, unix socket|unix" "redis-tcp|Redis engine, TCP loopback|tcp" \
    "unix|ceiling: redis-benchmark, unix|" "tcp|ceiling: redis-benchmark, TCP|"; do
    IFS='|' read -r file label ceil <<<"$row"
    printf '%-34s %10s %10s %10s  %s\n' "$label" "$(col "$tmp/$file" 1)" "$(col "$tmp/$file" 2)" "$(col "$tmp/$file" 3)" \
      "$(if [ -n "$ceil" ]; then ratios "$tmp/$file" "$tmp/$ceil"; fi)"
  done
  echo "memory engine ÷ Redis engine (unix), accepts/s, by round: $(ratios "$tmp/memory" "$tmp/redis")"
  echo "(ceiling rows: redis-benchmark's requests/s and its p50 and p99; engine rows: Store.Accept"
  echo " as its caller sees it, with the Go client, JSON and the benchmark on the same 2 cores)"
}

case "${1:-all}" in
all) machine; hub; engines; fanout --quick ;;
hub) machine; hub ;;
engines) machine; engines ;;
fanout) machine; fanout ;;
*) usage ;;
esac
