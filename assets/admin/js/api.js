// The JSON API client: every call goes through api(), which turns an error
// answer into an ApiError carrying the server's code and message, and
// toast() shows such messages to the user.

import { h } from './format.js';

const TIMEOUT_MS = 20000;

/** An error answer from the API (or a network failure, status 0). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls the API. `body` is sent as JSON with POST unless `method` says
 * otherwise. Resolves to the parsed JSON; rejects with ApiError.
 */
export async function api(path, { method, body } = {}) {
  const init = { method: method || (body === undefined ? 'GET' : 'POST'), headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  init.credentials = 'same-origin';
  // A request the server never answers must not leave a panel loading forever.
  const abort = new AbortController();
  init.signal = abort.signal;
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    clearTimeout(timer);
    if (abort.signal.aborted) {
      throw new ApiError(0, 'timeout', `The server did not answer within ${TIMEOUT_MS / 1000}s`);
    }
    throw new ApiError(0, 'network', `Cannot reach the server (${e.message})`);
  }
  clearTimeout(timer);
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = data && data.error;
    if (res.status === 401) signedOut();
    throw new ApiError(
      res.status,
      (err && err.code) || `http_${res.status}`,
      (err && err.message) || `${res.status} ${res.statusText || 'request failed'}`,
    );
  }
  return data;
}

let signedOutShown = false;

/** Tells the user once that the session is gone and how to get back in. */
function signedOut() {
  if (signedOutShown) return;
  signedOutShown = true;
  const bar = h('div', { class: 'signed-out', role: 'alert' },
    'Not signed in: open the admin URL that ', h('code', { text: 'jobmgr serve' }),
    ' printed at start-up (it carries the token).');
  document.body.prepend(bar);
}

/** Builds a query string from the non-empty entries of `params`. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Shows a short message in the corner; kind is "error", "ok" or "info". */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { text: message }),
    h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss', text: '×',
      onclick: () => item.remove() }));
  box.appendChild(item);
  setTimeout(() => item.remove(), kind === 'error' ? 10000 : 4000);
}

/** Runs an action, reporting an ApiError as a toast; returns its result or null. */
export async function attempt(action, what) {
  try {
    return await action();
  } catch (e) {
    toast(what ? `${what}: ${e.message}` : e.message, 'error');
    return null;
  }
}
