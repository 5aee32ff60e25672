// The WebSocket connection: the "Live" badge, reconnection with backoff,
// dispatch of events to the panels, and per-run log following.

const listeners = new Map();
let socket = null;
let retryDelay = 500;
let retryTimer = null;
let retryAt = 0;
let badgeTimer = null;

function wsUrl(params) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws${params || ''}`;
}

/** Registers `fn` for messages of `type` ("snapshot", "worker", "run", "stats", "resync", "open"). */
export function on(type, fn) {
  if (!listeners.has(type)) listeners.set(type, []);
  listeners.get(type).push(fn);
}

function emit(type, msg) {
  for (const fn of listeners.get(type) || []) {
    try { fn(msg); } catch (e) { console.error(`live: ${type} handler failed`, e); }
  }
}

function setBadge(state, detail) {
  const badge = document.getElementById('live-badge');
  if (!badge) return;
  badge.dataset.state = state;
  badge.textContent = { live: 'Live', connecting: 'Connecting…', offline: 'Offline' }[state];
  badge.title = detail || '';
  const note = document.getElementById('live-detail');
  if (note) note.textContent = detail || '';
}

/** Current connection state: "live", "connecting" or "offline". */
export function state() {
  const badge = document.getElementById('live-badge');
  return badge ? badge.dataset.state : 'offline';
}

/** Opens the main socket; reconnects by itself after a drop. */
export function connect() {
  clearTimeout(retryTimer);
  clearInterval(badgeTimer);
  setBadge('connecting', 'Connecting to the server…');
  const ws = new WebSocket(wsUrl());
  socket = ws;
  ws.onopen = () => {
    retryDelay = 500;
    setBadge('live', 'Receiving updates as they happen');
    emit('open', {});
  };
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg && typeof msg.type === 'string') emit(msg.type, msg);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    scheduleReconnect();
  };
  ws.onerror = () => { /* onclose follows and schedules the retry */ };
}

function scheduleReconnect() {
  const delay = retryDelay;
  retryDelay = Math.min(retryDelay * 2, 15000);
  retryAt = Date.now() + delay;
  const update = () => {
    const s = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    setBadge('offline', `Disconnected, retrying in ${s}s`);
  };
  update();
  badgeTimer = setInterval(update, 1000);
  retryTimer = setTimeout(connect, delay);
}

/**
 * Follows one run's log over `/ws?follow=ID&after=LAST`. Calls
 * onLines(lines) for each batch and onEnd() once the run has finished and
 * every line was sent. Reconnects from the last line seen. Returns stop().
 */
export function followLog(runId, after, { onLines, onEnd, onState }) {
  let last = after || 0;
  let stopped = false;
  let ws = null;
  let delay = 500;
  let timer = null;
  const open = () => {
    if (stopped) return;
    const params = `?follow=${encodeURIComponent(runId)}${last ? `&after=${last}` : ''}`;
    ws = new WebSocket(wsUrl(params));
    ws.onopen = () => { delay = 500; onState && onState('live'); };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === 'log' && Array.isArray(msg.lines)) {
        const fresh = msg.lines.filter((l) => l.id > last);
        if (fresh.length) {
          last = fresh[fresh.length - 1].id;
          onLines(fresh);
        }
      } else if (msg.type === 'end') {
        stopped = true;
        onState && onState('ended');
        onEnd && onEnd();
        ws.close();
      }
    };
    ws.onclose = () => {
      if (stopped) return;
      onState && onState('offline');
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 15000);
    };
  };
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (ws) ws.close();
  };
}
