#!/usr/bin/env bash
# Runs Bulb's whole test suite, as CI does: installs the programs the integration tests
# drive when they are missing (Debian packages), checks formatting, go vet and staticcheck,
# runs every test with the race detector, and fuzzes the WebSocket frame handling briefly.
#
# Tests that need an installed program skip without it under a plain `go test ./...`;
# here BULB_REQUIRE_DEPS=1 turns such a skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || { echo "test.sh: Go 1.26 or newer is required (https://go.dev/dl/)" >&2; exit 1; }

# Debian package for each program the tests drive.
declare -A packages=([chromium]=chromium [redis-server]=redis-server [docker-compose]=docker-compose [bwrap]=bubblewrap)
missing=()
for prog in "${!packages[@]}"; do
  command -v "$prog" >/dev/null || missing+=("${packages[$prog]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "test.sh: gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
echo "test.sh: go mod tidy"
if ! go mod tidy -diff; then
  echo "go.mod or go.sum is not tidy: run go mod tidy" >&2
  exit 1
fi
echo "test.sh: go vet"
go vet ./...
echo "test.sh: staticcheck"
gobin="$(go env GOPATH)/bin"
if ! command -v staticcheck >/dev/null && [ ! -x "$gobin/staticcheck" ]; then
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
PATH="$PATH:$gobin" staticcheck ./...

export BULB_REQUIRE_DEPS=1
echo "test.sh: go test -race"
# Most integration tests wait on sockets, timers and child processes rather than on the
# CPU: four at a time halve the server package's wall time on two cores.
go test -race -count=1 -parallel 4 -timeout 15m ./...
# A count, not a duration: with a duration Go 1.26's fuzz coordinator can report a spurious
# "context deadline exceeded" on a loaded machine (go.dev/issue/75804, fixed in Go 1.27).
echo "test.sh: fuzzing client frames, ${BULB_FUZZTIME:=5000x}"
go test -run '^$' -fuzz '^FuzzDecodeClient$' -fuzztime 50000x ./protocol
go test -run '^$' -fuzz '^FuzzFrame$' -fuzztime "$BULB_FUZZTIME" ./server
echo "test.sh: all passed"
