// The host page: create or open a room, run its questions, watch answers.
import {
  $,
  api,
  clock,
  connect,
  esc,
  languageName,
  letter,
  renderLeaderboard,
  store,
  verdictNames,
  verdictStats,
} from '/static/common.js';
import { Syncer } from '/static/clock.js';

const ADMIN = 'bulb.admin'; // the admin token, shared with the admin page
const HOST = 'bulb.host'; // {code, hostToken}

const SAMPLE = {
  title: 'Bulb sample quiz',
  ranking: 'first-come',
  winners: [100, 60, 30],
  timing: 'arrival',
  questions: [
    {
      kind: 'choice',
      text: 'Which layer of the OSI model does TCP belong to?',
      choices: ['Network', 'Transport', 'Session', 'Application'],
      answer: 1,
      points: 100,
    },
    {
      kind: 'short',
      text: 'What does TCP stand for?',
      answers: ['transmission control protocol'],
      points: 100,
      timeLimitMs: 30000,
    },
    { kind: 'choice', text: 'Which port does HTTPS use by default?', choices: ['80', '443', '8080'], answer: 1, points: 100 },
  ],
};

// SAMPLE_CODE shows the shape of a code question: the judge runs each program on
// every test's input and compares its output with the test's (checker: exact,
// lines, tokens or float:EPS); timeLimitMs is the CPU time of one test run.
const SAMPLE_CODE = {
  title: 'Bulb sample code quiz',
  ranking: 'first-come',
  winners: [300, 200, 100],
  questions: [
    {
      kind: 'code',
      text: 'Read two integers a and b from one line and print a + b.',
      languages: ['python', 'c', 'cpp'],
      tests: [
        { in: '1 2\n', out: '3\n' },
        { in: '40 2\n', out: '42\n' },
        { in: '-1000000000 -1000000000\n', out: '-2000000000\n' },
      ],
      timeLimitMs: 1000,
      memoryLimitMB: 256,
      checker: 'tokens',
      points: 300,
    },
  ],
};

// The room this tab hosts: its own (sessionStorage), else the one last opened in
// any tab (localStorage), so that reloading a tab never switches it to another
// tab's room.
const hostRoom = {
  get: () => JSON.parse(sessionStorage.getItem(HOST) ?? 'null') ?? store.get(HOST),
  set(h) {
    sessionStorage.setItem(HOST, JSON.stringify(h));
    store.set(HOST, h);
  },
  del() {
    sessionStorage.removeItem(HOST);
    store.del(HOST);
  },
};

let host = hostRoom.get();
let room = null; // the last GET /api/rooms/{code}
let answers = { n: 0, list: [] }; // answers to question n, in rank order
let conn = null;
let edit = null; // {version}: the quizVersion the open editor's text is based on

// The server's clock, synced over the host's socket: a timed start or close is an
// instant of the server's, whatever this laptop's clock says.
const sync = new Syncer((frame) => conn?.send(frame));
const serverTimeIn = (secs) => new Date(sync.serverNow() + secs * 1000).toISOString();

const call = (method, path, body) => api(method, `/api/rooms/${host.code}${path}`, { token: host.hostToken, body });
const showError = (text) => ($('error').textContent = text);
const bg = (promise) => promise.catch((err) => showError(err.message));

// run does a user action and shows its error.
async function run(action) {
  showError('');
  try {
    await action();
  } catch (err) {
    showError(err.message);
  }
}

// ---- loading ------------------------------------------------------------

let loading = null;
let reload = false;

// refresh reloads the room state; calls made while a load runs fold into one more load.
function refresh() {
  if (loading) {
    reload = true;
    return loading;
  }
  loading = (async () => {
    try {
      do {
        reload = false;
        room = await call('GET', '');
        room.players ??= [];
        if (room.current && answers.n !== room.current) await loadAnswers(room.current);
        render();
      } while (reload);
    } finally {
      loading = null;
    }
  })();
  return loading;
}

// loadAnswers reloads the answers to question n, keeping what frames told of
// them that the answer does not know yet (an answer, a verdict, a final rank).
async function loadAnswers(n) {
  const got = (await call('GET', `/questions/${n}/answers`)).answers ?? [];
  const frames = answers.n === n ? answers.list : [];
  answers = { n, list: got };
  for (const a of frames) mergeAnswer(a);
  renderAnswers();
}

