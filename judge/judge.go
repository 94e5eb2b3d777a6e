package judge

import (
	"context"
	"fmt"
	"strings"
)

// The verdicts of a submission.
const (
	AC  = "AC"  // accepted: every test passed
	WA  = "WA"  // wrong answer
	TLE = "TLE" // time limit exceeded (CPU or wall clock)
	MLE = "MLE" // memory limit exceeded
	RE  = "RE"  // runtime error: non-zero exit or killed by a signal
	OLE = "OLE" // output limit exceeded
	CE  = "CE"  // compilation error (including a compiler that exceeded its limits)
	IE  = "IE"  // internal error: the judge or the sandbox failed, not the submission
)

// Submission is a program to judge.
type Submission struct {
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

// Verdict is the outcome of judging a submission.
type Verdict struct {
	Verdict  string // AC, WA, TLE, MLE, RE, OLE, CE or IE
	Passed   int    // tests passed before the first failure
	Total    int    // tests in all
	TimeMs   int64  // the largest CPU time of a test run, in milliseconds
	MemoryKB int64  // the largest peak memory of a test run, in KB
	Message  string // for people: the compiler's errors, or what went wrong on which test
}

// maxMessage bounds Verdict.Message.
const maxMessage = 2000

// Judge compiles sub in box (if its language compiles) and runs it on each test in turn;
// the first failing test decides the verdict, AC if all pass. Sandbox failures give IE.
// Judge uses the box for its whole duration: the caller must hold it.
func Judge(ctx context.Context, sb Sandbox, box Box, sub Submission, tests []Test, opts Options) Verdict {
	v := Verdict{Total: len(tests)}
	lang, ok := Languages[sub.Language]
	if !ok {
		v.Verdict, v.Message = IE, fmt.Sprintf("unknown language %q", sub.Language)
		return v
	}
	if _, err := Check(opts.Checker, nil, nil); err != nil {
		v.Verdict, v.Message = IE, err.Error()
		return v
	}
	files := map[string][]byte{lang.Source: sub.Source}
	if lang.Compile != nil {
		lim := mergeLimits(opts.Compile, mergeLimits(lang.CompileLimits, DefaultCompileLimits))
		res, err := sb.Run(ctx, box, RunSpec{Args: lang.Compile, Files: files, Collect: []string{lang.Binary}, Limits: lim})
		if err != nil {
			v.Verdict, v.Message = IE, "compile: "+err.Error()
			return v
		}
		bin, built := res.Files[lang.Binary]
		if res.ExitCode != 0 || res.Killed != KilledNone || !built {
			v.Verdict = CE
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
			v.Verdict, v.Message = IE, fmt.Sprintf("test %d: %v", i+1, err)
			return v
		}
		v.TimeMs = max(v.TimeMs, res.CPUTime.Milliseconds())
		v.MemoryKB = max(v.MemoryKB, res.PeakMemoryKB)
		verdict, why := runVerdict(res)
		if verdict == "" {
			ok, err := Check(opts.Checker, t.Output, res.Stdout)
			switch {
			case err != nil:
				verdict, why = IE, err.Error()
			case !ok:
				verdict, why = WA, "wrong answer"
			}
		}
		if verdict != "" {
			v.Verdict = verdict
			v.Message = truncate(fmt.Sprintf("test %d: %s", i+1, why))
			return v
		}
		v.Passed++
	}
	v.Verdict = AC
	return v
}

// runVerdict classifies a finished run: "" when it ended normally (its output is to be
// checked), else the verdict and why.
func runVerdict(res RunResult) (string, string) {
	switch res.Killed {
	case KilledCPU:
		return TLE, "CPU time limit exceeded"
	case KilledWall:
		return TLE, "wall-clock time limit exceeded"
	case KilledMemory:
		return MLE, "memory limit exceeded (" + res.Message + ")"
	case KilledOutput:
		return OLE, "output limit exceeded"
	}
	if res.Signal != 0 {
		return RE, fmt.Sprintf("killed by signal %d\n%s", res.Signal, res.Stderr)
	}
	if res.ExitCode != 0 {
		return RE, fmt.Sprintf("exit status %d\n%s", res.ExitCode, res.Stderr)
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
	return l
}

func truncate(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= maxMessage {
		return s
	}
	return strings.ToValidUTF8(s[:maxMessage], "") + "\n…"
}
