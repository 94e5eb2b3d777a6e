package judge

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/bulbquiz/bulb/protocol"
)

// TestVerdictHidesHiddenTests runs hostile programs (testdata) that copy each test's input
// to stderr or to stdout in the real sandbox: a verdict on a hidden test says which test
// failed and how, never its input, its expected output or what the program wrote; a
// verdict on a sample test shows the program's stderr and, on a wrong answer, the
// expected and actual output, truncated.
//
// Not parallel with the other tests (its cases are, with each other): NewBwrap probes the
// cgroup under a name of the process's, and two probes at once make one of them fall back
// to RLIMIT_AS, which turns another test's MLE into an RE.
func TestVerdictHidesHiddenTests(t *testing.T) {
	sb, root := MustBwrap(t)
	opts := Options{Checker: "exact", Limits: testLimits}
	fixture := func(name string) Program {
		t.Helper()
		src, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return Program{Language: "python", Source: src}
	}
	const secret, answer = "hidden-input-7f3a9c\n", "hidden-output-51d2\n"
	sample := Test{Input: []byte("sample-input-visible\n"), Output: []byte("sample-output-visible\n"), Sample: true}
	hidden := Test{Input: []byte(secret), Output: []byte(answer)}
	tests := []struct {
		name        string
		prog        string
		tests       []Test
		verdict     string
		want        []string // in the message
		never       []string // nowhere in the message
		maxMessage  int
		passedTests int
	}{
		{"stderr on a hidden test", "stderr_leak.py", []Test{hidden}, protocol.RE,
			[]string{"test 1: runtime error"}, []string{"hidden-input", "hidden-output", "status"}, len("test 1: runtime error"), 0},
		{"stdout on a hidden test", "stdout_echo.py", []Test{hidden}, protocol.WA,
			[]string{"test 1: wrong answer"}, []string{"hidden-input", "hidden-output", "debug"}, len("test 1: wrong answer"), 0},
		{"stderr on a sample test", "stderr_leak.py", []Test{sample, hidden}, protocol.RE,
			[]string{"test 1 (sample): exit status 1", "stderr:\nsample-input-visible\n"}, []string{"hidden"}, maxMessage, 0},
		{"stdout on a sample test", "stdout_echo.py", []Test{sample, hidden}, protocol.WA,
			[]string{"test 1 (sample): wrong answer", "expected:\nsample-output-visible\n", "got:\nsample-input-visible\n", "stderr:\ndebug: xxx"},
			[]string{"hidden"}, maxMessage, 0},
		{"stderr dressed as the sandbox's failure", "bwrap_mimic.py", []Test{hidden}, protocol.IE,
			[]string{"test 1: the judge could not run it"}, []string{"hidden-input", "hidden-output", "bwrap"}, len("test 1: the judge could not run it (an internal error)"), 0},
		{"a hidden test after a passed sample", "stdout_echo.py", []Test{{Input: []byte("echo\n"), Output: []byte("echo\n"), Sample: true}, hidden}, protocol.WA,
			[]string{"test 2: wrong answer"}, []string{"hidden-input", "hidden-output", "echo", "debug"}, len("test 2: wrong answer"), 1},
	}
	for _, tt := range tests {
		box := MustBox(t, root)
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, _ := Evaluate(context.Background(), sb, box, fixture(tt.prog), tt.tests, opts)
			if v.Verdict != tt.verdict || v.Passed != tt.passedTests {
				t.Fatalf("got %s with %d passed (%q), want %s with %d", v.Verdict, v.Passed, v.Message, tt.verdict, tt.passedTests)
			}
			for _, w := range tt.want {
				if !strings.Contains(v.Message, w) {
					t.Errorf("message %q: want it to contain %q", v.Message, w)
				}
			}
			for _, n := range tt.never {
				if strings.Contains(v.Message, n) {
					t.Errorf("message %q: shows %q", v.Message, n)
				}
			}
			if len(v.Message) > tt.maxMessage {
				t.Errorf("message of %d bytes, want at most %d: %q", len(v.Message), tt.maxMessage, v.Message)
			}
		})
	}
}
