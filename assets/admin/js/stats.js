// The statistics overview: runs by status, throughput and failures in the
// last 24 hours. The "Live" badge beside its title belongs to live.js.

import { api, attempt } from './api.js';
import { h, replace, num } from './format.js';

const STATUSES = ['WAITING', 'SCHEDULED', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'];

/** Shows a stats object (GET /api/stats or a WebSocket "stats" message). */
export function setStats(stats) {
  const body = document.getElementById('stats-body');
  if (!body || !stats) return;
  const by = (stats.counts && stats.counts.byStatus) || {};
  const tile = (label, value, cls, id) => h('div', { class: `tile ${cls || ''}${value ? '' : ' tile-zero'}`, id },
    h('div', { class: 'tile-value', text: num(value ?? 0) }),
    h('div', { class: 'tile-label', text: label }));
  const tp = stats.throughput || {};
  replace(body,
    h('div', { class: 'tiles' },
      STATUSES.map((s) => tile(s.charAt(0) + s.slice(1).toLowerCase(), by[s], `tile-${s.toLowerCase()}`,
        `stat-${s.toLowerCase()}`))),
    h('div', { class: 'tiles tiles-secondary' },
      tile('Total runs', stats.counts ? stats.counts.total : 0, '', 'stat-total'),
      tile('Throughput, last minute', tp.lastMinute, '', 'stat-minute'),
      tile('Throughput, last hour', tp.lastHour, '', 'stat-hour'),
      tile('Failed last 24 h', stats.failedLast24h, stats.failedLast24h ? 'tile-alert' : '', 'stat-failed24')),
    mix(by));
}

/** A stacked bar of all runs by status, with a legend. */
function mix(by) {
  const total = STATUSES.reduce((n, s) => n + (by[s] || 0), 0);
  if (!total) return null;
  const segments = STATUSES.filter((s) => by[s]).map((s) => {
    const seg = h('span', { class: `mix-seg mix-${s.toLowerCase()}`, title: `${s}: ${num(by[s])}` });
    seg.style.width = `${(by[s] / total) * 100}%`;
    return seg;
  });
  return h('div', { class: 'mix' },
    h('div', { class: 'mix-bar', role: 'img', 'aria-label': 'Runs by status' }, segments),
    h('ul', { class: 'mix-legend' }, STATUSES.filter((s) => by[s]).map((s) =>
      h('li', {}, h('span', { class: `mix-dot mix-${s.toLowerCase()}` }),
        `${s.charAt(0)}${s.slice(1).toLowerCase()} ${Math.round((by[s] / total) * 1000) / 10}%`))));
}

/** Fetches the statistics. */
export async function loadStats() {
  const s = await attempt(() => api('/api/stats'), 'Statistics');
  if (s) setStats(s);
}
