// The student page: join a room, watch the bulb, answer first.
import { Syncer, now, revealAt } from '/static/clock.js';
import {
  $,
  api,
  connect,
  letter,
  ordinal,
  renderLeaderboard,
  renderPodium,
  store,
} from '/static/common.js';
import { attachEditor } from '/static/editor.js';
import { DRAFT, codeQuestions } from '/static/student_code.js';
import { sounds } from '/static/sound.js';

const KEY = 'bulb.player'; // {code, playerId, token, name}

let session = store.get(KEY);
let conn = null;
// What the page knows of the current question. phase is "open", "live",
// "closed" or "finished"; sending is true while an answer awaits its result or
// error; sent is that answer frame, and retried whether it was sent again
// already; picked the choice sent, if any. For a code question, answered means
// solved (a submission was accepted) and code holds the submissions: subs by
// number, each {language, verdict} (verdict: the verdict frame, null while
// judged), and final, the result frame that ranked one of them. endsAt is when
// the question closes by itself, in server time (0: the host closes it).
const freshState = () => ({
  q: null,
  phase: 'lobby',
  answered: false,
  sending: false,
  online: false,
  sent: null,
  retried: false,
  picked: null,
  result: null,
  endsAt: 0,
  code: { subs: new Map(), final: null },
});
let st = freshState();

// The code questions' part of the page (student_code.js).
const { loadDraft, saveDraft, restoreCode, codeResult, codeVerdict, showCodeOutcome, renderSubmissions, submitCode } = codeQuestions({
  state: () => st,
  session: () => session,
  showResult,
  closedText,
  update,
  showError,
  sendAnswer,
});

// retryDelay is how long the page waits before it sends an answer again
// that the server refused as unavailable.
const retryDelay = 1000;

// ---- the synced clock and the reveal -------------------------------------

// The page's clock, synced with the server's (clock.js): a burst of samples
// at connect, when the tab is shown again and after a reconnect, and one now
// and then.
const sync = new Syncer((frame) => conn?.send(frame));
const clock = sync.clock;

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && st.online) sync.burst();
});

// serverNow is the server's clock by the page's estimate.
const serverNow = () => sync.serverNow();

// cancelReveal cancels the reveal waiting for its instant, if any; pending is
// the reveal {n, at} of a live question the page learnt of before its clock had
// a sample (from a welcome, or a start right after connecting), waiting for one.
let cancelReveal = null;
let pending = null;

// disarm forgets any reveal waiting for its instant or for a clock sample: the
// question moved on (closed, another one, the quiz over, a new connection).
function disarm() {
  cancelReveal?.();
  cancelReveal = null;
  pending = null;
}

// armReveal lights question n's bulb at its instant at (server time) on the
// synced clock, or once the clock has its first sample.
function armReveal(n, at) {
  disarm();
  const est = clock.estimate(now());
  if (est) cancelReveal = revealAt(at, est, lightUp);
  else pending = { n, at };
}

// onStart lights the bulb of a start received at page time received: at its
// instant `at` (server time) on the synced clock, or at once without one.
// After the reveal, and a random pause that keeps the report out of the
// fan-out's way, it reports what it saw (a seen frame); a page that has no
// synced clock yet acknowledges at once instead.
function onStart(m, received) {
  disarm();
  const est = clock.estimate(received);
  if (!est && m.at) {
    // No clock sample yet (the socket just opened): report the receipt now, and
    // light the bulb at its instant once the first sample tells the server's time.
    conn?.send({ type: 'ack', seq: m.seq });
    pending = { n: m.n, at: m.at };
    return;
  }
  const light = (late) => {
    cancelReveal = null;
    const revealed = now();
    lightUp();
    if (!est) {
      conn?.send({ type: 'ack', seq: m.seq });
      return;
    }
    setTimeout(() => {
      conn?.send({
        type: 'seen',
        seq: m.seq,
        receivedAt: received + est.offset,
        revealedAt: revealed + est.offset,
        errorMs: est.error,
        offsetMs: est.offset,
        late,
      });
    }, 50 + Math.random() * 250);
  };
  if (m.at) cancelReveal = revealAt(m.at, est, ({ late }) => light(late));
  else light(false);
}

