// The dashboard's only way to the daemon: JSON calls with the session
// cookie, and one WebSocket event stream that resumes where it left off.

export class AuthError extends Error {}

export async function call(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: { message: text } }; }
  if (resp.status === 401) throw new AuthError(data?.error?.message || "unauthorized");
  if (!resp.ok) {
    const err = new Error(data?.error?.message || `${method} ${path}: HTTP ${resp.status}`);
    err.status = resp.status;
    err.code = data?.error?.code;
    throw err;
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body ?? {});
export const del = (path) => call("DELETE", path);

// EventStream keeps one WebSocket open, hands every event to the
// listeners, and reconnects with since=<last seq> after a drop, a resume
// hint from the server (this client was too slow), or a restart.
export class EventStream {
  constructor(onState) {
    this.listeners = new Set();
    this.since = null;
    this.onState = onState || (() => {});
    this.backoff = 500;
    this.closed = false;
  }

  on(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  start() {
    this.closed = false;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = this.since !== null ? `?since=${this.since}` : "";
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/events${q}`);
    this.ws = ws;
    ws.onopen = () => { this.backoff = 500; this.onState("live"); };
    ws.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      if (ev.type === "resume") { this.since = ev.since; return; }
      if (typeof ev.seq === "number") this.since = ev.seq;
      for (const fn of this.listeners) {
        try { fn(ev); } catch (e) { console.error("event listener", e); }
      }
    };
    ws.onclose = () => {
      this.onState("reconnecting");
      if (this.closed) return;
      setTimeout(() => this.start(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 15000);
    };
  }

  stop() {
    this.closed = true;
    this.ws?.close();
    this.onState("offline");
  }
}
