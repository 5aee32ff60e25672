// Active runs (running, queued, waiting and scheduled), updated live from
// "run" events: stage, progress bar and text, rate and ETA, and a Cancel
// button. A waiting run names the runs it waits for (read once per run
// from its details, since the run events do not carry them).

import { api, attempt, toast } from './api.js';
import { h, replace, progressText, statusBadge, runLink, duration, runDuration, ago } from './format.js';
import { sample, etaText, progressBar } from './progress.js';
import { confirmAction } from './confirm.js';

const MAX_SHOWN = 50;
const runs = new Map();

const ACTIVE = ['RUNNING', 'QUEUED', 'WAITING', 'SCHEDULED'];
// Run id → the runs it waits for ([{id, jobName, status}]), or 'loading'.
const waitsFor = new Map();

function isActive(run) {
  return ACTIVE.includes(run.status);
}

/** What a waiting run waits for, fetched once; re-rendered when it arrives. */
function dependencies(run) {
  const known = waitsFor.get(run.id);
  if (known === undefined) {
    waitsFor.set(run.id, 'loading');
    api(`/api/jobs/${run.id}`).then((d) => {
      waitsFor.set(run.id, Array.isArray(d.after) ? d.after : []);
      scheduleRender();
    }).catch(() => waitsFor.delete(run.id));
  }
  return Array.isArray(known) ? known : null;
}

function waitingLine(run) {
  const deps = dependencies(run);
  if (!deps) return h('span', { class: 'progress-text', text: progressText(run) });
  const open = deps.filter((d) => d.status !== 'COMPLETED');
  const shown = open.length ? open : deps;
  return h('span', { class: 'progress-text waits-for' }, 'Waits for ',
    shown.flatMap((d, i) => [i ? ', ' : '', runLink(d.id, `${d.jobName} #${d.id}`), ` (${d.status.toLowerCase()})`]));
}

/** Replaces the whole list (snapshot or refetch). */
export function setActive(list) {
  runs.clear();
  for (const run of list || []) {
    if (isActive(run)) {
      sample(run);
      runs.set(run.id, run);
    }
  }
  scheduleRender();
}

/** The runs shown as RUNNING, oldest first. */
export function runningRuns() {
  return [...runs.values()].filter((r) => r.status === 'RUNNING').sort((a, b) => a.id - b.id);
}

/** Applies one run change. */
export function updateActive(run) {
  sample(run);
  if (isActive(run)) runs.set(run.id, run);
  else runs.delete(run.id);
  if (run.status !== 'WAITING') waitsFor.delete(run.id);
  scheduleRender();
}

let frame = 0;

/** Renders at most once per animation frame, however many events arrive. */
function scheduleRender() {
  if (frame) return;
  frame = requestAnimationFrame(() => { frame = 0; render(); });
}

/** Fetches running and queued runs over HTTP (when there is no snapshot). */
export async function loadActive() {
  const [running, queued, waiting, scheduled] = await Promise.all([
    attempt(() => api('/api/jobs?status=RUNNING&limit=100'), 'Active runs'),
    attempt(() => api('/api/jobs?status=QUEUED&limit=100'), 'Queued runs'),
    attempt(() => api('/api/jobs?status=WAITING&limit=100'), 'Waiting runs'),
    attempt(() => api('/api/jobs?status=SCHEDULED&limit=100'), 'Scheduled runs'),
  ]);
  setActive([running, queued, waiting, scheduled].flatMap((r) => (r ? r.runs : [])));
}

async function cancel(run, button) {
  const ok = await confirmAction({
    title: `Cancel run #${run.id}?`,
    message: run.status === 'RUNNING'
      ? `${run.jobName} #${run.id} is running (${progressText(run)}). It is asked to stop; ` +
        'what it has done so far stays done.'
      : `${run.jobName} #${run.id} has not started yet; it will not run.`,
    yes: 'Cancel run',
    no: 'Keep it',
  });
  if (!ok) return;
  button.disabled = true;
  const res = await attempt(() => api(`/api/jobs/${run.id}/cancel`, { method: 'POST' }), `Cancel #${run.id}`);
  if (res) {
    toast(res.result === 'cancelled' ? `Run #${run.id} cancelled` : `Cancellation of #${run.id} requested`, 'ok');
  } else button.disabled = false;
}

/** The Cancel button for an active run (also used by the details page). */
export function cancelButton(run) {
  const requested = Boolean(run.cancelRequestedAt);
  const button = h('button', {
    type: 'button', class: 'btn btn-small btn-danger btn-cancel',
    disabled: requested, text: requested ? 'Cancelling…' : 'Cancel',
  });
  button.addEventListener('click', () => cancel(run, button));
  return button;
}

function card(run) {
  const running = run.status === 'RUNNING';
  const since = running ? `running for ${duration(runDuration(run))}`
    : `${run.status.toLowerCase()} ${ago(run.createdAt)}`;
  return h('li', { class: `run-card run-${run.status.toLowerCase()}`, dataset: { runId: String(run.id) } },
    h('div', { class: 'run-card-head' },
      h('div', { class: 'run-title' }, runLink(run.id, run.jobName), ' ',
        h('span', { class: 'muted', text: `#${run.id}` })),
      statusBadge(run.status)),
    running ? progressBar(run) : null,
    h('div', { class: 'run-card-foot' },
      run.status === 'WAITING' ? waitingLine(run) : h('span', { class: 'progress-text', text: progressText(run) }),
      h('span', { class: 'rate muted', text: running ? etaText(run) : '' }),
      h('span', { class: 'since muted', text: since }),
      cancelButton(run)));
}

function render() {
  const list = document.getElementById('active-list');
  const count = document.getElementById('active-count');
  if (!list) return;
  // Running first, then the queue in claim order, then the runs waiting
  // for others (oldest first), then scheduled runs by their time.
  const rank = { RUNNING: 0, QUEUED: 1, WAITING: 2, SCHEDULED: 3 };
  const sorted = [...runs.values()].sort((a, b) => {
    if (a.status !== b.status) return rank[a.status] - rank[b.status];
    if (a.status === 'RUNNING' || a.status === 'WAITING') return a.id - b.id;
    if (a.status === 'SCHEDULED') return String(a.runAt).localeCompare(String(b.runAt)) || (a.id - b.id);
    return (b.priority - a.priority) || (a.id - b.id);
  });
  if (count) count.textContent = sorted.length ? String(sorted.length) : '';
  if (!sorted.length) {
    replace(list, h('li', { class: 'empty', text: 'No runs are active. Start one with “Run a job”.' }));
    return;
  }
  const shown = sorted.slice(0, MAX_SHOWN).map(card);
  const more = sorted.length - MAX_SHOWN;
  replace(list, shown, more > 0 ? h('li', { class: 'empty', text: `and ${more} more waiting` }) : null);
}

/** Refreshes durations once a second. */
export function initActive() {
  setInterval(() => { if (runs.size) scheduleRender(); }, 1000);
}