// lightUp lights the bulb: answers may go from now.
function lightUp() {
  setBulb(true);
  st.phase = 'live';
  announce('Go!');
  sounds.go();
  update();
}

// ---- the countdown -------------------------------------------------------

let ticker = null;
let warned = false;

// setTimer shows the time left until endsAt (server time, ms), or hides it for 0.
function setTimer(endsAt) {
  st.endsAt = endsAt || 0;
  warned = false;
  clearInterval(ticker);
  ticker = null;
  $('countdown').hidden = !st.endsAt;
  if (!st.endsAt) return;
  tick();
  ticker = setInterval(tick, 200);
}

function tick() {
  const left = Math.max(0, st.endsAt - serverNow());
  const total = st.q?.timeLimitMs || left || 1;
  const secs = Math.ceil(left / 1000);
  $('countdown-text').textContent = `${secs} s left`;
  $('timebar-fill').style.transform = `scaleX(${Math.min(1, left / total)})`;
  $('countdown').classList.toggle('low', secs <= 5);
  if (secs <= 5 && secs > 0 && !warned && st.phase === 'live') {
    warned = true;
    if (!st.answered) announce(`${secs} seconds left`);
    sounds.hurry();
  }
  if (left <= 0) {
    clearInterval(ticker);
    ticker = null;
  }
}

// ---- frames -------------------------------------------------------------

function onFrame(m) {
  const received = now(); // first: the sync and the reveal time from the frame's arrival
  switch (m.type) {
    case 'sync': // connect gave it to the clock
      if (pending !== null && clock.estimate(now())) {
        const { n, at } = pending;
        pending = null;
        if (n === st.q?.n && st.phase === 'open') cancelReveal = revealAt(at, clock.estimate(now()), lightUp);
      }
      break;
    case 'start':
      if (m.n === st.q?.n) onStart(m, received);
      break;
    case 'welcome':
      onWelcome(m);
      break;
    case 'question':
      // The current question again (a timed start was scheduled, or the host opened it
      // anew): news of it, not a new question. Its start may even have come first.
      if (m.n === st.q?.n && (st.phase === 'open' || st.phase === 'live')) {
        st.q = { ...st.q, ...m, type: undefined };
        break;
      }
      disarm();
      setQuestion(m, 'open', false);
      showResult('');
      showError('');
      break;
    case 'timer':
      if (m.n === st.q?.n) setTimer(m.endsAt);
      break;
    case 'close':
      if (m.n !== st.q?.n) break;
      disarm();
      setBulb(false);
      setTimer(0);
      st.phase = 'closed';
      if (!st.answered) showResult(closedText());
      update();
      break;
    case 'reveal':
      if (m.n === st.q?.n) showReveal(m);
      break;
    case 'standing':
      showStanding(m);
      break;
    case 'finished':
      showFinished(m);
      break;
    case 'result':
      if (m.n !== st.q?.n) {
        // A code submission to an earlier question, ranked once judged: only the score shows it.
        if (m.submission && m.rank > 0) setScore(Number($('score').textContent) + m.points);
        break;
      }
      if (st.q.kind === 'code') {
        codeResult(m);
        break;
      }
      if (st.retried) showError('');
      st.answered = true;
      st.sending = false;
      st.result = m;
      setScore(Number($('score').textContent) + m.points);
      showOutcome(m);
      update();
      break;
    case 'verdict':
      if (m.n === st.q?.n && st.q.kind === 'code') codeVerdict(m);
      break;
    case 'error':
      // Code submissions are not idempotent: one sent again would be judged twice.
      if (
        m.code === 'unavailable' &&
        st.sending &&
        !st.retried &&
        st.q?.kind !== 'code' &&
        (m.n === undefined || m.n === st.q?.n)
      ) {
        retry(st.sent);
        break;
      }
      showError(m.message);
      if (m.n === undefined || m.n === st.q?.n) {
        st.sending = false;
        if (m.code === 'already_answered') st.answered = true;
        if (m.code === 'false_start') {
          st.answered = true;
          showResult('Too early! That was before anyone can react: no points this time.', 'wrong');
        }
        update();
      }
      break;
    case 'leaderboard':
      showLeaderboard(m.entries);
      break;
    case 'removed':
      if (!leaving) gone(m.message); // a leave of our own says so itself
      break;
  }
}

