// REST helpers for the console. Every URL is resolved against document.baseURI
// without a leading "/", so the console keeps working behind a reverse-proxy
// path prefix (e.g. Home Assistant ingress). Errors carry the server's
// {error, message} body; a 401 also flips the shared auth state so the
// re-authentication banner appears wherever the failure happened.

/** Turns an API path ("api/x", "/api/x") into an absolute URL under the page's base. */
export function url(path) {
  return new URL(String(path).replace(/^\/+/, ""), document.baseURI).href;
}

/** An HTTP or network failure with the server's message. */
export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.name = "ApiError";
    this.status = status; // 0 for network errors and time-outs
    this.kind = kind; // the body's `error` field, e.g. "unauthenticated"
  }
}

/**
 * Builds an ApiError from a non-2xx response, reading {error, message} when
 * present. A 401 marks the Ring account as needing a sign-in unless `keepAuth`
 * (the sign-in form's own "wrong password" answers).
 */
export async function errorFrom(resp, keepAuth = false) {
  let kind = `http_${resp.status}`;
  let message = `${resp.status} ${resp.statusText || "error"}`;
  try {
    const text = await resp.text();
    try {
      const body = JSON.parse(text);
      if (body && typeof body === "object") {
        kind = body.error || kind;
        message = body.message || body.error || message;
      }
    } catch {
      if (text.trim()) message = text.trim().slice(0, 300);
    }
  } catch {
    // keep the status line
  }
  const err = new ApiError(resp.status, kind, message);
  // "unauthorized" is the console's own password (the browser re-prompts);
  // only Ring's "unauthenticated" means the Ring account needs a new login.
  if (resp.status === 401 && kind === "unauthenticated" && !keepAuth) {
    auth.set({ ...auth.current, state: "reauth_required", reason: message });
  }
  return err;
}

/**
 * fetch() with a time-out and ApiError on failure. `opts.timeoutMs` defaults to
 * 20 s, `opts.keepAuth` see errorFrom; other options go to fetch.
 */
export async function request(path, opts = {}) {
  const { timeoutMs = 20000, keepAuth = false, ...init } = opts;
  let resp;
  try {
    resp = await fetch(url(path), { signal: AbortSignal.timeout(timeoutMs), ...init });
  } catch (e) {
    const why = e && e.name === "TimeoutError"
      ? `no answer from ring-bridge within ${Math.round(timeoutMs / 1000)} s`
      : "cannot reach ring-bridge (is it running?)";
    throw new ApiError(0, "network", why);
  }
  // redirect: "manual" turns a redirect into an opaque answer: that is a success.
  if (!resp.ok && resp.type !== "opaqueredirect") throw await errorFrom(resp, keepAuth);
  return resp;
}

/** GET a JSON document. */
export async function getJson(path, opts = {}) {
  const resp = await request(path, { headers: { Accept: "application/json" }, ...opts });
  return resp.json();
}

/** POST a JSON body, returning the parsed answer (or null for an empty one). */
export async function postJson(path, body, opts = {}) {
  const resp = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
    ...opts,
  });
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

/**
 * The Ring account state from api/auth ({state: authenticated|unknown|reauth_required,
 * reason?, mode, linked, account?, ...}), shared by every view. `check()` asks
 * the server; `set()` is called by errorFrom on a 401 and by the sign-in page;
 * listeners run on every change.
 */
export const auth = {
  current: { state: "unknown" },
  listeners: new Set(),
  set(next) {
    const prev = this.current;
    this.current = next;
    const who = (s) => `${s.mode}|${s.linked}|${s.account ? s.account.email : ""}`;
    if (prev.state !== next.state || prev.reason !== next.reason || who(prev) !== who(next)) {
      for (const fn of this.listeners) fn(next);
    }
  },
  async check() {
    try {
      this.set(await getJson("api/auth", { timeoutMs: 10000 }));
    } catch (e) {
      if (e.status !== 401) this.set({ state: "unknown", reason: e.message, unreachable: true });
    }
    return this.current;
  },
  onChange(fn) {
    this.listeners.add(fn);
  },
};

/** The camera list, newest answer shared by the Live and History views. */
export async function cameras() {
  return getJson("api/ring/cameras");
}

/** The WHEP endpoint of a camera: its `whep_url` when the server gives one. */
export function whepUrl(cam) {
  return url(cam.whep_url || `api/webrtc/${encodeURIComponent(cam.slug)}/whep`);
}
