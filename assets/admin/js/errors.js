// Error tracking: failures of the last 24 hours grouped by job type and
// message (numbers and ids masked, so "worker lost: worker 3 …" and "…
// worker 4 …" are one group), with counts, the last occurrence, a link to
// the last run and one to the history filtered to the group.

import { api, attempt } from './api.js';
import { h, replace, num, ago, timeEl, runLink } from './format.js';

let timer = null;

/** Fetches and shows the error groups. */
export async function loadErrors() {
  const res = await attempt(() => api('/api/errors?hours=24'), 'Error tracking');
  if (!res) return;
  const groups = res.groups || [];
  const list = document.getElementById('errors-list');
  const count = document.getElementById('errors-count');
  if (count) count.textContent = groups.length ? String(groups.reduce((n, g) => n + g.count, 0)) : '';
  if (!groups.length) {
    replace(list, h('li', { class: 'empty', text: 'No failures in the last 24 hours.' }));
    return;
  }
  replace(list, groups.map((g) => h('li', { class: 'error-group' },
    h('div', { class: 'error-group-head' },
      h('span', { class: 'error-count', text: `${num(g.count)}×` }),
      h('span', { class: 'error-job', text: g.jobName }),
      h('span', { class: 'muted' }, 'last ', timeEl(g.lastAt, ago(g.lastAt))),
      runLink(g.lastRunId, `last run #${g.lastRunId}`),
      historyLink(g)),
    h('div', { class: 'error-text', text: g.error }))));
}

/** A link to the history showing this group's failed runs. */
function historyLink(g) {
  const q = new URLSearchParams({ status: 'FAILED', name: g.jobName });
  if (g.search) q.set('q', g.search);
  return h('a', { class: 'error-history', href: `${location.pathname}?${q}`, text: `all ${num(g.count)} in the history` });
}

/** Refreshes soon after a failure, coalescing bursts. */
export function noteRun(run) {
  if (run.status !== 'FAILED' || timer) return;
  timer = setTimeout(() => { timer = null; loadErrors(); }, 1000);
}
