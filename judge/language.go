package judge

import "time"

// Language says how to build and run a program in one language. Commands run inside the
// sandbox, in /box, where the source has been written under Source.
type Language struct {
	Name   string // shown to people, e.g. "C++17 (g++)"
	Source string // file name of the source in the box
	Binary string // file name the compiler writes; "" when it writes none to run (a syntax check)
	// Compile is the compile command; nil for none. With no Binary it only checks the
	// source (Python's py_compile): a failure is CE, and the source itself is run.
	Compile []string
	Run     []string // run command
	// CompileLimits bound the compilation; zero fields take DefaultCompileLimits'.
	CompileLimits Limits
}

// DefaultCompileLimits bound a compilation: more time, memory and processes than a run
// (gcc runs cc1, as, collect2 and ld), and a short output for the error message.
var DefaultCompileLimits = Limits{
	CPU:       10 * time.Second,
	Wall:      20 * time.Second,
	Memory:    512 << 20,
	Processes: 32,
	Output:    64 << 10,
	FileSize:  64 << 20,
	Disk:      128 << 20,
}

// Languages is the table of languages by key (the key a submission names). Add a
// language by adding a row; its programs must be installed under /usr.
var Languages = map[string]Language{
	"python": {
		Name:   "Python 3",
		Source: "main.py",
		// A syntax error is a compile error, as in C: py_compile parses the whole program
		// before any test runs, so it is never taken for a runtime error (RE).
		Compile: []string{"/usr/bin/python3", "-S", "-m", "py_compile", "main.py"},
		Run:     []string{"/usr/bin/python3", "-S", "main.py"},
	},
	"c": {
		Name:    "C17 (gcc)",
		Source:  "main.c",
		Binary:  "main",
		Compile: []string{"/usr/bin/gcc", "-O2", "-std=c17", "-fmax-errors=20", "-o", "main", "main.c", "-lm"},
		Run:     []string{"./main"},
	},
	"cpp": {
		Name:    "C++17 (g++)",
		Source:  "main.cpp",
		Binary:  "main",
		Compile: []string{"/usr/bin/g++", "-O2", "-std=c++17", "-fmax-errors=20", "-o", "main", "main.cpp"},
		Run:     []string{"./main"},
	},
}