function onWelcome(m) {
  disarm(); // what the last connection armed: this one says where the quiz is
  showError('');
  setScore(m.score ?? 0);
  const phase = m.phase === 'lobby' ? 'lobby' : m.phase;
  // Connected between a synced start and its instant, perhaps: the bulb lights on time.
  const synced = phase === 'live' && m.question?.at;
  if (m.question?.kind === 'code') {
    setQuestion(m.question, synced ? 'open' : phase, false);
    restoreCode(m.answered, m.verdicts ?? [], m.submissions ?? []);
    if (synced) armReveal(m.question.n, m.question.at);
  } else if (synced && !m.answered) {
    setQuestion(m.question, 'open', false);
    armReveal(m.question.n, m.question.at);
    showResult('');
  } else {
    setQuestion(m.question ?? null, phase, Boolean(m.answered));
    showResult('');
    if (m.answered) {
      st.result = m.answered;
      if (m.answered.choice !== undefined) st.picked = m.answered.choice;
      showOutcome(m.answered);
    }
  }
  if (m.question?.endsAt && phase === 'live') setTimer(m.question.endsAt);
  if (m.reveal) showReveal(m.reveal);
  if (phase === 'finished') $('podium-title').textContent = 'Quiz over';
  loadLeaderboard();
}

// ---- view ---------------------------------------------------------------

function setBulb(lit) {
  const b = $('bulb');
  b.classList.toggle('lit', lit);
  b.dataset.lit = String(lit);
  b.setAttribute('aria-label', lit ? 'The bulb is lit: answer now' : 'The bulb is off');
}

function setScore(score) {
  $('score').textContent = score;
}

// shapes of the choices, in turn: with their colours, told apart without colour too.
const SHAPES = ['triangle', 'diamond', 'circle', 'square'];

function setQuestion(q, phase, answered) {
  // The same code question again (a new connection): keep what the page knows of it.
  const same = q?.kind === 'code' && st.q?.kind === 'code' && q.n === st.q.n;
  st = { ...st, q, phase, answered, sending: false, sent: null, retried: false, picked: null, result: null };
  if (!same) st.code = { subs: new Map(), final: null };
  $('question').textContent = q ? `${q.n}. ${q.text}` : 'Waiting for the host to open a question…';
  $('lobby').hidden = Boolean(q) || phase === 'finished';
  const buttons = (q?.kind === 'choice' ? q.choices : []).map((text, i) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `choice c${i % 4} ${SHAPES[i % 4]}`;
    b.dataset.choice = i;
    b.innerHTML = `<span class="shape" aria-hidden="true"></span><span class="letter">${letter(i)}</span> <span class="text"></span><span class="mark"></span>`;
    b.querySelector('.text').textContent = text;
    b.onclick = () => {
      if (sendAnswer({ choice: i })) {
        st.picked = i;
        b.classList.add('chosen');
      }
    };
    return b;
  });
  $('choices').replaceChildren(...buttons);
  $('choices').hidden = buttons.length === 0;
  $('short-form').hidden = q?.kind !== 'short';
  $('text-answer').value = '';
  $('code-form').hidden = q?.kind !== 'code';
  if (q?.kind === 'code' && !same) loadDraft(q);
  renderSubmissions();
  setBulb(phase === 'live');
  setTimer(0);
  $('standing').textContent = '';
  $('place-short').textContent = '';
  $('podium-box').hidden = phase !== 'finished';
  $('board-box').hidden = !(phase === 'closed' || phase === 'finished');
  update();
}

