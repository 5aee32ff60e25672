// The worker panel: state, host, PID, version (with a drift warning),
// uptime and a ticking heartbeat age, and the Start / Stop buttons. Stop
// asks first, naming the runs it will interrupt; while the worker drains,
// the time its running jobs have left counts down. Under them, what
// retention keeps and last removed, and a warning when the disk is low.
// And how hard the worker's one writer thread works, from the totals each
// heartbeat writes: over the last heartbeat interval, or since the start
// until a second heartbeat of the same worker arrives.

import { api, attempt, toast } from './api.js';
import { runningRuns } from './active.js';
import { confirmAction } from './confirm.js';
import { h, replace, duration, num, parseTime } from './format.js';

let status = null;
let receivedAt = 0;
// The writer's totals at the heartbeat before the one shown, and at the one
// shown: { id, at (ms), writer }.
let loadBefore = null;
let loadShown = null;
let busy = false;
// While a start is on its way: the time it was accepted (202), and the
// newest worker id then shown. The answer comes before the new worker
// exists; its row then arrives as WebSocket `worker` events.
let starting = null;
// How long the page waits for the new worker before asking the server.
const START_PATIENCE_MS = 10000;

/**
 * Accepts either the status object of GET /api/worker or a bare worker row
 * (as a WebSocket event may carry) and returns a status object.
 */
function normalize(value) {
  if (!value) return { worker: null, state: 'NONE' };
  if ('state' in value && ('heartbeatAgeMs' in value || 'worker' in value)) return value;
  const beat = parseTime(value.heartbeatAt);
  const started = parseTime(value.startedAt);
  return {
    worker: value,
    state: value.state,
    heartbeatAgeMs: beat === null ? null : Date.now() - beat,
    uptimeMs: started === null ? null : Date.now() - started,
    serverVersion: status ? status.serverVersion : null,
    versionDrift: status && status.serverVersion ? value.version !== status.serverVersion : false,
  };
}

// A worker row only moves forward through these states.
const RANK = { STARTING: 0, RUNNING: 1, STOPPING: 2, STOPPED: 3, DEAD: 3 };

/**
 * Whether `next` is older than what is shown: the same worker in an earlier
 * state, or an earlier worker. The answer to a Stop request can arrive
 * after the WebSocket has already told of the stop, and must not undo it.
 */
function isOlder(next) {
  const cur = status && status.worker;
  const w = next.worker;
  if (!cur || !w) return false;
  if (w.id !== cur.id) return w.id < cur.id;
  return (RANK[w.state] ?? 0) < (RANK[cur.state] ?? 0);
}

/** Shows a new worker status (from the API or a WebSocket message). */
export function setWorker(value) {
  const next = normalize(value);
  if (isOlder(next)) return;
  if (status && next.serverVersion === null && status.serverVersion) {
    next.serverVersion = status.serverVersion;
  }
  // A bare worker row carries no housekeeping: keep what the API said.
  if (status && !next.housekeeping) next.housekeeping = status.housekeeping;
  status = next;
  receivedAt = Date.now();
  noteLoad(next.worker);
  if (starting && next.worker && next.worker.id !== starting.afterId
      && ACTIVE.includes(next.state)) {
    starting = null;
  }
  render();
}

/** Keeps the writer's totals of the last two heartbeats of one worker. */
function noteLoad(w) {
  const at = w ? parseTime(w.heartbeatAt) : null;
  if (!w || !w.writer || at === null) return;
  if (loadShown && loadShown.id === w.id && at <= loadShown.at) return;
  loadBefore = loadShown && loadShown.id === w.id ? loadShown : null;
  loadShown = { id: w.id, at, writer: w.writer };
}

/**
 * "busy 34 % (last 10s) · 120 commits/s · sync 60 %": the writer's share of
 * the wall time spent working, its commits a second, and the share of its
 * busy time in COMMIT (the disk's part). Since the start when only one
 * heartbeat of this worker was seen.
 */
