// The code questions of the student page: the editor's draft, the submissions and their
// verdicts, and what the student is told of them. The page hands in what it shares: its
// state (state() gives the current one), its seat, and how it shows things and sends an
// answer.
import { $, languageName, store, verdictNames, verdictStats } from '/static/common.js';

// DRAFT keeps the code question's draft: {room, n, language, text, langs: {submission: language}}.
export const DRAFT = 'bulb.draft';

// codeQuestions returns the code-question part of the page.
export function codeQuestions({ state, session, showResult, closedText, update, showError, sendAnswer }) {
  // maxCode is the largest program the server takes, in bytes of UTF-8.
  const maxCode = 64 << 10;

  // loadDraft fills the editor for code question q: the draft kept for it
  // (a reload keeps the program), else an empty one in the language used last.
  function loadDraft(q) {
    const d = store.get(DRAFT);
    const mine = d?.room === session()?.code && d?.n === q.n;
    $('language').replaceChildren(
      ...q.languages.map((key) => {
        const o = document.createElement('option');
        o.value = key;
        o.textContent = languageName(key);
        return o;
      }),
    );
    $('language').value = q.languages.includes(d?.language) ? d.language : q.languages[0];
    $('code-editor').value = mine ? (d.text ?? '') : '';
    const secs = q.timeLimitMs / 1000;
    $('limits').textContent = `Per test: ${secs} s of CPU time, ${q.memoryLimitMB} MB of memory`;
    if (!mine) saveDraft();
  }

  // saveDraft keeps the editor's program and the language of each submission,
  // so that a reload finds them again.
  function saveDraft() {
    const st = state();
    if (st.q?.kind !== 'code' || !session()) return;
    const langs = {};
    for (const [k, s] of st.code.subs) if (s.language) langs[k] = s.language;
    store.set(DRAFT, { room: session().code, n: st.q.n, language: $('language').value, text: $('code-editor').value, langs });
  }

  // sub returns submission k of the current code question, adding it if new.
  function sub(k, language) {
    const st = state();
    let s = st.code.subs.get(k);
    if (!s) {
      const d = store.get(DRAFT);
      const known = d?.room === session()?.code && d?.n === st.q?.n ? d.langs?.[k] : undefined;
      s = { language: known ?? null, verdict: null };
      st.code.subs.set(k, s);
    }
    s.language ??= language ?? null;
    return s;
  }

  // restoreCode rebuilds the submissions from a welcome frame: every submission
  // (judged or not), the verdicts of those judged, and answered, the result of the
  // ranked one or else the latest.
  function restoreCode(answered, verdicts, submissions) {
    const st = state();
    for (const r of submissions) sub(r.submission, r.language);
    for (const v of verdicts) sub(v.submission, v.language).verdict = v;
    if (answered?.submission) sub(answered.submission);
    if (answered?.rank > 0) st.code.final = answered;
    st.answered = Boolean(answered?.correct) || verdicts.some((v) => v.verdict === 'AC');
    renderSubmissions();
    showCodeOutcome();
    update();
  }

  // codeResult takes a result frame of a code question: the reply that a
  // submission is taken for judging, or the final one that ranks it.
  function codeResult(m) {
    const st = state();
    if (m.rank > 0) {
      const first = !st.code.final;
      st.code.final = m;
      st.answered = true;
      if (first) $('score').textContent = Number($('score').textContent) + m.points;
      sub(m.submission, m.language);
    } else if (m.submission) {
      const s = sub(m.submission, m.language);
      if (st.sending && st.sent?.code !== undefined) s.language ??= st.sent.language;
      st.sending = false;
      saveDraft();
    }
    renderSubmissions();
    showCodeOutcome();
    update();
  }

  // codeVerdict takes the judge's verdict on one of our submissions.
  function codeVerdict(v) {
    const st = state();
    const known = st.code.subs.has(v.submission);
    const s = sub(v.submission, v.language);
    // A verdict before any reply: the judge was busy and the submission was not judged.
    if (!known && st.sending && st.sent?.code !== undefined) s.language ??= st.sent.language;
    s.verdict = v;
    if (v.verdict === 'AC') st.answered = true;
    saveDraft();
    renderSubmissions();
    showCodeOutcome();
    update();
  }

  // showCodeOutcome says where the player stands on the current code question.
  function showCodeOutcome() {
    const st = state();
    const f = st.code.final;
    if (f) showResult(`Accepted!${f.rank ? ` Rank ${f.rank}` : ''} · +${f.points} points`, 'correct');
    else if (st.answered)
      showResult('Accepted! Your rank is settled once the submissions sent before yours are judged…', 'pending');
    else if (st.phase === 'closed') showResult(closedText());
    else showResult('');
  }

  // renderSubmissions lists the submissions to the current code question,
  // newest first. Items are updated in place, so that a screen reader (the list
  // is a live region) reads out what changed, not the whole list.
  function renderSubmissions() {
    const st = state();
    const list = $('submissions');
    const code = st.q?.kind === 'code';
    $('submissions-box').hidden = !code || st.code.subs.size === 0;
    if (!code) return list.replaceChildren();
    const keys = [...st.code.subs.keys()].sort((a, b) => b - a);
    const items = keys.map((k) => {
      let li = list.querySelector(`li[data-submission="${k}"]`);
      if (!li) {
        li = document.createElement('li');
        li.dataset.submission = k;
      }
      fillSubmission(li, k, st.code.subs.get(k));
      return li;
    });
    // Move only what must move: a screen reader reads out nodes put in anew.
    let prev = null;
    for (const li of items) {
      const at = prev ? prev.nextSibling : list.firstChild;
      if (at !== li) list.insertBefore(li, at);
      prev = li;
    }
    const rest = () => (prev ? prev.nextSibling : list.firstChild);
    while (rest()) rest().remove();
  }

  function fillSubmission(li, k, s) {
    const st = state();
    const v = s.verdict;
    const shownVerdict = v ? v.verdict : 'judging';
    const ranked = st.code.final?.submission === k ? st.code.final : null;
    const text = (sel, t) => (li.querySelector(sel).textContent = t);
    const shown = JSON.stringify([v, s.language, ranked?.rank, ranked?.points]);
    if (li.dataset.shown === shown) return; // unchanged: leave it be
    li.dataset.shown = shown;
    li.dataset.verdict = shownVerdict;
    li.className = `sub ${!v ? 'judging' : v.verdict === 'AC' ? 'correct' : 'wrong'}`;
    li.innerHTML =
      '<div class="sub-head"><span class="sub-n"></span> <span class="sub-lang muted"></span> ' +
      '<b class="verdict"></b> <span class="verdict-name"></span> <span class="sub-stats muted"></span> ' +
      '<span class="sub-rank"></span></div>';
    text('.sub-n', `#${k}`);
    text('.sub-lang', s.language ? languageName(s.language) : '');
    text('.verdict', v ? v.verdict : 'judging…');
    text('.verdict-name', v ? (verdictNames[v.verdict] ?? '') : '');
    text('.sub-stats', v ? verdictStats(v) : '');
    text('.sub-rank', ranked ? `rank ${ranked.rank} · +${ranked.points} points` : '');
    if (v?.message) {
      const pre = document.createElement('pre');
      pre.className = 'sub-message';
      pre.textContent = v.message;
      li.append(pre);
    }
  }

  function submitCode() {
    const code = $('code-editor').value;
    if (!code.trim()) return showError('Write your program first.');
    const bytes = new TextEncoder().encode(code).length;
    if (bytes > maxCode) return showError(`Your program is ${bytes} bytes: the most is ${maxCode}.`);
    saveDraft();
    sendAnswer({ language: $('language').value, code });
  }

  return { loadDraft, saveDraft, restoreCode, codeResult, codeVerdict, showCodeOutcome, renderSubmissions, submitCode };
}
