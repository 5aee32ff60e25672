// Notifications: the [[notify]] entries of jobmgr.toml and the outbox's
// deliveries that need a look, pending ones (with their next attempt)
// and failed ones (with the last error); the totals by status in the head.

import { api, attempt } from './api.js';
import { h, replace, num, ago, timeEl, runLink } from './format.js';

let timer = null;

/** Fetches and shows the notifiers and the pending and failed deliveries. */
export async function loadNotifications() {
  const [pending, failed] = await Promise.all([
    attempt(() => api('/api/notifications?status=PENDING&limit=20'), 'Notifications'),
    attempt(() => api('/api/notifications?status=FAILED&limit=20'), 'Notifications'),
  ]);
  if (!pending || !failed) return;
  const counts = pending.counts || {};
  const count = document.getElementById('notify-count');
  if (count) {
    count.textContent = `${num(counts.PENDING || 0)} pending · ${num(counts.DELIVERED || 0)} delivered · ${num(counts.FAILED || 0)} failed`;
  }
  const notifiers = document.getElementById('notify-notifiers');
  const list = pending.notifiers || [];
  replace(notifiers, list.length
    ? list.map((n) => h('li', { class: 'notifier' },
      h('span', { class: 'notifier-name', text: n.name }),
      h('span', { class: 'muted', text: ` ${n.kind} ${n.target}` }),
      h('span', { class: 'notifier-on', text: ` on ${n.on.join(', ')}${n.jobs ? ` (jobs: ${n.jobs.join(', ')})` : ''}` })))
    : h('li', { class: 'empty', text: 'No notifiers: add [[notify]] entries to jobmgr.toml.' }));
  const rows = [...(failed.deliveries || []), ...(pending.deliveries || [])];
  const body = document.getElementById('notify-rows');
  if (!rows.length) {
    replace(body, h('tr', {}, h('td', { colspan: '6', class: 'empty', text: 'Nothing pending or failed.' })));
    return;
  }
  replace(body, rows.map(row));
}

function row(d) {
  const when = d.status === 'PENDING'
    ? h('span', {}, 'next ', timeEl(d.nextAttemptAt, ago(d.nextAttemptAt)))
    : timeEl(d.createdAt, ago(d.createdAt));
  return h('tr', { class: `delivery delivery-${d.status.toLowerCase()}`, 'data-id': String(d.id) },
    h('td', { text: d.event }),
    h('td', {}, d.runId ? runLink(d.runId, `#${d.runId}`) : d.subject),
    h('td', { text: d.notifier }),
    h('td', {}, h('span', { class: `status status-${d.status === 'FAILED' ? 'failed' : 'scheduled'}`, text: d.status }),
      h('span', { class: 'muted', text: ` ${num(d.attempts)} attempt(s)` })),
    h('td', {}, when),
    h('td', { class: 'error-text delivery-error', text: d.lastError || '' }));
}

/** Refreshes soon after a run failed (it may have queued a delivery). */
export function noteNotifyRun(run) {
  if (run.status !== 'FAILED' || timer) return;
  timer = setTimeout(() => { timer = null; loadNotifications(); }, 1500);
}
