// The presenter screen, for the projector: how to join (the room code, the join URL
// and its QR code) and who has, each question large with the bulb, the time left and
// the answers coming in, then the right answer, how the room answered and the
// fastest, the leaderboard between questions and the podium at the end.
//
// It connects with the room's presenter token, read-only: the server never sends it
// an answer before the close, so nothing on the projector can give one away.
/* global uPlot */
import { revealAt, Syncer } from '/static/clock.js';
import { $, api, connect, letter, ordinal, renderLeaderboard, renderPodium } from '/static/common.js';
import { qrcode } from '/static/vendor/qrcode/qrcode.mjs';

const KEY = 'bulb.present'; // the presenter token, for this tab only

// The token comes in the URL's fragment (never sent to a server, nor in a
// Referer); the page keeps it for reloads and takes it out of the address bar,
// which the projector shows.
let token = decodeURIComponent(location.hash.slice(1));
if (token) {
  sessionStorage.setItem(KEY, token);
  history.replaceState(null, '', location.pathname + location.search);
} else {
  token = sessionStorage.getItem(KEY) ?? '';
}
const code = token.split('.')[0];

let conn = null;
let q = null; // the current question frame
let phase = 'lobby';
let players = new Map(); // playerId → name, in join order
let board = []; // the latest leaderboard entries
let endsAt = 0;
let ticker = null;
let cancelReveal = null;
let boardTimer = null;
let plot = null;
let total = 0; // questions in the quiz

const sync = new Syncer((frame) => conn?.send(frame));

// SHOW_REVEAL is how long the reveal stays before the leaderboard replaces it: 8 s, or
// ?reveal=SECONDS in the page's address.
const SHOW_REVEAL = (Number(new URLSearchParams(location.search).get('reveal')) || 8) * 1000;

const showError = (text) => ($('error').textContent = text);

// announce tells a screen reader what the screen now shows.
function announce(text) {
  $('announce').textContent = text;
}

// show makes one view visible.
function show(view) {
  for (const v of ['lobby', 'question', 'reveal', 'board', 'finished']) $(`${v}-view`).hidden = v !== view;
  document.body.dataset.view = view;
}

// ---- the lobby ----------------------------------------------------------

function renderJoin() {
  const url = `${location.origin}/?code=${code}`;
  $('room-code').textContent = code;
  $('room-code').setAttribute('aria-label', `room code ${code.split('').join(' ')}`);
  $('join-host').textContent = location.host;
  $('join-url').textContent = url;
  $('qr').replaceChildren(qrSVG(url));
}

