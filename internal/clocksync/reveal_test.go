package clocksync

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// clientNow is a client clock offsetMs ahead of the real one.
func clientNow(offsetMs float64) func() float64 {
	return func() float64 { return Millis(time.Now()) + offsetMs }
}

func TestRevealAt(t *testing.T) {
	const clientAhead = 3000.0 // the client's clock runs 3 s ahead: the server's offset is −3000
	now := clientNow(clientAhead)
	est := Estimate{Offset: -clientAhead, Error: 0.5, RTT: 1}
	for _, tt := range []struct {
		name     string
		inMs     float64 // the reveal instant, ms from now in server time
		ok       bool    // with an estimate
		wantLate bool
	}{
		{"sleeps, then spins to the instant", 30, true, false},
		{"within the spin: no timer", 2, true, false},
		{"past: at once, late", -5, true, true},
		{"without an estimate the client's clock is taken as the server's", 30, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			at := Millis(time.Now()) + tt.inMs // server time: the real clock
			type call struct {
				late         bool
				target, when float64
			}
			got := make(chan call, 1)
			RevealAt(at, est, tt.ok, now, func(late bool, target float64) { got <- call{late, target, now()} })
			var c call
			select {
			case c = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("fn was not called within 5 s")
			}
			wantTarget := at
			if tt.ok {
				wantTarget = at + clientAhead
			}
			if c.late != tt.wantLate || c.target != wantTarget {
				t.Errorf("got late %v, target %.3f; want %v, %.3f", c.late, c.target, tt.wantLate, wantTarget)
			}
			if !c.late && c.when < c.target {
				t.Errorf("called at client time %.3f, before its target %.3f", c.when, c.target)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		called := make(chan struct{}, 1)
		cancel := RevealAt(Millis(time.Now())+20, est, true, now, func(bool, float64) { called <- struct{}{} })
		cancel()
		select {
		case <-called:
			t.Error("fn called after cancel")
		case <-time.After(60 * time.Millisecond):
		}
	})
}

// TestPageConstants: the Go constants are the page's (web/clock.js and web/student.js).
func TestPageConstants(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	js := read("../../web/clock.js") + read("../../web/student.js")
	for _, tt := range []struct {
		name string
		want float64
	}{
		{"WINDOW", Window}, {"MAX_RTT", MaxRTT}, {"DRIFT", Drift}, {"SPIN", float64(Spin / time.Millisecond)},
		{"BURST", BurstSamples}, {"SPACING", float64(BurstSpacing / time.Millisecond)},
		{"EVERY", float64(Every / time.Millisecond)}, // Syncer's

	} {
		m := regexp.MustCompile(`(?:const|static) ` + tt.name + ` = ([0-9.e-]+);`).FindStringSubmatch(js)
		if m == nil {
			t.Errorf("%s: not found in web/clock.js or web/student.js", tt.name)
			continue
		}
		if got, err := strconv.ParseFloat(m[1], 64); err != nil || got != tt.want {
			t.Errorf("%s: got %s in the page, want %v as in Go", tt.name, m[1], tt.want)
		}
	}
}
