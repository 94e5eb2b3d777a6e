// The fairness dashboard: how evenly each start reached the players of a room.
/* global uPlot */
import { $, api, clock, esc, store } from '/static/common.js';

const ADMIN = 'bulb.admin'; // the admin token, shared with the host page
const ROOM = 'bulb.admin.room'; // the room last looked at

let report = null; // the last GET /api/rooms/{code}/fairness
let selected = null; // seq of the start shown in detail
let plot = null;
let plotKey = ''; // what the plot shows, to redraw only on change
let busy = false;

const showError = (text) => ($('error').textContent = text);
const token = () => $('admin-token').value.trim();
const us = (v) => (v == null ? '–' : v.toLocaleString('en-US'));
const fixed = (v, digits = 2) => (v == null ? '–' : Number(v).toFixed(digits));

async function run(action) {
  try {
    await action();
    showError('');
  } catch (err) {
    showError(err.message);
  }
}

async function listRooms() {
  const { rooms } = await api('GET', '/api/rooms', { token: token() });
  $('rooms').innerHTML =
    '<option value="">pick a room…</option>' +
    rooms
      .map(
        (r) =>
          `<option value="${esc(r.code)}">${esc(r.code)} · ${esc(r.title)} · ${esc(r.phase)} · ${esc(r.players)} players</option>`,
      )
      .join('');
  $('rooms').value = $('room-code').value;
}

async function load() {
  const code = $('room-code').value.trim();
  if (!/^\d{6}$/.test(code)) throw new Error('Type or pick a 6-digit room code.');
  busy = true;
  try {
    report = await api('GET', `/api/rooms/${code}/fairness?limit=50`, { token: token() });
  } finally {
    busy = false;
  }
  render();
  $('updated').textContent = `room ${code}, updated ${new Date().toLocaleTimeString()}`;
}

// ---- view ---------------------------------------------------------------

// ms shows µs as milliseconds, to one decimal under 10.
const ms = (us) => {
  const v = (us ?? 0) / 1000;
  return v < 10 ? v.toFixed(1) : Math.round(v).toString();
};

// A spread under FAIR_MS is far below what a person can notice or react to (reactions
// vary by tens of ms from one try to the next); under CLOSE_MS it still is less than a
// blink.
const FAIR_MS = 10;
const CLOSE_MS = 50;
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// fairness words a spread in µs.
const fairness = (spreadUs) => (spreadUs / 1000 <= FAIR_MS ? 'Fair' : spreadUs / 1000 <= CLOSE_MS ? 'Nearly fair' : 'Not fair');

// startVerdict says in one sentence how fair a start was, for a teacher.
function startVerdict(s) {
  const r = s.reveal;
  if (r) {
    const reported = r.onTime + r.late;
    if (reported === 0) return 'No student has reported this start yet.';
    const who = reported === s.recipients ? `all ${plural(s.recipients, 'student', 'students')}` : `${reported} of ${s.recipients} students`;
    let text = `${r.late ? 'Not fair' : fairness(r.skewUs)}: ${who} saw the bulb within ${ms(r.skewUs)} ms of each other`;
    if (r.late) text += `, but ${plural(r.late, 'student', 'students')} got the signal too late to light on time`;
    if (r.falseStarts) text += `; ${plural(r.falseStarts, 'false start', 'false starts')} (answers faster than anyone reacts)`;
    return `${text}.`;
  }
  return s.recipients
    ? `${fairness(s.spreadUs)}: all ${plural(s.recipients, 'student', 'students')} got the signal within ${ms(s.spreadUs)} ms of each other.`
    : 'Nobody was connected.';
}

// MIN_BIAS_STARTS is how many starts the bias test needs (the server's rule).
const MIN_BIAS_STARTS = 5;

