package judge

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bulbquiz/bulb/protocol"
)

// Program is a program to judge.
type Program struct {
	Language string // a key of Languages
	Source   []byte
}

// Test is one test case: the input given on stdin and the expected output. A sample test
// is one the students may see; the others are hidden (see Evaluate).
type Test struct {
	Input  []byte
	Output []byte
	Sample bool
}

// Options say how to judge: the checker (see Check), the limits of each test run, and
// the compile limits (zero fields: the language's CompileLimits, then DefaultCompileLimits).
type Options struct {
	Checker string
	Limits  Limits
	Compile Limits
}

// maxMessage bounds Verdict.Message, and maxShown each stream a sample test's message
// shows of it.
const (
	maxMessage = 2000
	maxShown   = 500
)

// Evaluate compiles prog in box (if its language compiles) and runs it on each test in
// turn; the first failing test decides the verdict, AC if all pass. Sandbox failures give
// IE. Evaluate uses the box for its whole duration: the caller must hold it.
//
// The verdict's message, which the student reads, says which test failed and how (its
// exit status or signal, the limit it exceeded, or a wrong answer). For a hidden test it
// says nothing more: never its input or expected output, nor what the program wrote on it,
// not even to stderr, where a program could copy its input. For a sample test it also
// shows the program's stderr and, on a wrong answer, the expected and actual output, each
// truncated. A compiler's errors are shown in full (to maxMessage): the tests are not in
// the box when it compiles. When the sandbox fails on a test (IE), the message says only
// that, and the error returned says why, for the log: the sandbox's error may carry what
// the program wrote.
func Evaluate(ctx context.Context, sb Sandbox, box Box, prog Program, tests []Test, opts Options) (protocol.Verdict, error) {
	v := protocol.Verdict{Total: len(tests)}
	lang, ok := Languages[prog.Language]
	if !ok {
		v.Verdict, v.Message = protocol.IE, fmt.Sprintf("unknown language %q", prog.Language)
		return v, errors.New(v.Message)
	}
	if _, err := Check(opts.Checker, nil, nil); err != nil {
		v.Verdict, v.Message = protocol.IE, err.Error()
		return v, err
	}
	files := map[string][]byte{lang.Source: prog.Source}
	if lang.Compile != nil {
		lim := mergeLimits(opts.Compile, mergeLimits(lang.CompileLimits, DefaultCompileLimits))
		var collect []string
		if lang.Binary != "" {
			collect = []string{lang.Binary}
		}
		res, err := sb.Run(ctx, box, RunSpec{Args: lang.Compile, Files: files, Collect: collect, Limits: lim})
		if err != nil {
			v.Verdict, v.Message = protocol.IE, "the judge could not compile it (an internal error)"
			return v, fmt.Errorf("compile: %w", err)
		}
		bin, built := res.Files[lang.Binary]
		if lang.Binary == "" {
			built = true // a syntax check: the source is what runs
		}
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
			return v, nil
		}
		if lang.Binary != "" {
			files = map[string][]byte{lang.Binary: bin}
		}
	}
	for i, t := range tests {
		res, err := sb.Run(ctx, box, RunSpec{Args: lang.Run, Stdin: t.Input, Files: files, Limits: opts.Limits})
		if err != nil {
			v.Verdict, v.Message = protocol.IE, fmt.Sprintf("test %d: the judge could not run it (an internal error)", i+1)
			return v, fmt.Errorf("test %d: %w", i+1, err)
		}
		v.TimeMs = max(v.TimeMs, res.CPUTime.Milliseconds())
		v.MemoryKB = max(v.MemoryKB, res.PeakMemoryKB)
		if verdict, msg := runVerdict(i, t, res, opts.Checker); verdict != "" {
			v.Verdict, v.Message = verdict, truncate(msg)
			return v, nil
		}
		v.Passed++
	}
	v.Verdict = protocol.AC
	return v, nil
}

// runVerdict judges the run res of test i, t, whose output the checker compares: it
// returns "" if the test passed, else the verdict and its message. The message says which
// test failed and why; only for a sample test does it show what the program wrote to
// stderr and, on a wrong answer, the expected and actual output, each truncated.
func runVerdict(i int, t Test, res RunResult, checker string) (verdict, message string) {
	var why string
	switch {
	case res.Killed == KilledCPU:
		verdict, why = protocol.TLE, "CPU time limit exceeded"
	case res.Killed == KilledWall:
		verdict, why = protocol.TLE, "wall-clock time limit exceeded"
	case res.Killed == KilledMemory:
		verdict, why = protocol.MLE, "memory limit exceeded ("+res.Message+")"
	case res.Killed == KilledOutput:
		verdict, why = protocol.OLE, "output limit exceeded"
	case res.Killed == KilledDisk:
		verdict, why = protocol.OLE, "disk limit exceeded: the program's files went over the box's size or file count"
	case res.Signal != 0:
		verdict, why = protocol.RE, fmt.Sprintf("killed by signal %d", res.Signal)
	case res.ExitCode != 0:
		verdict, why = protocol.RE, fmt.Sprintf("exit status %d", res.ExitCode)
	default:
		ok, err := Check(checker, t.Output, res.Stdout)
		switch {
		case err != nil:
			return protocol.IE, fmt.Sprintf("test %d: %v", i+1, err)
		case ok:
			return "", ""
		}
		verdict, why = protocol.WA, "wrong answer"
	}
	if !t.Sample {
		// Not even the exit status or the signal: a program could choose them to spell out
		// a hidden input, a few bits a submission.
		if verdict == protocol.RE {
			why = "runtime error"
		}
		return verdict, fmt.Sprintf("test %d: %s", i+1, why)
	}
	shown := func(b []byte) string { // at most maxShown bytes, as valid UTF-8
		if len(b) <= maxShown {
			return strings.ToValidUTF8(string(b), "?")
		}
		return strings.ToValidUTF8(string(b[:maxShown]), "") + "…"
	}
	message = fmt.Sprintf("test %d (sample): %s", i+1, why)
	if verdict == protocol.WA {
		message += "\nexpected:\n" + shown(t.Output) + "\ngot:\n" + shown(res.Stdout)
	}
	if len(res.Stderr) > 0 {
		message += "\nstderr:\n" + shown(res.Stderr)
	}
	return verdict, message
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
