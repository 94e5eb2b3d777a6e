// The page's clock, synchronised with the server's over the socket, and the reveal of
// a start at its instant. internal/clocksync is the same algorithm in Go, for the
// benchmarks' clients; a test checks that the two agree on recorded samples.
//
// Times are milliseconds since the Unix epoch, with fractions: the page's clock is
// performance.timeOrigin + performance.now() (monotonic, never Date.now() alone), the
// server's is its wall clock.

// Samples kept: the estimate is the best of the last WINDOW.
export const WINDOW = 16;
// A sample's round trip may be at most MAX_RTT ms; longer ones are discarded.
export const MAX_RTT = 10000;
// DRIFT bounds how fast two clocks drift apart (100 ppm): an old sample's error grows
// by it.
export const DRIFT = 100e-6;

// now is the page's monotonic clock, in ms since the epoch.
export const now = () => performance.timeOrigin + performance.now();

// ClockSync estimates the server's clock from sync samples, the NTP and Cristian way:
// a sample is the page's send time t0, the server's receive and send times t1 and t2,
// and the page's receive time t3. Its round trip is (t3 − t0) − (t2 − t1) and the
// offset of the server's clock from the page's ((t1 − t0) + (t2 − t3)) / 2, exact
// when the way out and the way back take as long, and off by at most half the round
// trip otherwise. Queueing inflates some samples, so the estimate is the sample with
// the least error bound: half its round trip, plus the drift since it was taken.
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
    return true;
  }

  // estimate returns {offset, error, rtt} at page time t (ms), or null without samples:
  // server time = page time + offset, within ± error.
  estimate(t) {
    let best = null;
    for (const s of this.samples) {
      const error = s.rtt / 2 + Math.max(t - s.at, 0) * DRIFT;
      if (best === null || error <= best.error) best = { offset: s.offset, error, rtt: s.rtt };
    }
    return best;
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
  }

  sample() {
    this.send({ type: 'sync', t0: now() });
  }

  burst() {
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
