#!/usr/bin/env bash
# Runs one Bulb node (the embedded engine, data in ./bulb-data, unless arguments say
# otherwise); arguments go to the server (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./server "$@"
