// Writes the expected estimates of samples.json: runs the page's web/clock.js (the file
// itself, as the browser gets it) on the recorded samples, and asks it for an estimate at
// each of the recorded times, after the last sample received before it, as TestRecorded
// and server's TestPageClockAgrees do. The samples and times stay as they are.
//
//	cd internal/clocksync/testdata && node record.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const src = readFileSync(new URL('../../../web/clock.js', import.meta.url), 'utf8');
const { ClockSync } = await import('data:text/javascript,' + encodeURIComponent(src));
const file = new URL('samples.json', import.meta.url);
const r = JSON.parse(readFileSync(file, 'utf8'));
const cs = new ClockSync();
const want = [];
let next = 0;
r.samples.forEach((s, i) => {
  cs.add(s.T0, s.T1, s.T2, s.T3);
  while (next < r.at.length && (i === r.samples.length - 1 || r.at[next] < r.samples[i + 1].T3)) {
    const e = cs.estimate(r.at[next++]);
    want.push({ Offset: e.offset, Error: e.error, RTT: e.rtt });
  }
});
if (next !== r.at.length) throw new Error(`estimated at ${next} of ${r.at.length} times`);
writeFileSync(file, JSON.stringify({ samples: r.samples, at: r.at, want }, null, 1) + '\n');
console.log(`${want.length} estimates written to samples.json`);
