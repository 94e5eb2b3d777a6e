#!/usr/bin/env bash
# Runs Bulb's benchmarks and prints the machine they ran on. Compare figures only within
# one run: the machines are shared and noisy.
#
#   scripts/bench.sh            hub.Start against a sequential send, 1,000 and 10,000 clients
#   BENCHTIME=50x scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(uname -sr), $(go version | cut -d' ' -f3-)"
echo "command: go test -run '^\$' -bench Broadcast -benchtime ${BENCHTIME:=20x} ./hub"
go test -run '^$' -bench Broadcast -benchtime "$BENCHTIME" ./hub