// An answer is one player's; a code question takes several of each player,
// told apart by their arrival rank (the submission's number).
const answerKey = (a) => `${a.playerId}/${a.arrivalRank}`;

// progress orders what is known of one answer: accepted, judged (code), final.
const progress = (a) => (a.verdict ? 1 : 0) + (a.pending ? 0 : 2);

// mergeAnswer adds answer a to the list, or puts it in the place of the same
// answer if it knows as much or more, and keeps the list in rank order:
// ranked answers by rank, then the others by arrival.
function mergeAnswer(a) {
  const i = answers.list.findIndex((x) => answerKey(x) === answerKey(a));
  if (i < 0) answers.list.push(a);
  else if (progress(a) >= progress(answers.list[i])) answers.list[i] = a;
  const rank = (x) => (x.rank > 0 ? x.rank : Number.MAX_SAFE_INTEGER);
  answers.list.sort((x, y) => rank(x) - rank(y) || x.arrivalRank - y.arrivalRank);
}

async function loadLeaderboard() {
  renderLeaderboard($('leaderboard'), (await call('GET', '/leaderboard')).entries);
}

// ---- frames -------------------------------------------------------------

// soon refreshes the room state once shortly after a burst of frames (answers
// move the players' scores): one load for many answers.
let soonTimer = null;
function soon() {
  if (soonTimer) return;
  soonTimer = setTimeout(() => {
    soonTimer = null;
    bg(refresh().then(loadLeaderboard));
  }, 300);
}

function onFrame(m) {
  switch (m.type) {
    case 'welcome':
      // Frames sent while the socket was down are lost: reload what they told.
      bg(refresh().then(() => room?.current && loadAnswers(room.current)));
      break;
    case 'question':
    case 'start':
    case 'joined':
    case 'left':
    case 'timer':
      bg(refresh());
      break;
    case 'close':
      bg(refresh().then(() => loadAnswers(m.n)));
      autoAfterClose(m.n);
      break;
    case 'finished':
      bg(refresh().then(loadLeaderboard));
      break;
    case 'answered': {
      soon(); // the players' scores and the leaderboard move with the answers
      // A late verdict on an earlier question's code: not the list shown now.
      if (m.n !== answers.n && m.n < (room?.current ?? 0)) break;
      if (m.n !== answers.n) answers = { n: m.n, list: [] };
      const { type, ...a } = m;
      mergeAnswer(a);
      renderAnswersSoon();
      break;
    }
    case 'leaderboard':
      renderLeaderboard($('leaderboard'), m.entries);
      bg(refresh());
      break;
    case 'deleted':
      forget();
      showError(`Room deleted: ${m.message}`);
      break;
    case 'error':
      showError(m.message);
      break;
  }
}

// ---- view ---------------------------------------------------------------

