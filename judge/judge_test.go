package judge

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/protocol"
)

// sums is the task every language solves in these tests: print the sum of two integers.
var sums = []Test{
	{Input: []byte("1 2\n"), Output: []byte("3\n")},
	{Input: []byte("40 2\n"), Output: []byte("42\n")},
}

var sources = map[string]struct{ ac, wa, ce, re string }{
	"python": {
		ac: "a, b = map(int, input().split())\nprint(a + b)\n",
		wa: "a, b = map(int, input().split())\nprint(a - b)\n",
		ce: "a, b = map(int, input().split()\nprint(a + b)\n", // py_compile finds it: CE, like C's
		re: "raise SystemExit(3)\n",
	},
	"c": {
		ac: "#include <stdio.h>\nint main(void){long a,b;scanf(\"%ld %ld\",&a,&b);printf(\"%ld\\n\",a+b);return 0;}\n",
		wa: "#include <stdio.h>\nint main(void){puts(\"0\");return 0;}\n",
		ce: "int main(void){ return x; }\n",
		re: "#include <stddef.h>\nint main(void){volatile int *p = NULL; *p = 1; return 0;}\n",
	},
	"cpp": {
		ac: "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<\"\\n\";}\n",
		wa: "#include <iostream>\nint main(){std::cout<<\"0\\n\";}\n",
		ce: "#include <vector>\nint main(){ std::vector<int> v = 3; }\n",
		re: "#include <stdexcept>\nint main(){ throw std::runtime_error(\"boom\"); }\n",
	},
}

func TestEvaluateLanguages(t *testing.T) {
	t.Parallel()
	sb, root := MustBwrap(t)
	opts := Options{Checker: "tokens", Limits: testLimits}
	for lang, src := range sources {
		for _, tt := range []struct{ kind, src, want string }{
			{"AC", src.ac, protocol.AC}, {"WA", src.wa, protocol.WA}, {"CE", src.ce, protocol.CE}, {"RE", src.re, protocol.RE},
		} {
			if tt.src == "" {
				continue
			}
			box := MustBox(t, root)
			t.Run(lang+"/"+tt.kind, func(t *testing.T) {
				t.Parallel()
				v, _ := Evaluate(context.Background(), sb, box, Program{Language: lang, Source: []byte(tt.src)}, sums, opts)
				if v.Verdict != tt.want {
					t.Fatalf("got %s (%s), want %s", v.Verdict, v.Message, tt.want)
				}
				if v.Total != len(sums) {
					t.Errorf("got total %d, want %d", v.Total, len(sums))
				}
				switch tt.want {
				case protocol.AC:
					if v.Passed != len(sums) || v.MemoryKB <= 0 {
						t.Errorf("got passed %d, memory %d KB, want %d and > 0", v.Passed, v.MemoryKB, len(sums))
					}
				case protocol.CE:
					if !strings.Contains(strings.ToLower(v.Message), "error") {
						t.Errorf("got message %q, want the compiler's error", v.Message)
					}
				}
			})
		}
	}
}

func TestEvaluateHostile(t *testing.T) {
	t.Parallel()
	sb, root := MustBwrap(t)
	opts := Options{Checker: "tokens", Limits: testLimits}
	quickCompile := Limits{CPU: 3 * time.Second, Wall: 5 * time.Second}
	tests := []struct {
		name, lang, src string
		compile         Limits
		want            string // a verdict, or several separated by |
	}{
		{"infinite loop", "c", "int main(void){for(;;);}", Limits{}, protocol.TLE},
		{"sleeping forever", "python", "import time\ntime.sleep(1000)\n", Limits{}, protocol.TLE},
		{"memory hog", "cpp", "#include <vector>\n#include <cstdio>\nint main(){std::vector<char*> v; for(;;){char*p=new char[1<<20]; for(int i=0;i<(1<<20);i+=4096)p[i]=1; v.push_back(p);} }", Limits{}, protocol.MLE},
		{"printing gigabytes", "c", "#include <stdio.h>\nint main(void){for(;;)puts(\"spam spam spam spam\");}", Limits{}, protocol.OLE},
		// the CPU limit, or the memory of the processes the bomb may have (the kernel's
		// per-process memory is charged to the cgroup too)
		{"fork bomb", "c", "#include <unistd.h>\nint main(void){for(;;)fork();}", Limits{}, protocol.TLE + "|" + protocol.MLE},
		{"include /dev/random", "c", "#include </dev/random>\nint main(void){}", quickCompile, protocol.CE},
		{"template recursion", "cpp", "template<int N> struct F { enum { v = F<N-1>::v + F<N-2>::v }; };\nint main(){ return F<100000>::v; }", quickCompile, protocol.CE},
	}
	for _, tt := range tests {
		box := MustBox(t, root)
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := opts
			o.Compile = tt.compile
			if tt.want == protocol.MLE {
				// The hog must reach the memory limit before the wall clock ends it, even on
				// a loaded machine: its CPU time stays far below the limit.
				o.Limits.Wall = 20 * time.Second
			}
			start := time.Now()
			v, _ := Evaluate(context.Background(), sb, box, Program{Language: tt.lang, Source: []byte(tt.src)}, sums, o)
			if !slices.Contains(strings.Split(tt.want, "|"), v.Verdict) {
				t.Errorf("got %s (%s), want %s", v.Verdict, v.Message, tt.want)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %v, want the limits to end it sooner", d)
			}
			if pids := uidProcesses(box.UID); len(pids) != 0 {
				t.Errorf("processes of uid %d left: %v", box.UID, pids)
			}
		})
	}
}

func TestEvaluateErrors(t *testing.T) {
	t.Parallel()
	sb, root := MustBwrap(t)
	box := MustBox(t, root)
	for _, tt := range []struct {
		name string
		prog Program
		opts Options
	}{
		{"unknown language", Program{Language: "cobol"}, Options{Checker: "exact"}},
		{"unknown checker", Program{Language: "python", Source: []byte("print(3)")}, Options{Checker: "magic"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if v, _ := Evaluate(context.Background(), sb, box, tt.prog, sums, tt.opts); v.Verdict != protocol.IE {
				t.Errorf("got %s, want IE", v.Verdict)
			}
		})
	}
}