// biasVerdict says in one sentence whether anyone was systematically first or last.
function biasVerdict(bias) {
  const most = Math.max(0, ...bias.map((b) => b.starts));
  if (!bias.length) return 'No start yet.';
  if (most < MIN_BIAS_STARTS) return `Not enough starts yet to judge bias (needs ${MIN_BIAS_STARTS}; ${plural(most, 'start', 'starts')} so far).`;
  const flagged = bias.filter((b) => b.flagged);
  if (!flagged.length) return `Nobody was systematically first or last over ${plural(most, 'start', 'starts')}.`;
  return `${plural(flagged.length, 'student was', 'students were')} systematically ${flagged.length === 1 ? `${side(flagged[0])}` : 'early or late'} over ${plural(most, 'start', 'starts')}: see below.`;
}

// side says whether a flagged student tends to get the signal early or late.
const side = (b) => ((b.meanAckPct ?? b.meanWrittenPct ?? 0.5) < 0.5 ? 'early' : 'late');

// studentVerdicts lists, in plain words, the students a teacher should know about.
function studentVerdicts(bias) {
  const notes = [];
  for (const b of bias) {
    const parts = [];
    if (b.flagged) parts.push(`systematically ${side(b)} to get the signal (p = ${Number(b.p).toPrecision(2)})`);
    if (b.late) parts.push(`got ${plural(b.late, 'start', 'starts')} too late to light on time: a slow connection`);
    if (b.falseStarts) parts.push(`${plural(b.falseStarts, 'false start', 'false starts')}`);
    if (parts.length) notes.push(`${b.name}: ${parts.join('; ')}.`);
  }
  return notes;
}

function render() {
  const starts = [...(report.starts ?? [])].sort((a, b) => b.seq - a.seq);
  if (!starts.some((s) => s.seq === selected)) selected = starts[0]?.seq ?? null;

  $('starts').innerHTML =
    `<thead><tr><th>Seq</th><th>Q</th><th>At</th><th>How fair</th><th class="num">Recipients</th><th class="num">Reported</th><th class="num">Dropped</th>
      <th class="num">Nodes</th><th class="num">Written p50</th><th class="num">p99</th><th class="num">max</th><th class="num">Spread</th>
      <th class="num">Ack p50</th><th class="num">Ack p99</th><th class="num">Ack spread</th></tr></thead><tbody>` +
    starts
      .map(
        (s) => `<tr${s.seq === selected ? ' class="selected"' : ''}>
          <td><button type="button" class="pick" data-seq="${s.seq}">#${s.seq}</button></td><td>${s.n}</td><td>${esc(clock(s.at))}</td>
          <td class="verdict">${esc(startVerdict(s))}</td>
          <td class="num">${s.recipients}</td><td class="num">${s.acked + (s.seen ?? 0)}</td><td class="num${s.dropped ? ' bad' : ''}">${s.dropped}</td>
          <td class="num" title="${esc(nodesTitle(s))}">${(s.nodes ?? []).length}</td><td class="num">${us(s.writtenUs?.p50)}</td><td class="num">${us(s.writtenUs?.p99)}</td><td class="num">${us(s.writtenUs?.max)}</td>
          <td class="num">${us(s.spreadUs)}</td><td class="num">${us(s.ackUs?.p50)}</td><td class="num">${us(s.ackUs?.p99)}</td>
          <td class="num">${us(s.ackSpreadUs)}</td>
        </tr>`,
      )
      .join('') +
    (starts.length ? '' : '<tr><td colspan="15" class="muted">No start yet.</td></tr>') +
    '</tbody>';

  renderDetail(starts.find((s) => s.seq === selected));

  $('start-verdicts').replaceChildren(
    ...(starts.length ? starts : [null]).map((s) => {
      const li = document.createElement('li');
      li.textContent = s ? `Start #${s.seq}, question ${s.n}, ${clock(s.at)}: ${startVerdict(s)}` : 'No start yet.';
      if (s) li.className = startVerdict(s).startsWith('Fair') ? 'ok' : 'warn';
      return li;
    }),
  );
  const biasRows = report.bias ?? [];
  $('bias-verdict').textContent = biasVerdict(biasRows);
  $('student-verdicts').replaceChildren(
    ...studentVerdicts(biasRows).map((t) => {
      const li = document.createElement('li');
      li.textContent = t;
      li.className = 'warn';
      return li;
    }),
  );

  $('bias-rule').textContent = report.biasRule ?? '';
  const bias = [...(report.bias ?? [])].sort((a, b) => a.p - b.p);
  $('bias').innerHTML =
    `<thead><tr><th>Name</th><th class="num">Starts</th><th class="num">Mean written pct</th><th class="num">Mean ack pct</th>
      <th class="num">z written</th><th class="num">z ack</th><th class="num">p</th><th>Flagged</th>
      <th class="num" title="synced starts that reached the student after the bulb's instant">Late</th>
      <th class="num" title="answers faster than anyone reacts">False starts</th>
      <th class="num" title="the error bound of the student's synced clock, as its page reported">Clock ± ms</th></tr></thead><tbody>` +
    bias
      .map(
        (b) => `<tr${b.flagged ? ' class="flagged"' : ''}>
          <td>${esc(b.name)}</td><td class="num">${b.starts}</td><td class="num">${fixed(b.meanWrittenPct)}</td>
          <td class="num">${fixed(b.meanAckPct)}</td><td class="num">${fixed(b.zWritten)}</td><td class="num">${fixed(b.zAck)}</td>
          <td class="num">${b.p == null ? '–' : Number(b.p).toPrecision(2)}</td><td>${b.flagged ? 'yes' : ''}</td>
          <td class="num${b.late ? ' bad' : ''}">${b.late ?? 0}</td><td class="num${b.falseStarts ? ' bad' : ''}">${b.falseStarts ?? 0}</td>
          <td class="num">${b.errorUs == null ? '–' : ms(b.errorUs)}</td>
        </tr>`,
      )
      .join('') +
    '</tbody>';
}

