// Optional sounds, made on the page (WebAudio), no files: the bulb lighting, time
// running out, the podium. Off until the person turns them on (a page may only
// start audio after a gesture anyway); the choice is kept in localStorage.
import { store } from '/static/common.js';

const KEY = 'bulb.sound';
let ctx = null;

// tone plays a short beep of freq Hz, starting after delay seconds.
function tone(freq, delay = 0, length = 0.15) {
  if (!sounds.on) return;
  try {
    ctx ??= new AudioContext();
    const t = ctx.currentTime + delay;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.25, t + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + length);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t);
    osc.stop(t + length + 0.02);
  } catch {
    // no audio here: stay silent
  }
}

export const sounds = {
  on: store.get(KEY) === true,
  toggle() {
    this.on = !this.on;
    store.set(KEY, this.on);
    if (this.on) tone(660, 0, 0.08); // a gesture: the context may start now
  },
  go: () => tone(880, 0, 0.25),
  hurry: () => [0, 0.25, 0.5].forEach((d) => tone(520, d, 0.08)),
  podium: () => [523, 659, 784, 1047].forEach((f, i) => tone(f, i * 0.14, 0.3)),
};
