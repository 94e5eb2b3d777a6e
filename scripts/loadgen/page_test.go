package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bulbquiz/bulb/internal/clocksync"
)

func TestPlanStart(t *testing.T) {
	est := &clocksync.Estimate{Offset: 20, Error: 0.5, RTT: 1}
	const now = 1000.0
	tests := []struct {
		name string
		ack  bool
		at   float64
		est  *clocksync.Estimate
		want plan
	}{
		{"immediate, synced clock: light now, seen later", false, 0, est, plan{report: "seen"}},
		{"immediate, no clock: light now, ack", false, 0, nil, plan{report: "ack"}},
		{"immediate, --ack: ack on receipt", true, 0, est, plan{ackNow: true}},
		{"synced: at the instant on the client's clock", false, 1200, est, plan{target: 1180, report: "seen"}},
		{"synced, no clock: the server's clock taken for its own", false, 1200, nil, plan{target: 1200, report: "ack"}},
		{"synced, --ack: no clock, ack on receipt", true, 1200, est, plan{ackNow: true, target: 1200}},
		{"synced, arrived after its instant: late, at once", false, 1010, est, plan{late: true, report: "seen"}},
		{"synced, exactly at its instant: late", false, 1020, est, plan{late: true, report: "seen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planStart(tt.ack, tt.at, tt.est, now); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSeenPause(t *testing.T) {
	for _, tt := range []struct {
		u    float64
		want time.Duration
	}{{0, 50 * time.Millisecond}, {0.5, 175 * time.Millisecond}, {0.999999, 299999750 * time.Nanosecond}} {
		if got := seenPause(tt.u); got != tt.want {
			t.Errorf("seenPause(%v): got %v, want %v", tt.u, got, tt.want)
		}
	}
}

// TestFrames: the frames a client sends are what docs/protocol.md says, in server time.
func TestFrames(t *testing.T) {
	var seen struct {
		Type                   string
		Seq                    uint64
		ReceivedAt, RevealedAt float64
		ErrorMs                float64
		Late                   bool
	}
	b := appendSeen(nil, 7, 1_700_000_000_000.25, 1_700_000_000_150.5, clocksync.Estimate{Offset: -2.25, Error: 0.375}, true)
	if err := json.Unmarshal(b, &seen); err != nil {
		t.Fatalf("seen frame %s: %v", b, err)
	}
	if seen.Type != "seen" || seen.Seq != 7 || seen.ReceivedAt != 1_699_999_999_998 || seen.RevealedAt != 1_700_000_000_148.25 ||
		seen.ErrorMs != 0.375 || !seen.Late {
		t.Errorf("got %s, want seq 7, receivedAt 1699999999998, revealedAt 1700000000148.25, errorMs 0.375, late", b)
	}
	for _, tt := range []struct{ got, want string }{
		{string(appendSync(nil, 1_700_000_000_000.125)), `{"type":"sync","t0":1700000000000.125}`},
		{string(appendAck(nil, 42)), `{"type":"ack","seq":42}`},
	} {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

// TestClock: the clients' clock reads the wall clock's milliseconds and never goes back.
func TestClock(t *testing.T) {
	k := newClock()
	wall := clocksync.Millis(time.Now())
	a := k.now()
	b := k.now()
	if b < a || a < wall-50 || a > wall+50 {
		t.Errorf("got readings %f then %f, want monotonic, near the wall clock's %f", a, b, wall)
	}
	if got := k.ms(k.base.Add(1500 * time.Microsecond)); got != k.baseMs+1.5 {
		t.Errorf("got %f, want base + 1.5 ms = %f", got, k.baseMs+1.5)
	}
}