// nodesTitle lists a start's nodes, one a line, for a tooltip.
const nodesTitle = (s) =>
  (s.nodes ?? []).map((n) => `${n.node}: busUs ${us(n.busUs)} · ${n.recipients} recipients`).join('\n');

function renderDetail(s) {
  $('detail').hidden = !s;
  if (!s) return;
  const r = s.reveal;
  $('detail-title').textContent =
    `Start #${s.seq} · question ${s.n} · ${clock(s.at)} · ${s.players.length} players` +
    (r
      ? ` · synced: lead ${ms(r.leadUs)} ms, ${r.onTime} on time, ${r.late} late, reported reveals within ${ms(r.spreadUs)} ms` +
        ` (at most ${ms(r.skewUs)} ms with the clocks' error bounds, p99 ± ${ms(r.errorUs?.p99)} ms), ${r.falseStarts} false starts`
      : ' · immediate');
  renderChart(s);
  $('start-nodes').innerHTML =
    '<thead><tr><th>Node</th><th class="num">Recipients</th><th class="num">Bus µs (publish → fan-out)</th></tr></thead><tbody>' +
    (s.nodes ?? [])
      .map((n) => `<tr><td>${esc(n.node)}</td><td class="num">${us(n.recipients)}</td><td class="num">${us(n.busUs)}</td></tr>`)
      .join('') +
    '</tbody>';
  // Each node sends in its own order: group the players by node.
  const players = [...s.players].sort((a, b) => String(a.node ?? '').localeCompare(String(b.node ?? '')) || a.order - b.order);
  $('start-players').innerHTML =
    `<thead><tr><th>Node</th><th class="num">Send order</th><th>Name</th><th class="num">Enqueue µs</th><th class="num">Written µs</th>
      <th class="num">Ack µs</th><th class="num">RTT µs</th><th class="num" title="reported by the page, by its synced clock">Received µs</th>
      <th class="num" title="reported by the page">Lit µs</th><th class="num" title="the page's clock error bound">± µs</th><th>Late</th></tr></thead><tbody>` +
    players
      .map(
        (p) => `<tr><td>${esc(p.node)}</td><td class="num">${p.order}</td><td>${esc(p.name)}</td><td class="num">${us(p.enqueueUs)}</td>
          <td class="num">${us(p.writtenUs)}</td><td class="num">${us(p.ackUs)}</td>
          <td class="num">${us(p.rttUs)}</td><td class="num">${us(p.receivedUs)}</td><td class="num">${us(p.revealedUs)}</td>
          <td class="num">${us(p.errorUs)}</td><td${p.late ? ' class="bad"' : ''}>${p.late ? 'late' : ''}</td></tr>`,
      )
      .join('') +
    '</tbody>';
}

