package cpuprofile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	stop, err := Start(path)
	if err != nil {
		t.Fatalf("Start: got %v, want nil", err)
	}
	if _, err := Start(filepath.Join(t.TempDir(), "second.pprof")); err == nil {
		t.Error("a second profile at once: got nil, want an error")
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: got %v, want nil", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("the profile: got %v, %v; want a file that is not empty", fi, err)
	}
}
