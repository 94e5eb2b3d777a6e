package clocksync

import (
	"runtime"
	"sync/atomic"
	"time"
)

// The page's sync schedule, as in web/student.js: a burst of samples at connect (and after
// a reconnect, and when the tab is shown again), then one every so often.
const (
	BurstSamples = 8                     // SYNC_BURST: samples in a burst
	BurstSpacing = 30 * time.Millisecond // SYNC_SPACING: between a burst's samples
	Every        = 20 * time.Second      // SYNC_EVERY: between the samples after a burst
)

// Spin is how long before a reveal the page stops sleeping and watches its clock (SPIN in
// web/clock.js): a timer is not precise enough for the last milliseconds.
const Spin = 4 * time.Millisecond

// RevealAt calls fn at server time at (ms), on the clock now (ms, the client's), given the
// estimate est (ok false: no estimate, the offset taken as 0), as web/clock.js's revealAt
// does; it returns a function that cancels the call. fn gets late, true when the client
// learnt of the instant after it had passed (fn is then called at once, on the caller's
// goroutine), and target, the client time it aimed at. A timer sleeps until Spin before
// the target, then fn's goroutine watches the clock.
//
// The watching differs from the page's in one way: a page spins alone on its thread, but
// a measurement runs thousands of clients on a few cores, so the loop yields to the other
// goroutines between looks at the clock (runtime.Gosched) rather than hold a core that
// another client's reveal is waiting for.
func RevealAt(at float64, est Estimate, ok bool, now func() float64, fn func(late bool, target float64)) (cancel func()) {
	target := at
	if ok {
		target -= est.Offset
	}
	var cancelled atomic.Bool
	fire := func() {
		if cancelled.Load() {
			return
		}
		for now() < target {
			runtime.Gosched()
		}
		fn(false, target)
	}
	var timer *time.Timer
	const spinMs = float64(Spin) / float64(time.Millisecond)
	wait := target - now()
	switch {
	case wait <= 0:
		fn(true, target)
	case wait <= spinMs:
		fire()
	default:
		timer = time.AfterFunc(time.Duration((wait-spinMs)*float64(time.Millisecond)), fire)
	}
	return func() {
		cancelled.Store(true)
		if timer != nil {
			timer.Stop()
		}
	}
}
