package judge

import (
	"context"
	"fmt"
	"strings"

	"github.com/bulbquiz/bulb/protocol"
)

// Program is a program to judge.
type Program struct {
	Language string // a key of Languages
	Source   []byte
}

// Test is one test case: the input given on stdin and the expected output.
type Test struct {
	Input  []byte
	Output []byte
}

// Options say how to judge: the checker (see Check), the limits of each test run, and
// the compile limits (zero fields: the language's CompileLimits, then DefaultCompileLimits).
type Options struct {
	Checker string
	Limits  Limits
	Compile Limits
}

// maxMessage bounds Verdict.Message.
const maxMessage = 2000

// Evaluate compiles prog in box (if its language compiles) and runs it on each test in
// turn; the first failing test decides the verdict, AC if all pass. Sandbox failures give
// IE. Evaluate uses the box for its whole duration: the caller must hold it.
func Evaluate(ctx context.Context, sb Sandbox, box Box, prog Program, tests []Test, opts Options) protocol.Verdict {
	v := protocol.Verdict{Total: len(tests)}
	lang, ok := Languages[prog.Language]
	if !ok {
		v.Verdict, v.Message = protocol.IE, fmt.Sprintf("unknown language %q", prog.Language)
		return v
	}
	if _, err := Check(opts.Checker, nil, nil); err != nil {
		v.Verdict, v.Message = protocol.IE, err.Error()
		return v
	}
	files := map[string][]byte{lang.Source: prog.Source}
	if lang.Compile != nil {
		lim := mergeLimits(opts.Compile, mergeLimits(lang.CompileLimits, DefaultCompileLimits))
		res, err := sb.Run(ctx, box, RunSpec{Args: lang.Compile, Files: files, Collect: []string{lang.Binary}, Limits: lim})
		if err != nil {
			v.Verdict, v.Message = protocol.IE, "compile: "+err.Error()
			return v
		}
		bin, built := res.Files[lang.Binary]
		if res.ExitCode != 0 || res.Killed != KilledNone || !built {
			v.Verdict = protocol.CE
			msg := string(res.Stderr) + string(res.Stdout)
			switch res.Killed {
			case KilledCPU, KilledWall:
				msg = "the compiler exceeded its time limit\n" + msg
			case KilledMemory:
				msg = "the compiler exceeded its memory limit\n" + msg
			case KilledOutput:
				msg = "the compiler wrote too much\n" + msg
			}
			if res.Signal != 0 && res.Killed == KilledNone {
				msg = fmt.Sprintf("the compiler was killed by signal %d\n", res.Signal) + msg
			}
			v.Message = truncate(msg)
			return v
		}
		files = map[string][]byte{lang.Binary: bin}
	}
	for i, t := range tests {
		res, err := sb.Run(ctx, box, RunSpec{Args: lang.Run, Stdin: t.Input, Files: files, Limits: opts.Limits})
		if err != nil {
			v.Verdict, v.Message = protocol.IE, fmt.Sprintf("test %d: %v", i+1, err)
			return v
		}
		v.TimeMs = max(v.TimeMs, res.CPUTime.Milliseconds())
		v.MemoryKB = max(v.MemoryKB, res.PeakMemoryKB)
		verdict, why := runVerdict(res)
		if verdict == "" {
			ok, err := Check(opts.Checker, t.Output, res.Stdout)
			switch {
			case err != nil:
				verdict, why = protocol.IE, err.Error()
			case !ok:
				verdict, why = protocol.WA, "wrong answer"
			}
		}
		if verdict != "" {
			v.Verdict = verdict
			v.Message = truncate(fmt.Sprintf("test %d: %s", i+1, why))
			return v
		}
		v.Passed++
	}
	v.Verdict = protocol.AC
	return v
}

// runVerdict classifies a finished run: "" when it ended normally (its output is to be
// checked), else the verdict and why.
func runVerdict(res RunResult) (string, string) {
	switch res.Killed {
	case KilledCPU:
		return protocol.TLE, "CPU time limit exceeded"
	case KilledWall:
		return protocol.TLE, "wall-clock time limit exceeded"
	case KilledMemory:
		return protocol.MLE, "memory limit exceeded (" + res.Message + ")"
	case KilledOutput:
		return protocol.OLE, "output limit exceeded"
	case KilledDisk:
		return protocol.OLE, "disk limit exceeded: the program's files went over the box's size or file count"
	}
	if res.Signal != 0 {
		return protocol.RE, fmt.Sprintf("killed by signal %d\n%s", res.Signal, res.Stderr)
	}
	if res.ExitCode != 0 {
		return protocol.RE, fmt.Sprintf("exit status %d\n%s", res.ExitCode, res.Stderr)
	}
	return "", ""
}

// mergeLimits fills l's zero fields from d.
func mergeLimits(l, d Limits) Limits {
	if l.CPU <= 0 {
		l.CPU = d.CPU
	}
	if l.Wall <= 0 {
		l.Wall = d.Wall
	}
	if l.Memory <= 0 {
		l.Memory = d.Memory
	}
	if l.Processes <= 0 {
		l.Processes = d.Processes
	}
	if l.Output <= 0 {
		l.Output = d.Output
	}
	if l.FileSize <= 0 {
		l.FileSize = d.FileSize
	}
	if l.Disk <= 0 {
		l.Disk = d.Disk
	}
	if l.Files <= 0 {
		l.Files = d.Files
	}
	return l
}

func truncate(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= maxMessage {
		return s
	}
	return strings.ToValidUTF8(s[:maxMessage], "") + "\n…"
}
