// Helpers shared by Bulb's pages.
import { now } from '/static/clock.js';

export const $ = (id) => document.getElementById(id);

// esc makes any value safe to put inside HTML text or a quoted attribute.
export function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// letter names a choice: 0 → A, 1 → B, …
export const letter = (i) => String.fromCharCode(65 + i);

// store keeps JSON values in localStorage.
export const store = {
  get(key) {
    try {
      return JSON.parse(localStorage.getItem(key));
    } catch {
      return null;
    }
  },
  set(key, value) {
    localStorage.setItem(key, JSON.stringify(value));
  },
  del(key) {
    localStorage.removeItem(key);
  },
};

// ApiError is a refused call: status is the HTTP status (0 when the server
// could not be reached), code and message come from the error JSON.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// api calls the HTTP API and returns the decoded answer, or throws an ApiError.
// body is sent as JSON; a string is sent as it is.
export async function api(method, path, { token, body } = {}) {
  const init = { method, headers: {} };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'network', `cannot reach the server: ${err.message}`);
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = data?.error;
    throw new ApiError(res.status, e?.code ?? 'http', e?.message ?? `HTTP ${res.status} ${res.statusText}`);
  }
  return data;
}

// connect keeps a WebSocket to /ws?token=token open, reconnecting after a
// drop with exponential backoff capped at 5 s.
//   room                 the room code: the admin token needs it (a host of
//                        every room), other tokens name their room themselves;
//   onFrame(frame, ws)   every decoded frame, with the socket it came on;
//   onStatus(state, text) state is "connecting", "open", "closed" or "replaced";
//   check()              awaited when a socket could not be opened: if it
//                        throws an ApiError 401, 403 or 404 the token is dead,
//                        onGone(err) is called and no more attempts are made;
//   onRemoved(reason)    the server closed the socket with 4001: the seat was
//                        removed (a removed frame came just before); no more
//                        attempts are made;
//   sync                 a Syncer (clock.js) to keep in step over the socket:
//                        started on each open (a burst), stopped when the socket
//                        closes, and given every sync answer, stamped as it
//                        arrived, before onFrame sees it.
// It returns {send(frame) → bool, close()}.
export function connect(token, { room, onFrame, onStatus, check, onGone, onRemoved, sync }) {
  const url =
    `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws?token=${encodeURIComponent(token)}` +
    (room ? `&room=${encodeURIComponent(room)}` : '');
  let ws;
  let tries = 0;
  let timer;
  let stopped = false;

  function open() {
    onStatus('connecting', 'connecting…');
    let opened = false;
    const sock = new WebSocket(url);
    ws = sock;
    sock.onopen = () => {
      opened = true;
      tries = 0;
      onStatus('open', 'connected');
      sync?.start();
    };
    sock.onmessage = (e) => {
      const received = now(); // first: a sync answer is timed from its arrival
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return;
      }
      if (frame.type === 'sync') sync?.add(frame, received);
      onFrame(frame, sock);
    };
    sock.onclose = async (e) => {
      sync?.stop();
      if (stopped) return;
      if (e.code === 4000) {
        onStatus('replaced', 'disconnected: this seat was opened in another window (reload to take it back)');
        return;
      }
      if (e.code === 4001) {
        stopped = true;
        onStatus('closed', 'disconnected');
        onRemoved?.(e.reason === 'removed' ? '' : e.reason);
        return;
      }
      if (!opened && check) {
        try {
          await check();
        } catch (err) {
          if ([401, 403, 404].includes(err.status)) {
            stopped = true;
            onStatus('closed', 'disconnected');
            onGone(err);
            return;
          }
        }
        if (stopped) return;
      }
      const delay = Math.min(5000, 250 * 2 ** tries++);
      onStatus('closed', `disconnected, reconnecting in ${(delay / 1000).toFixed(1)} s…`);
      timer = setTimeout(open, delay);
    };
  }

  open();
  return {
    send(frame) {
      if (ws.readyState !== WebSocket.OPEN) return false;
      ws.send(JSON.stringify(frame));
      return true;
    },
    close() {
      stopped = true;
      clearTimeout(timer);
      sync?.stop();
      ws.close(1000);
    },
  };
}

// renderLeaderboard fills a table with leaderboard entries, marking playerId me.
export function renderLeaderboard(table, entries, me) {
  table.innerHTML =
    '<thead><tr><th scope="col">#</th><th scope="col">Name</th><th scope="col" class="num">Score</th></tr></thead><tbody>' +
    (entries ?? [])
      .map(
        (e) =>
          `<tr${e.playerId === me ? ' class="me"' : ''}><td>${esc(e.rank)}</td><td>${esc(e.name)}</td><td class="num">${esc(e.score)}</td></tr>`,
      )
      .join('') +
    '</tbody>';
}

// ordinal says a place: 1 → "1st", 2 → "2nd", 11 → "11th", 23 → "23rd".
export function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] ?? 'th');
  return `${n}${suffix}`;
}

// renderPodium fills a list with the podium's entries (the top three places,
// more on a tie), marking playerId me.
export function renderPodium(list, entries, me) {
  list.replaceChildren(
    ...(entries ?? []).map((e) => {
      const li = document.createElement('li');
      li.className = `place-${Math.min(e.rank, 3)}${e.playerId === me ? ' me' : ''}`;
      li.innerHTML = '<span class="podium-place"></span> <span class="podium-name"></span> <span class="podium-score"></span>';
      li.querySelector('.podium-place').textContent = ordinal(e.rank);
      li.querySelector('.podium-name').textContent = e.name;
      li.querySelector('.podium-score').textContent = `${e.score} points`;
      return li;
    }),
  );
}

// clock shows the local time of an RFC 3339 instant.
export const clock = (t) => new Date(t).toLocaleTimeString();

// Code questions --------------------------------------------------------------

// languageNames names the judge's languages for people; an unknown key shows as it is.
const languageNames = { python: 'Python 3', c: 'C', cpp: 'C++' };
export const languageName = (key) => languageNames[key] ?? key;

// verdictNames spells out the judge's verdicts.
export const verdictNames = {
  AC: 'Accepted',
  WA: 'Wrong answer',
  TLE: 'Time limit exceeded',
  MLE: 'Memory limit exceeded',
  RE: 'Runtime error',
  OLE: 'Output limit exceeded',
  CE: 'Compilation error',
  IE: 'Internal error',
};

// verdictStats sums up a verdict's figures: tests passed, CPU time and peak memory.
// A program that did not compile or was not run has none.
export function verdictStats(v) {
  if (v.verdict === 'CE' || v.verdict === 'IE') return '';
  const kb = v.memoryKB ?? 0;
  const mem = kb >= 1024 ? `${(kb / 1024).toFixed(1)} MB` : `${kb} KB`;
  return `${v.passed}/${v.total} tests passed · ${v.timeMs ?? 0} ms · ${mem}`;
}
