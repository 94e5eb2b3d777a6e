// The page's clock, synchronised with the server's over the socket, and the reveal of
// a start at its instant. internal/clocksync is the same algorithm in Go, for the
// benchmarks' clients; a test checks that the two agree on recorded samples.
//
// Times are milliseconds since the Unix epoch, with fractions: the page's clock is
// performance.timeOrigin + performance.now() (monotonic, never Date.now() alone), the
// server's is its wall clock.

// Samples kept: the estimate is the intersection of the last WINDOW's bounds.
export const WINDOW = 16;
// A sample's round trip may be at most MAX_RTT ms; longer ones are discarded.
export const MAX_RTT = 10000;
// DRIFT bounds how fast two clocks drift apart (100 ppm): an old sample's bounds widen
// by it.
export const DRIFT = 100e-6;

// now is the page's monotonic clock, in ms since the epoch.
export const now = () => performance.timeOrigin + performance.now();

// bounds is the interval of offsets the kept sample s allows at page time t: its offset
// ± half its round trip, widened by the drift since it was taken (or until it was taken,
// for a time before it); radius is the sample's error bound on its own.
const bounds = (s, t) => {
  const radius = s.rtt / 2 + Math.abs(t - s.at) * DRIFT;
  return { lo: s.offset - radius, hi: s.offset + radius, radius };
};

// ClockSync estimates the server's clock from sync samples, the NTP way: a sample is the
// page's send time t0, the server's receive and send times t1 and t2, and the page's
// receive time t3. Its round trip is (t3 − t0) − (t2 − t1) and its offset of the
// server's clock from the page's ((t1 − t0) + (t2 − t3)) / 2. Whatever the two ways
// took, the true offset is at least t2 − t3 (the way back took no less than nothing)
// and at most t1 − t0 (nor did the way out): the sample's offset ± half its round trip,
// widened by the drift since it was taken. Every sample's bounds hold, so the offset is
// in their intersection: the estimate is its middle, within half its width. The sample
// with the quickest way out and the one with the quickest way back both count, so under
// jitter the bound is much tighter than any one sample's half round trip; a sample that
// queueing inflated has wide bounds that change nothing.
//
// When a new sample's bounds leave no offset in common with the older samples' (a clock
// stepped, or drifted faster than DRIFT), no estimate can honour them all: the older
// ones are dropped, back to the newest that still agree with the newer, since the newest
// tell the clock as it is now. (The estimate does the same at a time before the last
// sample arrived, where the bounds are narrower.)
//
// internal/clocksync is the same in Go, operation for operation: a test checks that the
// two agree to the last bit.
export class ClockSync {
  constructor() {
    this.samples = [];
  }

  // add records a sample and reports whether it was kept.
  add(t0, t1, t2, t3) {
    const rtt = (t3 - t0) - (t2 - t1);
    if (!(rtt >= 0) || rtt > MAX_RTT) return false;
    this.samples.push({ rtt, offset: ((t1 - t0) + (t2 - t3)) / 2, at: t3 });
    if (this.samples.length > WINDOW) this.samples.shift();
    const { used } = this.intersect(t3);
    this.samples.splice(0, this.samples.length - used);
    return true;
  }

  // intersect intersects the bounds at page time t of the newest samples, newest first,
  // up to the first that leaves nothing in common with the newer ones: {lo, hi} and the
  // samples that set its ends (by index), and how many samples it took.
  intersect(t) {
    let lo = 0;
    let hi = 0;
    let ilo = -1;
    let ihi = -1;
    let used = 0;
    for (let i = this.samples.length - 1; i >= 0; i--) {
      const b = bounds(this.samples[i], t);
      if (used > 0 && (b.lo > hi || b.hi < lo)) break;
      if (used === 0 || b.lo > lo) {
        lo = b.lo;
        ilo = i;
      }
      if (used === 0 || b.hi < hi) {
        hi = b.hi;
        ihi = i;
      }
      used++;
    }
    return { lo, hi, ilo, ihi, used };
  }

  // estimate returns {offset, error, rtt} at page time t (ms), or null without samples:
  // server time = page time + offset, within ± error, the middle of the intersection and
  // half its width (when one sample sets both its ends, that sample's offset and error
  // bound as such); rtt is the least round trip among the samples of the intersection.
  estimate(t) {
    const { lo, hi, ilo, ihi, used } = this.intersect(t);
    if (used === 0) return null;
    let rtt = Infinity;
    for (const s of this.samples.slice(this.samples.length - used)) rtt = Math.min(rtt, s.rtt);
    if (ilo === ihi) {
      const s = this.samples[ilo];
      return { offset: s.offset, error: bounds(s, t).radius, rtt };
    }
    return { offset: (lo + hi) / 2, error: (hi - lo) / 2, rtt };
  }
}

// SPIN is how long before a reveal the page stops sleeping and watches the clock.
export const SPIN = 4;

// revealAt calls fn at server time at (ms), given the estimate est, and returns a
// function that cancels it. fn gets {late, target}: late when the page learnt of the
// instant after it had passed (it is then called at once); target is the page time it
// aimed at. A timer sleeps until SPIN ms before, then the page watches its clock.
export function revealAt(at, est, fn) {
  const target = at - (est ? est.offset : 0);
  let cancelled = false;
  let timer = null;
  const fire = () => {
    if (cancelled) return;
    while (now() < target) {
      // the last milliseconds: a timer is not precise enough
    }
    fn({ late: false, target });
  };
  const wait = target - now();
  if (wait <= 0) {
    fn({ late: true, target });
  } else if (wait <= SPIN) {
    fire();
  } else {
    timer = setTimeout(fire, wait - SPIN);
  }
  return () => {
    cancelled = true;
    if (timer !== null) clearTimeout(timer);
  };
}

// Syncer keeps a ClockSync fed over a page's socket: a burst of samples at connect, after
// a reconnect and when the tab is shown again, and one every 20 s; send sends a frame.
export class Syncer {
  static BURST = 8;
  static SPACING = 30; // ms between the samples of a burst
  static EVERY = 20000; // ms between samples after it

  constructor(send) {
    this.clock = new ClockSync();
    this.send = send;
    this.timers = [];
    this.interval = null;
    this.lastBurst = -Infinity;
  }

  sample() {
    this.send({ type: 'sync', t0: now() });
  }

  // burst sends BURST samples SPACING apart, unless one is still under way (a tab
  // switched back and forth in a hurry would send more samples than the socket's rate).
  burst() {
    const t = now();
    if (t - this.lastBurst < Syncer.BURST * Syncer.SPACING) return;
    this.lastBurst = t;
    this.timers.forEach(clearTimeout);
    this.timers = [];
    for (let i = 0; i < Syncer.BURST; i++) this.timers.push(setTimeout(() => this.sample(), i * Syncer.SPACING));
  }

  // start begins a burst and the samples after it; stop ends them.
  start() {
    this.stop();
    this.burst();
    this.interval = setInterval(() => this.sample(), Syncer.EVERY);
  }

  stop() {
    this.timers.forEach(clearTimeout);
    this.timers = [];
    this.lastBurst = -Infinity;
    clearInterval(this.interval);
  }

  // add takes the server's sync frame m, received at page time received.
  add(m, received) {
    this.clock.add(m.t0, m.t1, m.t2, received);
  }

  // estimate is the clock's estimate at page time t (now by default), or null.
  estimate(t = now()) {
    return this.clock.estimate(t);
  }

  // serverNow is the server's clock by the estimate (the page's own without one).
  serverNow() {
    return now() + (this.estimate()?.offset ?? 0);
  }
}