// qrSVG draws the QR code of text (the library computes it) as an SVG path.
function qrSVG(text) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const quiet = 4; // the quiet zone the standard asks, in modules
  let d = '';
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + quiet} ${r + quiet}h1v1h-1z`;
  }
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${n + 2 * quiet} ${n + 2 * quiet}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `QR code of ${text}`);
  svg.setAttribute('shape-rendering', 'crispEdges');
  const bg = document.createElementNS(ns, 'rect');
  bg.setAttribute('width', '100%');
  bg.setAttribute('height', '100%');
  bg.setAttribute('fill', '#fff');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  svg.append(bg, path);
  return svg;
}

function renderNames() {
  const n = players.size;
  $('player-count').textContent = n;
  $('player-noun').textContent = n === 1 ? 'player' : 'players';
  $('names').replaceChildren(
    ...[...players.values()].map((name) => {
      const li = document.createElement('li');
      li.textContent = name;
      return li;
    }),
  );
}

// ---- a question ---------------------------------------------------------

const SHAPES = ['triangle', 'diamond', 'circle', 'square'];

function showQuestion(m) {
  q = m;
  phase = 'open';
  clearTimeout(boardTimer);
  cancelReveal?.();
  $('question-n').textContent = `Question ${m.n}`;
  $('progress').textContent = `question ${m.n} of ${total}`;
  $('question').textContent = m.text;
  setBulb(false);
  setTimer(0);
  setCount(0);
  $('choices').replaceChildren(
    ...(m.choices ?? []).map((text, i) => {
      const li = document.createElement('li');
      li.className = `c${i % 4} ${SHAPES[i % 4]}`;
      li.innerHTML = '<span class="shape" aria-hidden="true"></span><span class="letter"></span> <span class="text"></span>';
      li.querySelector('.letter').textContent = letter(i);
      li.querySelector('.text').textContent = text;
      return li;
    }),
  );
  show('question');
  announce(`Question ${m.n}: ${m.text}`);
}

function setBulb(lit) {
  $('bulb').classList.toggle('lit', lit);
  $('bulb').dataset.lit = String(lit);
  $('bulb').setAttribute('aria-label', lit ? 'The bulb is lit: answer now' : 'The bulb is off');
}

function onStart(m) {
  if (m.n !== q?.n) return;
  cancelReveal?.();
  const light = () => {
    cancelReveal = null;
    phase = 'live';
    setBulb(true);
    announce('Go!');
  };
  if (m.at) cancelReveal = revealAt(m.at, sync.estimate(), light);
  else light();
}

function setCount(n) {
  $('answer-count').textContent = n;
  $('answer-noun').textContent = `${q?.kind === 'code' ? 'submission' : 'answer'}${n === 1 ? '' : 's'}` + (players.size ? ` from ${players.size} players` : '');
}

function setTimer(at) {
  endsAt = at || 0;
  clearInterval(ticker);
  $('countdown').hidden = !endsAt;
  if (!endsAt) return;
  const tick = () => {
    const left = Math.max(0, endsAt - sync.serverNow());
    $('countdown-text').textContent = `${Math.ceil(left / 1000)} s`;
    $('countdown').classList.toggle('low', left <= 5000);
    if (left <= 0) clearInterval(ticker);
  };
  tick();
  ticker = setInterval(tick, 200);
}

// ---- after the close ----------------------------------------------------

function showReveal(rv) {
  phase = 'closed';
  cancelReveal?.();
  setBulb(false);
  setTimer(0);
  $('reveal-title').textContent = q ? `${q.n}. ${q.text}` : `Question ${rv.n}`;
  let answer = '';
  if (rv.kind === 'choice' && rv.answer !== undefined) answer = `${letter(rv.answer)}: ${q?.choices?.[rv.answer] ?? ''}`;
  else if (rv.kind === 'short') answer = (rv.answers ?? []).join(' · ');
  $('right-answer').textContent = answer ? `Right answer: ${answer}` : `${rv.correct} of ${rv.answered} solved it`;
  const labels =
    rv.kind === 'choice' ? rv.counts.map((_, i) => letter(i)) : rv.kind === 'code' ? ['solved', 'not solved'] : ['right', 'wrong'];
  const right = rv.kind === 'choice' ? [rv.answer] : [0];
  show('reveal'); // first: the chart takes its width from the shown view
  drawDistribution(labels, rv.counts, right);
  $('dist-caption').textContent = `${rv.answered} answered, ${rv.correct} right`;
  $('dist-table').innerHTML = '<caption>How the room answered</caption><tbody></tbody>';
  for (const [i, l] of labels.entries()) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<th scope="row"></th><td></td>';
    tr.cells[0].textContent = l + (right.includes(i) ? ' (right)' : '');
    tr.cells[1].textContent = rv.counts[i];
    $('dist-table').tBodies[0].append(tr);
  }
  $('fastest').replaceChildren(
    ...rv.fastest.map((f) => {
      const li = document.createElement('li');
      li.textContent = `${f.name} · ${(f.elapsedUs / 1e6).toFixed(2)} s · +${f.points}`;
      return li;
    }),
  );
  if (!rv.fastest.length) $('fastest').innerHTML = '<li class="muted">Nobody this time.</li>';
  announce(`${$('right-answer').textContent}. ${$('dist-caption').textContent}.`);
  clearTimeout(boardTimer);
  boardTimer = setTimeout(showBoard, SHOW_REVEAL);
}

// drawDistribution draws a bar per answer (uPlot), the right ones in green.
function drawDistribution(labels, counts, right) {
  plot?.destroy();
  const el = $('chart');
  el.replaceChildren();
  const xs = labels.map((_, i) => i);
  const colours = labels.map((_, i) => (right.includes(i) ? '#15803d' : '#5b6276'));
  const max = Math.max(1, ...counts);
  plot = new uPlot(
    {
      width: Math.max(320, el.clientWidth),
      height: 300,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, y: { range: [0, max * 1.15] } },
      axes: [
        {
          stroke: '#1c2030',
          font: 'bold 20px system-ui, sans-serif',
          grid: { show: false },
          splits: () => xs,
          values: (u, splits) => splits.map((i) => labels[i] ?? ''),
        },
        { stroke: '#1c2030', font: '16px system-ui, sans-serif', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] },
      ],
      series: [
        {},
        {
          label: 'answers',
          fill: '#5b6276',
          width: 0, // no outline: each bar then takes its own fill (disp)
          paths: uPlot.paths.bars({ size: [0.6, 120], disp: { fill: { unit: 3, values: () => colours } } }),
          points: { show: false },
        },
      ],
    },
    [xs, counts],
    el,
  );
  el.setAttribute('role', 'img');
  el.setAttribute('aria-label', labels.map((l, i) => `${l}: ${counts[i]}`).join(', '));
}

function showBoard() {
  if (phase !== 'closed') return;
  renderLeaderboard($('leaderboard'), board.slice(0, 10));
  show('board');
  announce('Leaderboard');
}

function showFinished(podium) {
  phase = 'finished';
  clearTimeout(boardTimer);
  cancelReveal?.();
  setTimer(0);
  renderPodium($('podium'), podium);
  show('finished');
  const first = podium?.[0];
  announce(`Quiz over! ${first ? `${first.name} wins with ${first.score} points.` : ''}`);
}

// ---- frames -------------------------------------------------------------

function onFrame(m) {
  switch (m.type) {
    case 'welcome':
      onWelcome(m);
      break;
    case 'joined':
      players.set(m.playerId, m.name);
      renderNames();
      if (phase === 'lobby') announce(`${m.name} joined`);
      break;
    case 'left':
      players.delete(m.playerId);
      renderNames();
      break;
    case 'question':
      // The current question again (a timed start was scheduled): not a new one.
      if (m.n === q?.n && (phase === 'open' || phase === 'live')) q = { ...q, ...m };
      else showQuestion(m);
      break;
    case 'start':
      onStart(m);
      break;
    case 'timer':
      if (m.n === q?.n) setTimer(m.endsAt);
      break;
    case 'tally':
      if (m.n === q?.n) setCount(m.answers);
      break;
    case 'close':
      setBulb(false);
      setTimer(0);
      break;
    case 'reveal':
      showReveal(m);
      break;
    case 'leaderboard':
      board = m.entries ?? [];
      if (!$('board-view').hidden) renderLeaderboard($('leaderboard'), board.slice(0, 10));
      break;
    case 'finished':
      showFinished(m.podium);
      break;
    case 'deleted':
      conn?.close();
      showError(`This room was deleted: ${m.message}.`);
      break;
  }
}

function onWelcome(m) {
  $('title').textContent = m.title || 'Bulb';
  document.title = `${m.title || 'Bulb'} · presenter`;
  players = new Map((m.players ?? []).map((p) => [p.playerId, p.name]));
  renderNames();
  phase = m.phase;
  total = m.questions;
  $('progress').textContent = m.current ? `question ${m.current} of ${total}` : `${total} questions`;
  if (m.phase === 'finished') return showFinished(m.podium);
  if (!m.question || m.phase === 'lobby') {
    show('lobby');
    return;
  }
  showQuestion(m.question);
  setCount(m.answers ?? 0);
  if (m.phase === 'live') {
    phase = 'live';
    if (m.question.at) cancelReveal = revealAt(m.question.at, sync.estimate(), () => setBulb(true));
    else setBulb(true);
    if (m.question.endsAt) setTimer(m.question.endsAt);
  }
  if (m.reveal) {
    showReveal(m.reveal);
    api('GET', `/api/rooms/${code}/leaderboard`, { token })
      .then((lb) => (board = lb.entries))
      .catch(() => {});
  }
}

if (!token || !/^\d{6}$/.test(code)) {
  showError("Open this screen from the host page's link “Open the presenter screen”: it carries the room's presenter token.");
} else {
  renderJoin();
  conn = connect(token, {
    onFrame,
    onStatus(state, text) {
      $('status').textContent = text;
      $('status').dataset.state = state;
    },
    sync,
    check: () => api('GET', `/api/rooms/${code}/leaderboard`, { token }),
    onGone(err) {
      sessionStorage.removeItem(KEY);
      showError(`This room is gone (${err.message}).`);
    },
  });
}