function render() {
  $('room-code').textContent = room.code;
  $('room-title').textContent = room.title;
  $('join-url').textContent = `${location.origin}/?code=${room.code}`;
  $('host-token').textContent = host.hostToken;
  $('present-link').href = `/present#${encodeURIComponent(room.presenterToken)}`;
  $('lock').setAttribute('aria-pressed', String(room.locked));
  $('lock').textContent = room.locked ? 'Unlock the room' : 'Lock the room';
  // The main button drives the quiz one step at a time: open, start, close, next.
  const last = room.questions.length;
  const n = room.current;
  const step =
    room.phase === 'finished'
      ? ['', 'The quiz is over']
      : room.phase === 'open'
        ? ['start', `Start question ${n}`]
        : room.phase === 'live'
          ? ['close', `Close question ${n}`]
          : n + 1 > last
            ? ['', 'Every question was asked']
            : ['open', `Open question ${n + 1}`];
  $('next').dataset.act = step[0];
  $('next').textContent = step[1];
  $('next').disabled = !step[0];
  $('finish').disabled = room.phase === 'finished';
  if (room.phase === 'finished') $('notice').textContent = ''; // what an earlier move said is over too
  let phase = room.phase;
  if (room.current) phase += ` · question ${room.current}`;
  if (room.startAt && room.phase === 'open') phase += ` · bulb lights at ${clock(room.startAt)}`;
  if (room.closeAt && (room.phase === 'open' || room.phase === 'live')) phase += ` · closes at ${clock(room.closeAt)}`;
  $('phase').textContent = phase;
  renderEditVersion();
  // Auto-advance goes on after a close this page did not see (its socket was down).
  if ($('auto').checked && room.phase === 'closed' && !autoTimer) autoAfterClose(room.current);

  const delay = $('delay').value;
  setHTML(
    $('questions'),
    '<thead><tr><th scope="col">#</th><th scope="col">Kind</th><th scope="col">Question</th><th scope="col">Actions</th></tr></thead><tbody>' +
      room.questions
        .map((q) => {
          const detail =
            q.kind === 'choice'
              ? `<ol class="opts">${q.choices
                  .map((c, i) => `<li${i === q.answer ? ' class="right"' : ''}><b>${letter(i)}</b> ${esc(c)}</li>`)
                  .join('')}</ol>`
              : q.kind === 'code'
                ? codeDetail(q)
                : `<div class="muted">accepts: ${esc((q.answers ?? []).join(' | '))}</div>`;
          const btn = (cls, label) =>
            `<button type="button" class="${cls}" data-act="${cls}" data-n="${q.n}" aria-label="${label} question ${q.n}">${label}</button>`;
          const later = (cls, label) => btn(cls, `${label} in ${esc(delay)} s`);
          return `<tr${q.n === room.current ? ' class="current"' : ''}>
          <td>${q.n}</td><td>${esc(q.kind)}</td><td>${esc(q.text)}${detail}</td>
          <td class="actions">${btn('open', 'Open')}${btn('start', 'Start')}${later('start-at', 'Start')}${later('close-at', 'Close')}${btn('close', 'Close')}</td>
        </tr>`;
        })
        .join('') +
      '</tbody>',
  );

  $('player-count').textContent = room.players.length;
  setHTML($('players'), room.players
    .map(
      (p) =>
        `<li class="${p.connected ? 'on' : 'off'}"><span class="sr-only">${p.connected ? 'connected' : 'disconnected'}: </span>${esc(p.name)} <span class="muted">${esc(p.score)}</span>` +
        ` <button type="button" class="remove" data-player="${esc(p.playerId)}" data-name="${esc(p.name)}" aria-label="Remove ${esc(p.name)}">×</button></li>`,
    )
    .join(''));
}

// codeDetail sums up a code question for the question list: its languages,
// limits and checker, and its tests to unfold.
function codeDetail(q) {
  const tests = q.tests ?? [];
  const io = (t) => `<li><div class="io"><pre>${esc(t.in)}</pre><pre>${esc(t.out)}</pre></div></li>`;
  return `<div class="muted code-langs">${esc((q.languages ?? []).map(languageName).join(', '))} · ${tests.length} test${
    tests.length === 1 ? '' : 's'
  } · per test ${esc(q.timeLimitMs)} ms CPU, ${esc(q.memoryLimitMB)} MB · checker ${esc(q.checker)}</div>
    <details class="tests" data-key="tests/${q.n}"><summary>Tests: input, expected output</summary><ol>${tests.map(io).join('')}</ol></details>`;
}

// verdictCell shows what the judge found of a code submission.
function verdictCell(a) {
  const v = a.verdict;
  if (!v) return '<span class="verdict">judging…</span>';
  const stats = verdictStats(v);
  const msg = v.message
    ? v.message.includes('\n') || v.message.length > 80
      ? `<details data-key="${esc(answerKey(a))}/message"><summary>message</summary><pre class="code">${esc(v.message)}</pre></details>`
      : `<div class="muted">${esc(v.message)}</div>`
    : '';
  return `<b class="verdict" title="${esc(verdictNames[v.verdict] ?? '')}">${esc(v.verdict)}</b> ${
    v.verdict === 'AC' && a.pending ? '<span class="muted">rank pending</span>' : ''
  }${stats ? `<div class="muted">${esc(stats)}</div>` : ''}${msg}`;
}

// renderAnswersSoon renders the answers once for a burst of answered frames:
// at the next frame the browser draws, not once per answer.
let answersFrame = 0;
function renderAnswersSoon() {
  answersFrame ||= requestAnimationFrame(() => {
    answersFrame = 0;
    renderAnswers();
  });
}