// update enables the answer controls only while an answer can be sent.
function update() {
  const can = st.online && st.phase === 'live' && !st.answered && !st.sending;
  for (const el of [...$('choices').children, $('text-answer'), $('submit-text'), $('submit-code')]) el.disabled = !can;
  document.body.dataset.phase = st.phase;
}

function closedText() {
  if (st.q?.kind !== 'code' || st.code.subs.size === 0) return "Time's up: no answer from you this time.";
  const judging = [...st.code.subs.values()].some((s) => !s.verdict);
  return judging
    ? 'Closed: your submissions sent in time are still being judged…'
    : 'Closed: no accepted submission from you this time.';
}

function showResult(text, kind = '') {
  $('result').textContent = text;
  $('result').className = kind;
  if (text) announce(text);
}

// showOutcome shows a result frame: the verdict on our answer.
function showOutcome(r) {
  if (r.pending) showResult('Answer received. Ranking is settled when the question closes…', 'pending');
  else if (r.correct) showResult(`Correct!${r.rank ? ` Rank ${r.rank}` : ''} · +${r.points} points`, 'correct');
  else showResult('Wrong answer · 0 points', 'wrong');
}

// rightAnswer says a reveal's right answer in words.
function rightAnswer(rv) {
  if (rv.kind === 'choice' && rv.answer !== undefined) return `${letter(rv.answer)}: ${st.q?.choices?.[rv.answer] ?? ''}`;
  if (rv.kind === 'short') return rv.answers?.[0] ?? '';
  return '';
}

// showReveal marks the right choice and ours, after the close.
function showReveal(rv) {
  st.phase = st.phase === 'finished' ? 'finished' : 'closed';
  setBulb(false);
  setTimer(0);
  for (const b of $('choices').children) {
    const i = Number(b.dataset.choice);
    const right = i === rv.answer;
    const mine = i === st.picked;
    b.classList.toggle('right', right);
    b.classList.toggle('wrong', mine && !right);
    b.classList.toggle('faded', !right && !mine);
    b.querySelector('.mark').textContent = right ? (mine ? ' ✓ your answer, right' : ' ✓ right answer') : mine ? ' ✗ your answer' : '';
  }
  const answer = rightAnswer(rv);
  if (st.q?.kind === 'code') return showCodeOutcome();
  const r = st.result;
  if (r?.correct) showResult(`Correct! +${r.points} points${r.rank ? ` · ${ordinal(r.rank)} right answer` : ''}`, 'correct');
  else if (r || st.answered) showResult(`Not this time. The answer was ${answer}.`, 'wrong');
  else showResult(`No answer from you. The answer was ${answer}.`, 'missed');
  update();
}

// showStanding says where the player stands: its points on the question, its score and place.
function showStanding(s) {
  setScore(s.score);
  const place = `${ordinal(s.place)} of ${s.players}`;
  $('place-short').textContent = ` · ${place}`;
  $('standing').textContent = s.final
    ? `You finished ${place} with ${s.score} points.`
    : `You have ${s.score} points: ${place}.`;
  if (s.n === st.q?.n && st.q?.kind !== 'code' && !s.final && st.result?.pending && s.answered) {
    st.result = { ...st.result, pending: false, correct: s.correct, rank: s.rank, points: s.points };
  }
  announce($('standing').textContent);
}

// showFinished shows the podium: the quiz is over.
function showFinished(f) {
  st.phase = 'finished';
  disarm();
  setBulb(false);
  setTimer(0);
  renderPodium($('podium'), f.podium, session?.playerId);
  $('podium-box').hidden = false;
  $('board-box').hidden = false;
  $('lobby').hidden = true;
  update();
  sounds.podium();
}

function showError(text) {
  $('error').textContent = text;
}

// announce tells a screen reader, at once, what just happened.
function announce(text) {
  $('announce').textContent = text;
}

