package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/bulbquiz/bulb/internal/clocksync"
)

// What the student page does (web/student.js, web/clock.js), in its figures; below, the
// clients doing it: the clock sync and the light of a start, then the report.
const (
	syncBurst   = 8                      // sync samples at connect
	syncSpacing = 30 * time.Millisecond  // between the samples of the burst
	syncEvery   = 20 * time.Second       // between samples after it
	spinBefore  = 4 * time.Millisecond   // a reveal sleeps until this long before its instant, then spins
	seenMin     = 50 * time.Millisecond  // the pause before a seen report: seenMin + [0, seenSpan)
	seenSpan    = 250 * time.Millisecond //
)

// clock is a client's own clock, as the page's performance.timeOrigin +
// performance.now(): milliseconds since the Unix epoch, monotonic (time.Time's
// monotonic reading from a base). Every client of a process shares it.
type clock struct {
	base   time.Time
	baseMs float64
}

func newClock() clock {
	b := time.Now()
	return clock{base: b, baseMs: clocksync.Millis(b)}
}

// ms is instant t on the clock.
func (k clock) ms(t time.Time) float64 { return k.baseMs + float64(t.Sub(k.base).Nanoseconds())/1e6 }

// now is the clock's reading now.
func (k clock) now() float64 { return k.ms(time.Now()) }

// plan is what a client does with a start it received.
type plan struct {
	ackNow bool    // acknowledge at once, on receipt
	target float64 // light the bulb at this instant on the client's clock (ms); 0: at once
	late   bool    // the start came after its instant: light at once
	report string  // once lit: "seen" (after a pause), "ack" (at once) or "" (acked already)
}

// planStart decides, as the page does, what a client does with a start whose reveal
// instant is at (server time, ms; 0 for the immediate reveal), received when its clock
// read now. ack is the old page (--ack): acknowledge on receipt, no clock. A page
// without a clock estimate (est nil: no sync answered yet) takes the server's clock
// for its own and acknowledges once lit; with one it lights at the instant on its
// synced clock and reports seen.
func planStart(ack bool, at float64, est *clocksync.Estimate, now float64) plan {
	p := plan{ackNow: ack}
	switch {
	case ack:
	case est == nil:
		p.report = "ack"
	default:
		p.report = "seen"
	}
	if at == 0 {
		return p
	}
	p.target = at
	if !ack && est != nil {
		p.target = at - est.Offset
	}
	if p.target <= now {
		p.target, p.late = 0, true
	}
	return p
}

// seenPause is the pause before a seen report, for u drawn from [0, 1).
func seenPause(u float64) time.Duration {
	return seenMin + time.Duration(u*float64(seenSpan))
}

// appendSeen appends the seen frame of start seq: received and revealed on the client's
// clock, turned into server time with est, as the page reports it.
func appendSeen(b []byte, seq uint64, received, revealed float64, est clocksync.Estimate, late bool) []byte {
	b = append(b, `{"type":"seen","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"receivedAt":`...)
	b = strconv.AppendFloat(b, received+est.Offset, 'f', -1, 64)
	b = append(b, `,"revealedAt":`...)
	b = strconv.AppendFloat(b, revealed+est.Offset, 'f', -1, 64)
	b = append(b, `,"errorMs":`...)
	b = strconv.AppendFloat(b, est.Error, 'f', -1, 64)
	b = append(b, `,"late":`...)
	b = strconv.AppendBool(b, late)
	return append(b, '}')
}

// appendSync appends a sync frame sent at t0 on the client's clock.
func appendSync(b []byte, t0 float64) []byte {
	b = append(b, `{"type":"sync","t0":`...)
	b = strconv.AppendFloat(b, t0, 'f', -1, 64)
	return append(b, '}')
}

// appendAck appends the ack of start seq.
func appendAck(b []byte, seq uint64) []byte {
	b = append(b, `{"type":"ack","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '}')
}

// onStart lights c's bulb as the page does (planStart): at once, or at the start's
// instant (sleeping until spinBefore ahead, then spinning); then reports, and answers
// after a reaction time from the light.
func (lg *loadgen) onStart(ctx context.Context, c *client, f frame, at time.Time) error {
	received := lg.clock.ms(at)
	var est *clocksync.Estimate
	if e, ok := c.est.Estimate(received); ok && !lg.cfg.ack {
		est = &e
	}
	p := planStart(lg.cfg.ack, f.At, est, lg.clock.now())
	if p.ackNow {
		if err := lg.send(ctx, c, "ack", appendAck(nil, f.Seq)); err != nil {
			return err
		}
		c.acks.Add(1)
	}
	light := func() {
		now := time.Now()
		r := reveal{at: now, late: p.late}
		if est != nil {
			r.server, r.clockErr, r.hasClock = lg.clock.ms(now)+est.Offset, est.Error, true
		}
		c.mu.Lock()
		c.reveals[f.Seq] = r
		c.mu.Unlock()
		switch p.report {
		case "ack":
			if lg.send(ctx, c, "ack", appendAck(nil, f.Seq)) == nil {
				c.acks.Add(1)
			}
		case "seen":
			msg := appendSeen(nil, f.Seq, received, lg.clock.ms(now), *est, p.late)
			lg.after(c, seenPause(lg.uniform()), true, func() {
				if lg.send(ctx, c, "seen", msg) == nil {
					c.seen.Add(1)
				}
			})
		}
		if lg.cfg.answer {
			msg := fmt.Appendf(nil, `{"type":"answer","n":%d,"choice":%d}`, f.N, lg.cfg.choice)
			lg.after(c, lg.reaction(), true, func() {
				if lg.send(ctx, c, "answer", msg) == nil {
					c.answers.Add(1)
					lg.sent.Add(1)
				}
			})
		}
	}
	if p.target == 0 {
		light()
		return nil
	}
	// The page's revealAt: a timer until spinBefore ahead, then it watches the clock.
	// Thousands of clients share two cores here, so the spin yields between readings.
	wait := time.Duration((p.target - lg.clock.now()) * float64(time.Millisecond))
	lg.after(c, max(0, wait-spinBefore), true, func() {
		for lg.clock.now() < p.target {
			runtime.Gosched()
		}
		light()
	})
	return nil
}

// startSync sends c's clock sync samples as the page does: a burst of syncBurst,
// syncSpacing apart, then one every syncEvery, until c stops.
func (lg *loadgen) startSync(ctx context.Context, c *client) {
	sample := func() {
		if lg.send(ctx, c, "sync", appendSync(nil, lg.clock.now())) == nil {
			c.syncs.Add(1)
		}
	}
	for i := range syncBurst {
		lg.after(c, time.Duration(i)*syncSpacing, false, sample)
	}
	var every func()
	every = func() {
		sample()
		lg.after(c, syncEvery, false, every)
	}
	lg.after(c, syncEvery, false, every)
}
