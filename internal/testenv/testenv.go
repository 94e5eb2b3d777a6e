// Package testenv holds test helpers shared across Bulb's packages: finding the real
// programs that integration tests drive (redis-server, bwrap, chromium), and a small file
// system that fills up as a disk does.
//
// A test that needs a program skips with a clear reason when it is missing, so that
// `go test ./...` works anywhere; scripts/test.sh installs every such program and sets
// BULB_REQUIRE_DEPS=1, which turns those skips into failures.
package testenv

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
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

// SmallFS mounts a tmpfs of size bytes on a new temporary directory and returns the
// directory; it is unmounted when the test ends. Writes past size fail with ENOSPC, as on
// a full disk. The test is skipped without root (mounting needs it), or fails when
// BULB_REQUIRE_DEPS=1.
func SmallFS(tb testing.TB, size int64) string {
	tb.Helper()
	dir := tb.TempDir()
	err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+strconv.FormatInt(size, 10)+",mode=0700")
	if err != nil {
		if os.Getenv("BULB_REQUIRE_DEPS") == "1" {
			tb.Fatalf("mounting a %d-byte tmpfs (a full disk's stand-in): %v; BULB_REQUIRE_DEPS=1: run scripts/test.sh as root", size, err)
		}
		tb.Skipf("mounting a %d-byte tmpfs (a full disk's stand-in) needs root: %v", size, err)
	}
	tb.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			tb.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes to path until its file system is full (ENOSPC), as a disk fills up.
func Fill(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for size := len(chunk); size > 0; {
		if _, err := f.Write(chunk[:size]); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				tb.Fatal(err)
			}
			size /= 2 // the last pages may take less
		}
	}
}