function showLeaderboard(entries) {
  renderLeaderboard($('leaderboard'), entries, session?.playerId);
  const mine = entries?.find((e) => e.playerId === session?.playerId);
  if (mine) {
    setScore(mine.score);
    // a place means something once a question was asked: in the lobby everyone is first
    if (st.phase === 'closed' || st.phase === 'finished') $('place-short').textContent = ` · ${ordinal(mine.rank)}`;
  }
  if (st.phase === 'closed' || st.phase === 'finished') $('board-box').hidden = false;
  // Back on the page after the end (a reload): the podium and the final place from the board.
  if (st.phase === 'finished' && !$('podium').children.length && entries?.length) {
    renderPodium($('podium'), entries.filter((e) => e.rank <= 3).slice(0, 10), session?.playerId);
    $('podium-box').hidden = false;
    if (mine) $('standing').textContent = `You finished ${ordinal(mine.rank)} of ${entries.length} with ${mine.score} points.`;
  }
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
    sync,
    check: () => api('GET', `/api/rooms/${code}/leaderboard`, { token }),
    onGone(err) {
      gone(`Your seat in room ${code} is gone (${err.message}). Join again.`);
    },
    onRemoved(reason) {
      if (!leaving) gone(reason || 'You were removed from the room.');
    },
  });
}

// gone ends the seat on this page: the server removed it (or the player left).
function gone(message) {
  const code = session?.code;
  leaveLocally();
  if (code) $('code').value = code;
  showError(message);
}

// leaveLocally forgets the seat and goes back to the join form.
function leaveLocally() {
  disarm();
  setTimer(0);
  conn?.close();
  conn = null;
  store.del(KEY);
  session = null;
  st = freshState();
  store.del(DRAFT);
  renderSubmissions();
  $('code-form').hidden = true;
  $('game').hidden = true;
  $('join-form').hidden = false;
  $('status').textContent = 'not connected';
  $('status').dataset.state = 'closed';
  showError('');
}

// leaving is true while the page's own leave is under way.
let leaving = false;

// leave frees the seat on the server, then here: the name is free again.
async function leave() {
  const { code, token } = session;
  leaving = true;
  try {
    await api('DELETE', `/api/rooms/${code}/players/me`, { token });
  } catch (err) {
    if (![401, 404].includes(err.status)) {
      showError(`Could not leave: ${err.message}`);
      return;
    }
  } finally {
    leaving = false;
  }
  leaveLocally();
  $('code').value = code;
  announce(`You left room ${code}.`);
}

$('join-form').onsubmit = async (e) => {
  e.preventDefault();
  showError(''); // a new try: the last one's error no longer applies
  const code = $('code').value.trim();
  const name = $('name').value.trim();
  if (!/^\d{6}$/.test(code)) return showError('The room code is 6 digits.');
  if (!name) return showError('Type your name.');
  $('join').disabled = true;
  try {
    const r = await api('POST', `/api/rooms/${code}/players`, { body: { name } });
    session = { code, playerId: r.playerId, token: r.token, name };
    store.set(KEY, session);
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

$('code-form').onsubmit = (e) => {
  e.preventDefault();
  submitCode();
};
attachEditor($('code-editor'), () => $('submit-code').disabled || submitCode());
$('code-editor').oninput = saveDraft;
$('language').onchange = saveDraft;

$('leave').onclick = () => $('leave-dialog').showModal();
$('leave-dialog').onclose = () => {
  if ($('leave-dialog').returnValue === 'leave' && session) leave();
  $('leave-dialog').returnValue = '';
};

const showSound = () => {
  $('sound').setAttribute('aria-pressed', String(sounds.on));
  $('sound').textContent = `Sound: ${sounds.on ? 'on' : 'off'}`;
};
$('sound').onclick = () => {
  sounds.toggle();
  showSound();
};
showSound();

if (session) enter();
else $('code').value = new URLSearchParams(location.search).get('code') ?? '';