function writerText(w) {
  let from = loadBefore;
  let span = '';
  if (from) span = `last ${duration(loadShown.at - from.at)}`;
  else {
    const started = parseTime(w.startedAt);
    if (started === null || !loadShown) return '—';
    from = { at: started, writer: { busyUs: 0, commits: 0, syncUs: 0 } };
    span = 'since start';
  }
  const wallUs = (loadShown.at - from.at) * 1000;
  const now = loadShown.writer;
  const busy = now.busyUs - from.writer.busyUs;
  if (wallUs <= 0 || busy < 0) return '—';
  const commits = ((now.commits - from.writer.commits) * 1e6) / wallUs;
  const sync = busy > 0 ? (now.syncUs - from.writer.syncUs) / busy : 0;
  return `busy ${Math.round((busy / wallUs) * 100)} % (${span}) · ` +
    `${num(Math.round(commits))} commits/s · sync ${Math.round(sync * 100)} %`;
}

/** Whether a start was accepted and its worker is not shown yet. */
function awaitingStart() {
  if (!starting) return false;
  if (Date.now() - starting.at < START_PATIENCE_MS) return true;
  // No word over the WebSocket: ask once, and stop waiting.
  starting = null;
  loadWorker();
  return false;
}

/** The worker row last seen (null when none). */
export function currentWorker() {
  return status ? status.worker : null;
}

/** Fetches the worker status. */
export async function loadWorker() {
  const s = await attempt(() => api('/api/worker'), 'Worker status');
  if (s) setWorker(s);
}

function elapsed() {
  return Date.now() - receivedAt;
}

const ACTIVE = ['STARTING', 'RUNNING', 'STOPPING'];

function stateClass(state) {
  return `worker-state state-${String(state || 'none').toLowerCase()}`;
}

function render() {
  const body = document.getElementById('worker-body');
  if (!body || !status) return;
  const w = status.worker;
  const state = status.state || 'NONE';
  const rows = [];
  const row = (label, value, id) => rows.push(h('div', { class: 'kv' },
    h('dt', { text: label }), h('dd', { id }, value)));
  if (w) {
    row('Host', w.hostname);
    row('PID', String(w.pid));
    const version = h('span', { class: status.versionDrift ? 'badge badge-warn' : 'badge', text: w.version });
    const drift = status.versionDrift
      ? h('span', { class: 'drift-warning', role: 'note',
        text: `Worker runs ${w.version}, server is ${status.serverVersion || 'different'}: restart the worker to pick up the new code.` })
      : null;
    row('Version', [version, drift], 'worker-version');
    row('Concurrency', num(w.concurrency));
    // Only a live worker is supervised or not; a stopped or dead one is
    // neither (it once was, perhaps), so it gets no label.
    if (status.supervised !== undefined && ACTIVE.includes(state)) {
      row('Supervision', status.supervised ? 'supervised by jobmgr serve' : 'started by hand');
    }
    row('Uptime', '', 'worker-uptime');
    row('Heartbeat', '', 'worker-heartbeat');
    if (w.writer) {
      row('Writer', h('span', {
        title: 'The worker\'s one writer thread commits every claim, progress update, log line '
          + 'and finish. Near 100 % busy, it sets how many runs a second finish; sync is the '
          + 'part of its time the disk takes.',
        text: writerText(w),
      }), 'worker-writer');
    }
  }
  const hk = status.housekeeping || {};
  if (w && hk.retention) row('Retention', retentionText(hk.retention), 'worker-retention');
  const disk = hk.disk && hk.disk.low
    ? h('p', { class: 'drift-warning', id: 'disk-warning', role: 'alert',
      text: `Disk low: ${mib(hk.disk.freeBytes)} free, below ${mib(hk.disk.thresholdBytes)}. ` +
        'SQLite refuses writes when the disk is full: free space or keep less history.' })
    : null;
  const stateEl = h('span', { id: 'worker-state', class: stateClass(state), text: state === 'NONE' ? 'NO WORKER' : state });
  const active = ACTIVE.includes(state);
  const pending = awaitingStart();
  const startBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'worker-start',
    disabled: busy || active || pending, text: 'Start worker', onclick: () => control('start') });
  const stopBtn = h('button', { type: 'button', class: 'btn btn-danger', id: 'worker-stop',
    disabled: busy || !active || state === 'STOPPING', text: 'Stop worker', onclick: () => control('stop') });
  let hint = null;
  if (pending && !active) hint = 'Starting a worker…';
  else if (state === 'STALE') hint = 'The worker stopped sending heartbeats. It will be marked dead and cleaned up automatically.';
  else if (state === 'STOPPING' && status.stoppingOverdueMs > 0) {
    hint = `Stopping is overdue by ${duration(status.stoppingOverdueMs)}.`;
  } else if (state === 'STOPPING') hint = drainText();
  else if (!active) hint = 'No worker is running: queued jobs wait until one starts.';
  replace(body,
    h('div', { class: 'worker-head' }, stateEl,
      h('div', { class: 'btn-row' }, startBtn, stopBtn)),
    hint ? h('p', { class: 'muted hint', id: 'worker-hint', text: hint }) : null,
    disk,
    w ? h('dl', { class: 'kvs' }, rows) : null);
  tick();
}