function renderAnswers() {
  $('answers-n').textContent = answers.n ? `to question ${answers.n}` : '';
  const q = room?.questions.find((x) => x.n === answers.n);
  if (q?.kind === 'code') return renderSubmissions();
  const shown = (a) =>
    a.answer?.choice !== undefined ? `${letter(a.answer.choice)} ${q?.choices?.[a.answer.choice] ?? ''}` : a.answer?.text;
  const ms = (us) => (us == null ? '' : (us / 1000).toFixed(1));
  const reaction = answers.list.some((a) => a.reactionUs != null);
  setHTML($('answers'),
    `<thead><tr><th>#</th><th>Name</th><th>Answer</th><th>Right?</th><th class="num">Points</th><th class="num">Time ms</th><th class="num">Arrival</th>${
      reaction ? '<th class="num">Reaction ms</th>' : ''
    }</tr></thead><tbody>` +
    answers.list
      .map(
        (a) => `<tr class="${a.correct ? 'correct' : 'wrong'}">
          <td>${a.rank || '–'}</td><td>${esc(a.name)}</td><td>${esc(shown(a))}</td><td>${a.correct ? '✔' : a.falseStart ? '✘ false start' : '✘'}</td>
          <td class="num">${esc(a.points)}</td><td class="num">${ms(a.elapsedUs)}</td><td class="num">${esc(a.arrivalRank ?? '')}</td>
          ${reaction ? `<td class="num">${ms(a.reactionUs)}</td>` : ''}
        </tr>`,
      )
      .join('') +
      '</tbody>',
  );
}

// renderSubmissions lists the submissions to a code question: the ranked
// ones by rank, then the others by arrival, each with its verdict.
function renderSubmissions() {
  const lines = (code) => code.split('\n').length - (code.endsWith('\n') ? 1 : 0);
  const cls = (a) => (!a.verdict ? 'judging' : a.correct ? 'correct' : 'wrong');
  setHTML(
    $('answers'),
    '<thead><tr><th>#</th><th>Name</th><th>Program</th><th>Verdict</th><th class="num">Points</th>' +
      '<th class="num">Sent after s</th><th class="num">Submission</th></tr></thead><tbody>' +
      answers.list
        .map((a) => {
          const code = a.answer?.code ?? '';
          const n = lines(code);
          return `<tr class="${cls(a)}" data-submission="${esc(a.arrivalRank)}">
          <td>${a.rank || '–'}</td><td>${esc(a.name)}</td>
          <td><span class="lang">${esc(languageName(a.answer?.language))}</span>
            <details data-key="${esc(answerKey(a))}/code"><summary>${n} line${n === 1 ? '' : 's'}</summary><pre class="code">${esc(code)}</pre></details></td>
          <td>${verdictCell(a)}</td>
          <td class="num">${esc(a.points)}</td><td class="num">${(a.elapsedUs / 1e6).toFixed(1)}</td><td class="num">${esc(a.arrivalRank)}</td>
        </tr>`;
        })
        .join('') +
      '</tbody>',
  );
}

// setHTML replaces el's content with html, keeping open the <details> (by their
// data-key) that were open: a list redrawn on every frame or poll must not close
// what the host is reading.
//
// An unchanged list is left alone: a redraw would take the keyboard focus off a
// button and pull a button from under a click.
function setHTML(el, html) {
  if (el.dataset.html === html) return;
  el.dataset.html = html;
  const open = new Set([...el.querySelectorAll('details[open][data-key]')].map((d) => d.dataset.key));
  el.innerHTML = html;
  for (const d of el.querySelectorAll('details[data-key]')) d.open = open.has(d.dataset.key);
}

// ---- actions ------------------------------------------------------------

// act runs a question button: open, start, close, or start-at and close-at,
// which schedule a start or close after the delay.
async function act(what, n) {
  const timed = what.endsWith('-at');
  let body;
  if (timed) {
    const secs = Number($('delay').value);
    if (!(secs > 0)) throw new Error('The delay must be a positive number of seconds.');
    body = { at: serverTimeIn(secs) };
  }
  const r = await call('POST', `/questions/${n}/${timed ? what.slice(0, -3) : what}`, body);
  $('notice').textContent = what === 'start' ? `started: seq ${r.seq}, sent to ${r.recipients}` : '';
  await refresh();
}

// ---- running the quiz ---------------------------------------------------

// openNext opens the next question; in auto-advance mode its start is timed too.
async function openNext() {
  const n = room.phase === 'lobby' ? 1 : room.current + 1;
  if (n > room.questions.length) return;
  await call('POST', `/questions/${n}/open`);
  if ($('auto').checked) {
    const secs = Math.max(1, Number($('auto-start').value) || 5);
    await call('POST', `/questions/${n}/start`, { at: serverTimeIn(secs) });
    $('notice').textContent = `auto-advance: question ${n} starts in ${secs} s`;
  }
  await refresh();
}