// renderChart plots the start's written delays and, for a synced start, the instants the
// pages reported lighting the bulb (else the acks), each sorted ascending: a flat curve is
// a fair start. Players without a figure are left out.
function renderChart(s) {
  const synced = Boolean(s.reveal);
  const second = (p) => (synced ? p.revealedUs : p.ackUs);
  const key = JSON.stringify([s.seq, s.players.map((p) => [p.writtenUs, second(p)])]);
  if (key === plotKey) return;
  plotKey = key;
  plot?.destroy();
  const sorted = (vals) => vals.filter((v) => v != null).sort((a, b) => a - b);
  const written = sorted(s.players.map((p) => p.writtenUs));
  const other = sorted(s.players.map(second));
  const x = s.players.map((_, i) => i + 1);
  const label = synced ? 'bulb lit µs (reported)' : 'ack µs';
  const opts = {
    width: $('chart').clientWidth,
    height: 300,
    // Axes at least a millisecond tall (ten for the lit instants and acks), written ones
    // from zero: a 27 µs spread is a flat line, as it is to a person, not a cliff
    // across the whole chart.
    scales: {
      x: { time: false },
      w: { range: (u, min, max) => [0, Math.max(max * 1.1, 1000)] },
      a: { range: (u, min, max) => (synced ? around(min, max, 10000) : [0, Math.max(max * 1.1, 10000)]) },
    },
    series: [
      { label: 'player' },
      { label: 'written µs', scale: 'w', stroke: '#2563eb', width: 2 },
      { label, scale: 'a', stroke: '#b45309', width: 2 },
    ],
    axes: [
      { label: 'players, each series sorted', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] },
      { scale: 'w', label: 'written µs', stroke: '#2563eb', size: 70 },
      { scale: 'a', label, stroke: '#b45309', side: 1, size: 80, grid: { show: false } },
    ],
  };
  plot = new uPlot(opts, [x, x.map((_, i) => written[i] ?? null), x.map((_, i) => other[i] ?? null)], $('chart'));
}

// around is a range about min..max that spans span at least, centred on them.
function around(min, max, span) {
  if (min == null || max == null) return [0, span];
  const pad = Math.max(0, span - (max - min)) / 2;
  return [Math.max(0, min - pad - (max - min) * 0.05), max + pad + (max - min) * 0.05];
}

// ---- wiring -------------------------------------------------------------

$('admin-token').value = store.get(ADMIN) ?? '';
$('room-code').value = store.get(ROOM) ?? '';

$('admin-token').onchange = () => store.set(ADMIN, token());
$('room-code').onchange = () => store.set(ROOM, $('room-code').value.trim());
$('list-rooms').onclick = () => run(listRooms);
$('refresh').onclick = () => run(load);
$('rooms').onchange = () => {
  if (!$('rooms').value) return;
  $('room-code').value = $('rooms').value;
  store.set(ROOM, $('rooms').value);
  selected = null;
  run(load);
};
$('starts').onclick = (e) => {
  const b = e.target.closest('button.pick');
  if (!b) return;
  selected = Number(b.dataset.seq);
  render();
};
window.onresize = () => plot?.setSize({ width: $('chart').clientWidth, height: 300 });

setInterval(() => {
  if ($('auto').checked && !busy && /^\d{6}$/.test($('room-code').value.trim())) run(load);
}, 3000);

if (token()) run(listRooms);
if ($('room-code').value) run(load);
