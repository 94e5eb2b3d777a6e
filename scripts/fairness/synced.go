package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"time"

	"github.com/bulbquiz/bulb/internal/clocksync"
)

// The modes: one room each. A mode is the quiz's timing, under the immediate reveal (the
// lab's first two modes: each page lights its bulb when the start arrives) or, with the
// "synced+" prefix, under the synced reveal (every page lights it at the start's reveal
// instant on its synced clock; docs/protocol.md, "The synced reveal").
var allModes = []string{"arrival", "compensated", "synced+arrival", "synced+compensated"}

const syncedPrefix = "synced+"

// modeTiming is the quiz's timing of a mode: arrival or compensated.
func modeTiming(mode string) string { return strings.TrimPrefix(mode, syncedPrefix) }

// modeSynced reports whether a mode's quiz has the synced reveal.
func modeSynced(mode string) bool { return strings.HasPrefix(mode, syncedPrefix) }

// What a synced client does, as the student page does (web/student.js, web/clock.js).
const (
	syncBurst   = 8                      // sync samples at connect,
	syncSpacing = 30 * time.Millisecond  // this far apart,
	syncEvery   = 20 * time.Second       // then one every syncEvery
	spin        = 4 * time.Millisecond   // the reveal sleeps until spin before its instant, then watches the clock
	seenMin     = 50 * time.Millisecond  // the seen report waits seenMin to seenMax after the reveal,
	seenMax     = 300 * time.Millisecond // out of the fan-out's way
	maxLead     = time.Second            // the longest lead of a synced start (hub.Options.MaxLead)
)

// drawReaction draws a reaction time from normal(mean, sd), again while the draw is
// below floor (floor is below the mean, so the loop ends fast): every client, in every
// group and mode, reacts by this one distribution, never faster than floor.
func drawReaction(rng *rand.Rand, mean, sd, floor time.Duration) time.Duration {
	for {
		d := mean + time.Duration(rng.NormFloat64()*float64(sd))
		if d >= floor {
			return d
		}
	}
}

// seenPause is a seen report's random pause after the reveal, from [seenMin, seenMax).
func seenPause(rng *rand.Rand) time.Duration {
	return seenMin + time.Duration(rng.Int64N(int64(seenMax-seenMin)))
}

// msSince is t − from in milliseconds.
func msSince(from, t time.Time) float64 { return float64(t.Sub(from)) / float64(time.Millisecond) }

// startSync sends the client's clock sync samples, as the page does: a burst of syncBurst
// samples syncSpacing apart at connect, then one every syncEvery, until the connection
// ends. The read loop adds the server's replies to the client's clock.
func (c *client) startSync() {
	var sample func(i int)
	sample = func(i int) {
		c.send(fmt.Appendf(nil, `{"type":"sync","t0":%.6f}`, clocksync.Millis(time.Now())))
		next := syncEvery
		if i+1 < syncBurst {
			next = syncSpacing
		}
		c.after(next, func() { sample(i + 1) })
	}
	c.after(0, func() { sample(0) })
}

// reveal lights the bulb of question n's synced start (sequence number seq, recorded in
// rec) at its instant on the client's clock, as web/clock.js's revealAt does: the instant
// less the clock's offset, a sleep until spin before it, then a watch of the clock (each
// look yields the processor: every client of the room watches at the same time, on the
// two cores the server and the proxies also run on); a start that came after its instant
// lights at once and is late. From the lighting the client answers after reaction, and
// reports seen after pause; without a clock estimate it lights at the instant as if the
// clocks agreed and acks at once, as the page does.
func (c *client) reveal(n int, seq uint64, rec *record, reaction, pause time.Duration) {
	target := clocksync.Time(rec.at - rec.est.Offset)
	light := func(late bool) {
		lit := time.Now()
		c.mu.Lock()
		rec.lit, rec.late = lit, late
		c.mu.Unlock()
		c.scheduleAnswer(n, reaction)
		if !rec.clocked {
			c.send(fmt.Appendf(nil, `{"type":"ack","seq":%d}`, seq))
			return
		}
		msg := fmt.Appendf(nil, `{"type":"seen","seq":%d,"receivedAt":%.6f,"revealedAt":%.6f,"errorMs":%.6f,"late":%t}`,
			seq, clocksync.Millis(rec.receipt)+rec.est.Offset, clocksync.Millis(lit)+rec.est.Offset, rec.est.Error, late)
		c.after(pause, func() { c.send(msg) })
	}
	watch := func() {
		for time.Now().Before(target) {
			runtime.Gosched()
		}
		light(false)
	}
	switch wait := time.Until(target); {
	case wait <= 0:
		light(true)
	case wait <= spin:
		watch()
	default:
		c.after(wait-spin, watch)
	}
}

// revealInfo is what the server's fairness report says of a synced start's reveal (its
// `reveal` object).
type revealInfo struct {
	LeadUs      int64 `json:"leadUs"`
	OnTime      int   `json:"onTime"`
	Late        int   `json:"late"`
	SpreadUs    int64 `json:"spreadUs"`
	SkewUs      int64 `json:"skewUs"`
	FalseStarts int   `json:"falseStarts"`
}
