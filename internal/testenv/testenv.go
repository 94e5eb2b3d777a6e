// Package testenv holds test helpers shared across Bulb's packages: finding the real
// programs that integration tests drive (redis-server, bwrap, chromium).
//
// A test that needs a program skips with a clear reason when it is missing, so that
// `go test ./...` works anywhere; scripts/test.sh installs every such program and sets
// BULB_REQUIRE_DEPS=1, which turns those skips into failures.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Program returns the path of the first of names found on PATH. If none is found, the test
// is skipped, or fails when BULB_REQUIRE_DEPS=1.
func Program(tb testing.TB, names ...string) string {
	tb.Helper()
	for _, name := range names {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("BULB_REQUIRE_DEPS") == "1" {
		tb.Fatalf("none of %v is installed, and BULB_REQUIRE_DEPS=1: run scripts/test.sh, which installs it", names)
	}
	tb.Skipf("none of %v is installed: scripts/test.sh installs it", names)
	return ""
}