function mib(bytes) {
  return `${num(Math.floor((bytes || 0) / 1048576))} MiB`;
}

/** What retention keeps, and what its last run removed. */
function retentionText(r) {
  const s = r.settings || {};
  if (!s.enabled) return 'off: nothing is removed';
  let keeps = `keeps finished runs ${s.finishedDays} d, failed ${s.failedDays} d`;
  if (s.maxRuns) keeps += `, at most ${num(s.maxRuns)} runs`;
  if (s.maxDatabaseMb) keeps += `, at most ${num(s.maxDatabaseMb)} MiB`;
  return `${keeps}; last run ${r.ranAt} removed ${num(r.runsRemoved)} runs, ` +
    `${num(r.logLinesRemoved)} log lines`;
}

/** While stopping: how long running jobs have left, counting down. */
function drainText() {
  if (status.drainLeftMs === null || status.drainLeftMs === undefined) return 'Stopping…';
  const left = Math.max(0, status.drainLeftMs - elapsed());
  return left > 0
    ? `Stopping: running jobs have ${duration(left)} left to finish, then they are cancelled.`
    : 'Stopping: the drain is over; running jobs are being cancelled.';
}

/** Updates uptime and heartbeat age between messages. */
function tick() {
  // A start that outlived its patience re-renders (and asks the server).
  if (starting && Date.now() - starting.at >= START_PATIENCE_MS) render();
  if (!status || !status.worker) return;
  const hint = document.getElementById('worker-hint');
  if (hint && status.state === 'STOPPING' && !(status.stoppingOverdueMs > 0)) hint.textContent = drainText();
  const up = document.getElementById('worker-uptime');
  const beat = document.getElementById('worker-heartbeat');
  const active = ACTIVE.includes(status.state) || status.state === 'STALE';
  if (up) up.textContent = status.uptimeMs === null || status.uptimeMs === undefined
    ? '—' : duration(status.uptimeMs + (active ? elapsed() : 0));
  if (beat) {
    const age = status.heartbeatAgeMs === null || status.heartbeatAgeMs === undefined
      ? null : status.heartbeatAgeMs + elapsed();
    beat.textContent = age === null ? '—' : `${duration(age)} ago`;
    beat.classList.toggle('text-warn', status.state === 'STALE');
  }
}

/** Asks before a stop, naming the runs it interrupts and their drain. */
function confirmStop() {
  const running = runningRuns();
  const drain = status && status.drainTimeoutMs ? duration(status.drainTimeoutMs) : 'the drain timeout';
  const names = running.slice(0, 5).map((r) => `${r.jobName} #${r.id}`).join(', ');
  const more = running.length > 5 ? ` and ${running.length - 5} more` : '';
  const message = running.length
    ? `The worker takes no new runs. ${running.length === 1 ? 'The running run' : `The ${running.length} running runs`} ` +
      `(${names}${more}) ${running.length === 1 ? 'gets' : 'get'} ${drain} to finish; ` +
      `then ${running.length === 1 ? 'it is' : 'they are'} cancelled.`
    : 'No run is running: the worker stops at once. Queued runs wait until a worker starts.';
  return confirmAction({ title: 'Stop the worker?', message, yes: 'Stop worker', no: 'Keep it running' });
}

async function control(action) {
  if (action === 'stop' && !(await confirmStop())) return;
  busy = true;
  render();
  const res = await attempt(() => api(`/api/worker/${action}`, { method: 'POST' }),
    action === 'start' ? 'Start worker' : 'Stop worker');
  busy = false;
  if (res && res.worker) {
    if (action === 'start') {
      // The answer is the status from before the start.
      const before = res.worker.worker;
      starting = { at: Date.now(), afterId: before ? before.id : null };
    }
    setWorker(res.worker);
    toast(action === 'start' ? 'Worker starting' : 'Worker stopping', 'ok');
  }
  // Also when setWorker kept a newer state: the buttons leave `busy`.
  render();
}

/** Starts the ticking clock. */
export function initWorker() {
  setInterval(tick, 1000);
}
