#!/usr/bin/env bash
# Runs one Bulb node on the in-memory engine; arguments go to the server (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./server "$@"