// autoAfterClose, in auto-advance mode, opens the next question once the
// results of question n have been shown, or ends the quiz after the last one.
let autoTimer = null;
function autoAfterClose(n) {
  if (!$('auto').checked || !room) return;
  const secs = Math.max(1, Number($('auto-reveal').value) || 8);
  clearTimeout(autoTimer);
  autoTimer = setTimeout(() => {
    autoTimer = null;
    if (!$('auto').checked || !room || room.current !== n || room.phase !== 'closed') return; // moved on meanwhile
    run(n >= room.questions.length ? finish : openNext);
  }, secs * 1000);
  $('notice').textContent = `auto-advance: ${n >= room.questions.length ? 'the podium' : `question ${n + 1}`} in ${secs} s`;
}

async function finish() {
  await call('POST', '/finish');
  await refresh();
}

// confirmDialog asks a yes-or-no question in a modal dialog; it resolves to true for yes.
function confirmDialog(title, text, ok) {
  const d = $('confirm-dialog');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = ok;
  d.returnValue = '';
  d.showModal();
  return new Promise((resolve) => d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true }));
}

// download fetches an export with the host token and saves it as a file.
async function download(ext) {
  const res = await fetch(`/api/rooms/${host.code}/results.${ext}`, { headers: { Authorization: `Bearer ${host.hostToken}` } });
  if (!res.ok) throw new Error(`download failed: HTTP ${res.status}`);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = `bulb-${host.code}-results.${ext}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

$('next').onclick = () =>
  run(async () => {
    const act = $('next').dataset.act;
    if (act === 'open') return openNext();
    if (act) await call('POST', `/questions/${room.current}/${act}`);
    await refresh();
  });
$('finish').onclick = () =>
  run(async () => {
    if (await confirmDialog('End the quiz?', 'Students see the podium; no more questions or answers.', 'End the quiz')) await finish();
  });
$('lock').onclick = () =>
  run(async () => {
    await call('POST', '/lock', { locked: !room.locked });
    await refresh();
  });
$('download-csv').onclick = () => run(() => download('csv'));
$('download-json').onclick = () => run(() => download('json'));
$('delete-room').onclick = () =>
  run(async () => {
    const code = host.code;
    if (!(await confirmDialog(`Delete room ${code}?`, 'Its players, answers and scores are gone for good. Download the results first if you need them.', 'Delete'))) return;
    await call('DELETE', '');
    forget();
    $('notice').textContent = '';
    showError('');
    $('error').textContent = `Room ${code} deleted.`;
  });
$('players').onclick = (e) => {
  const b = e.target.closest('button.remove');
  if (!b) return;
  run(async () => {
    const name = b.dataset.name;
    if (!(await confirmDialog(`Remove ${name}?`, `${name} leaves the room: their seat, score and name are freed, and their page goes back to joining.`, 'Remove'))) return;
    await call('DELETE', `/players/${encodeURIComponent(b.dataset.player)}`);
    await refresh();
  });
};

// ---- quiz editor --------------------------------------------------------

// quizOf is the quiz of a room state, as a host writes it.
function quizOf(r) {
  const { title, ranking, timing, winners, questions } = r;
  return { title, ranking, timing, winners, questions: questions.map(({ n, ...q }) => q) };
}

function editStatus(text, kind = '') {
  $('edit-status').textContent = text;
  $('edit-status').className = kind;
}

// renderEditVersion says which quiz version the editor holds, and whether
// the room has moved on since.
function renderEditVersion() {
  if (!edit || !room) return;
  const stale = room.quizVersion !== edit.version;
  $('edit-version').textContent =
    `version ${edit.version}` + (stale ? ` · the room is at version ${room.quizVersion} now: reload before saving` : '');
  if (stale) $('reload-quiz').hidden = false;
}

// loadEditor puts the room's current quiz into the editor.
async function loadEditor() {
  await refresh();
  edit = { version: room.quizVersion };
  $('edit-json').value = JSON.stringify(quizOf(room), null, 2);
  $('editor').hidden = false;
  $('reload-quiz').hidden = true;
  editStatus('');
  renderEditVersion();
}

function closeEditor() {
  edit = null;
  $('editor').hidden = true;
  $('edit-json').value = '';
  editStatus('');
}

// saveQuiz sends the editor's quiz, based on the version it was loaded at.
async function saveQuiz() {
  let quiz;
  try {
    quiz = JSON.parse($('edit-json').value);
  } catch (err) {
    return editStatus(`The quiz is not valid JSON: ${err.message}`, 'error');
  }
  if (quiz === null || typeof quiz !== 'object' || Array.isArray(quiz)) {
    return editStatus('The quiz must be a JSON object: {"title": …, "questions": [ … ]}', 'error');
  }
  editStatus('saving…');
  $('save-quiz').disabled = true;
  try {
    const r = await call('PUT', '/quiz', { quizVersion: edit.version, quiz });
    edit.version = r.quizVersion;
    $('reload-quiz').hidden = true;
    editStatus(`saved (version ${r.quizVersion})`, 'ok');
    bg(refresh());
  } catch (err) {
    editStatus(err.message, 'error');
    // A conflict: someone else edited, or a question is open. Offer to start again from the room's quiz.
    if (err.status === 409) $('reload-quiz').hidden = false;
  } finally {
    $('save-quiz').disabled = false;
  }
}

async function enter(h) {
  host = h;
  try {
    await refresh();
  } catch (err) {
    host = null;
    throw err;
  }
  hostRoom.set(h);
  $('setup').hidden = true;
  $('room').hidden = false;
  renderAnswers();
  conn = connect(h.hostToken, {
    onFrame,
    onStatus(state, text) {
      $('status').textContent = text;
      $('status').dataset.state = state;
    },
    sync,
    room: h.code, // the admin token hosts every room: it names this one
    check: () => call('GET', ''),
    onGone(err) {
      forget();
      showError(`Room ${h.code} is gone: ${err.message}`);
    },
  });
  await loadLeaderboard();
}

function forget() {
  autoTimer && clearTimeout(autoTimer);
  autoTimer = null;
  conn?.close();
  conn = null;
  hostRoom.del();
  host = room = null;
  answers = { n: 0, list: [] };
  closeEditor();
  $('notice').textContent = '';
  $('room').hidden = true;
  $('setup').hidden = false;
  $('status').textContent = 'not connected';
  $('status').dataset.state = 'closed';
}

$('admin-token').value = store.get(ADMIN) ?? '';
$('admin-token').onchange = () => store.set(ADMIN, $('admin-token').value.trim());

$('sample').onclick = () => ($('quiz-json').value = JSON.stringify(SAMPLE, null, 2));
$('sample-code').onclick = () => ($('quiz-json').value = JSON.stringify(SAMPLE_CODE, null, 2));

$('quiz-file').onchange = () =>
  run(async () => {
    const file = $('quiz-file').files[0];
    if (file) $('quiz-json').value = await file.text();
  });

$('create').onclick = () =>
  run(async () => {
    const text = $('quiz-json').value;
    try {
      JSON.parse(text);
    } catch (err) {
      throw new Error(`The quiz is not valid JSON: ${err.message}`);
    }
    const token = $('admin-token').value.trim();
    store.set(ADMIN, token);
    const r = await api('POST', '/api/rooms', { token, body: text });
    await enter({ code: r.code, hostToken: r.hostToken });
  });

$('open-room').onclick = () =>
  run(() => {
    const code = $('open-code').value.trim();
    if (!/^\d{6}$/.test(code)) throw new Error('The room code is 6 digits.');
    return enter({ code, hostToken: $('open-token').value.trim() });
  });

$('questions').onclick = (e) => {
  const b = e.target.closest('button[data-n]');
  if (b) run(() => act(b.dataset.act, Number(b.dataset.n)));
};

$('delay').oninput = () => room && render();

$('edit-quiz').onclick = () => run(loadEditor);
$('reload-quiz').onclick = () => run(loadEditor);
$('save-quiz').onclick = () => saveQuiz();
$('cancel-edit').onclick = closeEditor;

$('refresh').onclick = () =>
  run(async () => {
    await refresh();
    await Promise.all([room.current ? loadAnswers(room.current) : null, loadLeaderboard()]);
  });

$('forget').onclick = () => {
  forget();
  showError('');
};

// Frames say nothing when a player's socket comes or goes: poll for it.
setInterval(() => room && !loading && bg(refresh()), 5000);

if (host) {
  run(() =>
    enter(host).catch((err) => {
      if ([401, 403, 404].includes(err.status)) hostRoom.del();
      throw err;
    }),
  );
}
