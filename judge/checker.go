package judge

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Check compares a program's output got with the expected output by the checker kind:
//
//   - "exact": byte for byte;
//   - "lines": line by line, ignoring trailing whitespace on each line and trailing empty lines;
//   - "tokens": the whitespace-separated tokens;
//   - "float:EPS" (e.g. "float:1e-6"): token by token, numbers equal within absolute or
//     relative error EPS, other tokens exactly.
//
// An unknown kind is an error.
func Check(kind string, expected, got []byte) (bool, error) {
	switch {
	case kind == "exact":
		return bytes.Equal(expected, got), nil
	case kind == "lines":
		e, g := lines(expected), lines(got)
		if len(e) != len(g) {
			return false, nil
		}
		for i := range e {
			if e[i] != g[i] {
				return false, nil
			}
		}
		return true, nil
	case kind == "tokens":
		return equalTokens(expected, got, func(a, b string) bool { return a == b }), nil
	case strings.HasPrefix(kind, "float:"):
		eps, err := strconv.ParseFloat(strings.TrimPrefix(kind, "float:"), 64)
		if err != nil || eps < 0 || math.IsNaN(eps) || math.IsInf(eps, 0) {
			return false, fmt.Errorf("judge: checker %q: bad epsilon", kind)
		}
		return equalTokens(expected, got, func(a, b string) bool { return closeEnough(a, b, eps) }), nil
	}
	return false, fmt.Errorf("judge: unknown checker %q", kind)
}

// lines splits s into lines without trailing whitespace, dropping trailing empty lines.
func lines(s []byte) []string {
	ls := strings.Split(string(s), "\n")
	for i := range ls {
		ls[i] = strings.TrimRight(ls[i], " \t\r\f\v")
	}
	for len(ls) > 0 && ls[len(ls)-1] == "" {
		ls = ls[:len(ls)-1]
	}
	return ls
}

func equalTokens(expected, got []byte, eq func(want, got string) bool) bool {
	e, g := strings.Fields(string(expected)), strings.Fields(string(got))
	if len(e) != len(g) {
		return false
	}
	for i := range e {
		if !eq(e[i], g[i]) {
			return false
		}
	}
	return true
}

// closeEnough compares two tokens: as numbers within absolute or relative eps when both
// are finite numbers, else exactly.
func closeEnough(want, got string, eps float64) bool {
	if want == got {
		return true
	}
	a, err1 := strconv.ParseFloat(want, 64)
	b, err2 := strconv.ParseFloat(got, 64)
	if err1 != nil || err2 != nil || math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a, 0) || math.IsInf(b, 0) {
		return false
	}
	d := math.Abs(a - b)
	return d <= eps || d <= eps*math.Abs(a)
}
