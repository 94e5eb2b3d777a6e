// Package runinfo is what a measurement program quotes of its run, so that a figure can be
// traced to where it came from: the machine (cores, kernel, Go), the load average, the
// exact command and the commit.
//
// Every function is safe to call concurrently.
package runinfo

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine says where a measurement ran.
type Machine struct {
	Cores     int    `json:"cores"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	LoadStart string `json:"loadStart"` // /proc/loadavg's 1, 5 and 15 minute averages
	LoadEnd   string `json:"loadEnd"`
}

// This describes this machine, as bench.sh's machine line does, with the load average now
// as LoadStart.
func This() Machine {
	kernel := "Linux ?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return Machine{Cores: runtime.NumCPU(), Kernel: kernel, Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		LoadStart: LoadAvg()}
}

// LoadAvg is the 1, 5 and 15 minute load averages, or "?".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// QuoteArgs joins args, each after a space, quoted for a POSIX shell where needed.
func QuoteArgs(args []string) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteByte(' ')
		if a != "" && !strings.ContainsAny(a, " \t\n'\"$\\*?;&|<>()`{}[]#~!") {
			b.WriteString(a)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}

// Commit is the working directory's git commit (short), with " (modified)" when the work
// tree has uncommitted changes to tracked files, or "?" outside a git checkout.
func Commit() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "?"
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		commit += " (modified)"
	}
	return commit
}
