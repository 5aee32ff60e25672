// Clean up stalled runs: shows what would be marked failed, asks for
// confirmation, then reports what was done.

import { api, attempt, toast } from './api.js';
import { h, replace, statusBadge, runLink, timeEl } from './format.js';
import { jobType, loadJobTypes } from './newjob.js';

let pending = [];

async function open() {
  const dlg = document.getElementById('stalled');
  const body = document.getElementById('stalled-body');
  const confirm = document.getElementById('stalled-confirm');
  confirm.disabled = true;
  replace(body, h('p', { class: 'muted', text: 'Looking for stalled runs…' }));
  if (!dlg.open) dlg.showModal();
  const res = await attempt(() => api('/api/jobs/stalled'), 'Stalled runs');
  await loadJobTypes();
  pending = res ? res.runs || [] : [];
  if (!pending.length) {
    replace(body, h('p', { class: 'ok-text', text: 'No stalled runs: every running run belongs to a live worker.' }));
    return;
  }
  confirm.disabled = false;
  confirm.textContent = `Clean up ${pending.length} run${pending.length === 1 ? '' : 's'}`;
  replace(body,
    h('p', { text: 'These runs are held by a worker that is no longer alive. Cleaning up resolves them as shown:' }),
    h('ul', { class: 'stalled-list' }, pending.map((r) => h('li', {},
      runLink(r.id), ' ', h('span', { text: r.jobName }), ' ', statusBadge(r.status), ' → ', statusBadge(outcome(r)),
      h('span', { class: 'muted' }, ' started ', timeEl(r.startedAt),
        r.workerId ? `, worker #${r.workerId}` : '')))),
    h('p', { class: 'muted hint', text: 'Runs of job types that are safe to retry are queued again; a run whose cancel was requested becomes CANCELLED; the rest are marked FAILED.' }));
}

/** What the clean-up will make of a stalled run. */
function outcome(run) {
  if (run.cancelRequestedAt) return 'CANCELLED';
  const type = jobType(run.jobName);
  return type && type.retrySafe ? 'QUEUED' : 'FAILED';
}

async function confirmCleanup() {
  const confirm = document.getElementById('stalled-confirm');
  confirm.disabled = true;
  const res = await attempt(() => api('/api/jobs/cleanup-stalled', { method: 'POST' }), 'Clean up');
  if (!res) { confirm.disabled = false; return; }
  const runs = res.runs || [];
  const workers = res.deadWorkers || [];
  const count = (status) => runs.filter((r) => r.status === status).length;
  const parts = [['FAILED', 'failed'], ['QUEUED', 're-queued'], ['CANCELLED', 'cancelled']]
    .filter(([s]) => count(s)).map(([s, word]) => `${count(s)} ${word}`);
  toast(`Cleaned up ${runs.length} run${runs.length === 1 ? '' : 's'}${parts.length ? ` (${parts.join(', ')})` : ''}` +
    (workers.length ? ` and ${workers.length} worker${workers.length === 1 ? '' : 's'} dead` : ''), 'ok');
  document.getElementById('stalled').close();
}

/** Wires the button and dialog. */
export function initStalled() {
  document.getElementById('stalled-open').addEventListener('click', open);
  document.getElementById('stalled-confirm').addEventListener('click', confirmCleanup);
  document.getElementById('stalled-cancel').addEventListener('click', () => document.getElementById('stalled').close());
}
