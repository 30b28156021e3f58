// Talking to the service: the API key (kept in sessionStorage, sent as
// `Authorization: Bearer …`), the caller's role from `GET /me`, JSON requests with the
// service's error shape turned into exceptions, and Server-Sent Events over fetch (an
// EventSource cannot send the Authorization header).

const KEY = 'lifeline.key';
export const ROLES = ['viewer', 'contractor', 'analyst', 'operator', 'admin'];

/** The stored API key, or null. */
export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (k) => (k ? sessionStorage.setItem(KEY, k) : sessionStorage.removeItem(KEY));

/** Headers carrying the key, if any. */
export function authHeaders(extra = {}) {
  const k = getKey();
  return k ? { ...extra, Authorization: `Bearer ${k}` } : extra;
}

/** An error answer of the service: `status`, `code` and its message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failure(res) {
  let code = 'error';
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body?.error) ({ code, message } = { code: body.error.code, message: body.error.message });
  } catch { /* not JSON */ }
  return new ApiError(res.status, code, message);
}

/** A request to the service; resolves to parsed JSON (or the Response when `raw`). */
export async function api(path, { method = 'GET', body, raw = false, key, signal, headers: extra = {} } = {}) {
  const headers = key ? { ...extra, Authorization: `Bearer ${key}` } : authHeaders({ ...extra });
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  if (!res.ok) throw await failure(res);
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

// The service's clock, as `GET /health` reports it: dates the client proposes (a dig's
// start) and time windows it asks for (a sensor's last day) follow the service's time,
// not this computer's, whose clock may be off.
let clockOffsetMs = 0;

/** Reads the service's time once (at start-up); keeps this computer's if it cannot. */
export async function syncClock() {
  try {
    const sent = Date.now();
    const h = await api('/health');
    const t = Date.parse(h?.time);
    if (Number.isFinite(t)) clockOffsetMs = t - (sent + Date.now()) / 2;
  } catch { /* an older service: this computer's clock */ }
}

/** The service's current time, in epoch milliseconds. */
export const serverNow = () => Date.now() + clockOffsetMs;

/** Today's date in China (UTC+8), the service's civil time, as YYYY-MM-DD; `days` ahead. */
export const chinaDate = (days = 0) =>
  new Date(serverNow() + 8 * 3600e3 + days * 86400e3).toISOString().slice(0, 10);

/** Whether `role` includes `needed`. */
export const roleAtLeast = (role, needed) => ROLES.indexOf(role) >= ROLES.indexOf(needed);

/**
 * Follows a Server-Sent Events stream, reconnecting after failures; `onEvent(type, data)`
 * gets each event with its JSON data parsed. Returns a function that stops it.
 */
export function followEvents(path, onEvent, onState = () => {}) {
  let stopped = false;
  let ctrl = null;
  let delay = 1000;
  async function loop() {
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const res = await fetch(path, { headers: authHeaders({ Accept: 'text/event-stream' }), signal: ctrl.signal });
        if (res.status === 404) { onState('absent'); return; }
        if (!res.ok || !res.body) throw await failure(res);
        onState('open');
        delay = 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let type = 'message';
            const data = [];
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const c = line.indexOf(':');
              const field = c < 0 ? line : line.slice(0, c);
              const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
              if (field === 'event') type = v;
              else if (field === 'data') data.push(v);
            }
            if (!data.length) continue;
            let parsed = data.join('\n');
            try { parsed = JSON.parse(parsed); } catch { /* plain text */ }
            onEvent(type, parsed);
          }
        }
      } catch (e) {
        if (stopped) return;
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) { onState('forbidden'); return; }
      }
      onState('closed');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }
  loop();
  return () => { stopped = true; ctrl?.abort(); };
}

/** Saves a Blob as a file. */
export function download(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
