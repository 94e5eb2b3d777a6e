// The student page: join a room, watch the bulb, answer first.
import { $, api, connect, letter, renderLeaderboard, store } from '/static/common.js';

const KEY = 'bulb.player'; // {code, playerId, token, name}

let session = store.get(KEY);
let conn = null;
// What the page knows of the current question. phase is "open", "live" or
// "closed"; sending is true while an answer awaits its result or error;
// sent is that answer frame, and retried whether it was sent again already.
let st = { q: null, phase: 'open', answered: false, sending: false, online: false, sent: null, retried: false };

// retryDelay is how long the page waits before it sends an answer again
// that the server refused as unavailable.
const retryDelay = 1000;

// ---- frames -------------------------------------------------------------

function onFrame(m, ws) {
  // The ack goes out before anything else: it measures delivery.
  if (m.type === 'start') ws.send(JSON.stringify({ type: 'ack', seq: m.seq }));
  switch (m.type) {
    case 'start':
      setBulb(true);
      st.phase = 'live';
      update();
      break;
    case 'welcome':
      $('score').textContent = m.score ?? 0;
      setQuestion(m.question ?? null, m.phase, Boolean(m.answered));
      showResult('');
      if (m.answered) showOutcome(m.answered);
      loadLeaderboard();
      break;
    case 'question':
      setQuestion(m, 'open', false);
      showResult('');
      showError('');
      break;
    case 'close':
      if (m.n !== st.q?.n) break;
      setBulb(false);
      st.phase = 'closed';
      if (!st.answered) showResult('Closed: no answer from you this time.');
      update();
      break;
    case 'result':
      if (m.n !== st.q?.n) break;
      if (st.retried) showError('');
      st.answered = true;
      st.sending = false;
      $('score').textContent = Number($('score').textContent) + m.points;
      showOutcome(m);
      update();
      break;
    case 'error':
      if (m.code === 'unavailable' && st.sending && !st.retried && (m.n === undefined || m.n === st.q?.n)) {
        retry(st.sent);
        break;
      }
      showError(m.message);
      if (m.n === undefined || m.n === st.q?.n) {
        st.sending = false;
        if (m.code === 'already_answered') st.answered = true;
        update();
      }
      break;
    case 'leaderboard':
      showLeaderboard(m.entries);
      break;
  }
}

// ---- view ---------------------------------------------------------------

function setBulb(lit) {
  const b = $('bulb');
  b.classList.toggle('lit', lit);
  b.dataset.lit = String(lit);
}

function setQuestion(q, phase, answered) {
  st = { ...st, q, phase, answered, sending: false, sent: null, retried: false };
  $('question').textContent = q ? `${q.n}. ${q.text}` : 'Waiting for the host to open a question…';
  const buttons = (q?.kind === 'choice' ? q.choices : []).map((text, i) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'choice';
    b.dataset.choice = i;
    b.innerHTML = `<span class="letter">${letter(i)}</span> `;
    b.append(text);
    b.onclick = () => {
      if (sendAnswer({ choice: i })) b.classList.add('chosen');
    };
    return b;
  });
  $('choices').replaceChildren(...buttons);
  $('short-form').hidden = q?.kind !== 'short';
  $('text-answer').value = '';
  setBulb(phase === 'live');
  update();
}

// update enables the answer controls only while an answer can be sent.
function update() {
  const can = st.online && st.phase === 'live' && !st.answered && !st.sending;
  for (const el of [...$('choices').children, $('text-answer'), $('submit-text')]) el.disabled = !can;
}

function showResult(text, kind = '') {
  $('result').textContent = text;
  $('result').className = kind;
}

// showOutcome shows a result frame: the verdict on our answer.
function showOutcome(r) {
  if (r.pending) showResult('Answer received. Ranking is settled when the question closes…', 'pending');
  else if (r.correct) showResult(`Correct!${r.rank ? ` Rank ${r.rank}` : ''} · +${r.points} points`, 'correct');
  else showResult('Wrong answer · 0 points', 'wrong');
}

function showError(text) {
  $('error').textContent = text;
}

function showLeaderboard(entries) {
  renderLeaderboard($('leaderboard'), entries, session?.playerId);
  const mine = entries?.find((e) => e.playerId === session?.playerId);
  if (mine) $('score').textContent = mine.score;
}

// ---- actions ------------------------------------------------------------

function sendAnswer(fields) {
  const frame = { type: 'answer', n: st.q.n, ...fields };
  if (!conn.send(frame)) {
    showError('Not connected: wait for the connection to come back.');
    return false;
  }
  showError('');
  st = { ...st, sending: true, sent: frame, retried: false };
  update();
  return true;
}

// retry sends an answer frame the server could not serve once more, after a
// pause. Answers are idempotent: if the first one was stored after all, the
// server gives its result again.
function retry(frame) {
  st.retried = true;
  showError('server busy, retrying…');
  setTimeout(() => {
    if (!st.sending || st.sent !== frame) return; // a new question or a new connection meanwhile
    if (!conn?.send(frame)) {
      showError('Not connected: wait for the connection to come back.');
      st.sending = false;
      update();
    }
  }, retryDelay);
}

async function loadLeaderboard() {
  try {
    const lb = await api('GET', `/api/rooms/${session.code}/leaderboard`, { token: session.token });
    showLeaderboard(lb.entries);
  } catch (err) {
    showError(err.message);
  }
}

function enter() {
  $('join-form').hidden = true;
  $('game').hidden = false;
  $('me').textContent = session.name;
  $('room').textContent = session.code;
  $('result').textContent = '';
  const { code, token } = session;
  conn = connect(token, {
    onFrame,
    onStatus(state, text) {
      $('status').textContent = text;
      $('status').dataset.state = state;
      st.online = state === 'open';
      update();
    },
    check: () => api('GET', `/api/rooms/${code}/leaderboard`, { token }),
    onGone(err) {
      leave();
      showError(`Your seat in room ${code} is gone (${err.message}). Join again.`);
    },
  });
}

function leave() {
  conn?.close();
  conn = null;
  store.del(KEY);
  session = null;
  st = { q: null, phase: 'open', answered: false, sending: false, online: false, sent: null, retried: false };
  $('game').hidden = true;
  $('join-form').hidden = false;
  $('status').textContent = 'not connected';
  $('status').dataset.state = 'closed';
  showError('');
}

$('join-form').onsubmit = async (e) => {
  e.preventDefault();
  const code = $('code').value.trim();
  const name = $('name').value.trim();
  if (!/^\d{6}$/.test(code)) return showError('The room code is 6 digits.');
  if (!name) return showError('Type your name.');
  $('join').disabled = true;
  try {
    const r = await api('POST', `/api/rooms/${code}/players`, { body: { name } });
    session = { code, playerId: r.playerId, token: r.token, name };
    store.set(KEY, session);
    showError('');
    enter();
  } catch (err) {
    showError(err.message);
  } finally {
    $('join').disabled = false;
  }
};

$('short-form').onsubmit = (e) => {
  e.preventDefault();
  const text = $('text-answer').value.trim();
  if (text) sendAnswer({ text });
};

$('leave').onclick = leave;

if (session) enter();
else $('code').value = new URLSearchParams(location.search).get('code') ?? '';
