// The Insight panel: runs finished and failed per bucket over the last
// hour, day or week, drawn as plain SVG bars by this file (no library),
// and below it a table per job type (runs, failure rate, duration p50/p95,
// last run, next scheduled run, paused, queued), each type a link to the
// history filtered to it. Everything comes from GET /api/insight, which
// reads the per-minute rollup: the page costs the same at any history
// size. The window is kept in the URL (`chart=hour|week`; day is the
// default), times follow the zone switch, and the panel re-fetches a
// little after runs finish (at most every few seconds) and each minute.

import { api, ApiError } from './api.js';
import { h, replace, num, duration, dateTime, timeEl, runLink, statusBadge } from './format.js';
import { readParams, writeParams } from './urlstate.js';

const WINDOWS = ['hour', 'day', 'week'];
const DEFAULT = 'day';
const SVG = 'http://www.w3.org/2000/svg';
// The drawing's own units: the SVG is stretched to the panel's width.
const BAR_W = 10;
const HEIGHT = 100;
// Refreshes after finished runs are coalesced this long.
const REFRESH_MS = 3000;

let win = DEFAULT;
let data = null;
let latest = 0;
let refreshTimer = null;

/** An SVG element with attributes. */
function s(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** A bucket's start as the axis writes it: the clock, with the date for a week. */
function label(ts) {
  const text = dateTime(ts); // "2026-11-28 12:00:01"
  return win === 'week' ? text.slice(5, 16) : text.slice(11, 16);
}

/** Draws the bars: the whole height is a bucket's finished runs, the red part its failed ones. */
function drawChart() {
  const box = document.getElementById('chart');
  const series = data?.series || [];
  const max = Math.max(1, ...series.map((p) => p.finished));
  const svg = s('svg', {
    viewBox: `0 0 ${series.length * BAR_W} ${HEIGHT}`, preserveAspectRatio: 'none',
    class: 'chart-svg', role: 'img',
    'aria-label': `Runs finished per ${data ? data.bucketMinutes : ''} minutes, failed in red; most in one bucket: ${max}`,
  });
  series.forEach((p, i) => {
    const x = i * BAR_W + 1;
    const hAll = (p.finished / max) * HEIGHT;
    const hBad = (p.failed / max) * HEIGHT;
    const g = s('g', { class: 'chart-bucket', 'data-at': p.at, 'data-finished': p.finished, 'data-failed': p.failed });
    if (p.finished > 0) {
      g.appendChild(s('rect', { class: 'chart-ok', x, y: HEIGHT - hAll, width: BAR_W - 2, height: hAll - hBad }));
    }
    if (p.failed > 0) {
      g.appendChild(s('rect', { class: 'chart-failed', x, y: HEIGHT - hBad, width: BAR_W - 2, height: hBad }));
    }
    svg.appendChild(g);
  });
  const mid = series[Math.floor(series.length / 2)];
  const total = series.reduce((n, p) => n + p.finished, 0);
  const failed = series.reduce((n, p) => n + p.failed, 0);
  replace(box,
    h('div', { class: 'chart-scale muted', text: `${num(max)} ▏` }),
    h('div', { class: 'chart-area' }, svg, h('div', { id: 'chart-tip', class: 'chart-tip', hidden: true })),
    h('div', { class: 'chart-axis muted' },
      h('span', { text: series.length ? label(series[0].at) : '' }),
      h('span', { text: mid ? label(mid.at) : '' }),
      h('span', { text: 'now' })));
  document.getElementById('chart-total').textContent =
    `${num(total)} finished, ${num(failed)} failed`;
  svg.addEventListener('pointermove', (e) => hover(svg, e));
  svg.addEventListener('pointerleave', () => { document.getElementById('chart-tip').hidden = true; });
}

/** Shows the bucket under the pointer: its time span and its values. */
function hover(svg, e) {
  const series = data?.series || [];
  const rect = svg.getBoundingClientRect();
  if (!series.length || rect.width <= 0) return;
  const i = Math.min(series.length - 1, Math.max(0, Math.floor(((e.clientX - rect.left) / rect.width) * series.length)));
  const p = series[i];
  const end = new Date(Date.parse(p.at) + data.bucketMinutes * 60000).toISOString();
  const tip = document.getElementById('chart-tip');
  replace(tip,
    h('div', {}, `${dateTime(p.at).slice(0, 16)} – ${dateTime(end).slice(11, 16)}`),
    h('div', {}, h('strong', { text: num(p.finished) }), ' finished, ',
      h('strong', { class: p.failed ? 'bad' : '', text: num(p.failed) }), ' failed'));
  tip.dataset.index = String(i);
  tip.hidden = false;
  const x = e.clientX - rect.left;
  tip.style.left = `${Math.min(Math.max(0, x - tip.offsetWidth / 2), rect.width - tip.offsetWidth)}px`;
}

/** The history filtered to one type, this panel's window kept. */
function historyHref(job) {
  const q = new URLSearchParams({ name: job });
  if (win !== DEFAULT) q.set('chart', win);
  return `${location.pathname}?${q}#history-panel`;
}

function percent(rate) {
  if (rate === null || rate === undefined) return '—';
  return `${(rate * 100).toFixed(rate > 0 && rate < 0.1 ? 1 : 0)}%`;
}

function typeRow(t) {
  const last = t.lastRun;
  // data-label names each cell on a phone, where the table becomes cards.
  const cell = (label, attrs, ...children) => h('td', { ...attrs, 'data-label': label }, ...children);
  return h('tr', { dataset: { job: t.job } },
    h('td', { class: 'col-name' }, h('a', { class: 'insight-job', href: historyHref(t.job), text: t.job })),
    cell('Runs', { class: 'num', text: num(t.runs) }),
    cell('Failed', { class: `num${t.failures ? ' bad' : ''}` }, `${num(t.failures)} `,
      h('span', { class: 'muted', text: `(${percent(t.failureRate)})` })),
    cell('p50', { class: 'num', text: duration(t.p50Ms) }),
    cell('p95', { class: 'num', text: duration(t.p95Ms) }),
    cell('Last', {}, last ? [runLink(last.id), ' ', statusBadge(last.status), ' ', timeEl(last.finishedAt)] : '—'),
    cell('Next', {}, t.nextScheduledAt ? timeEl(t.nextScheduledAt) : '—'),
    cell('State', {}, t.paused ? h('span', { class: 'badge badge-warn', text: 'Paused' }) : 'Running'),
    cell('Queued', { class: 'num', text: num(t.queued) }));
}

function drawTable() {
  const body = document.getElementById('insight-rows');
  const types = data?.types || [];
  if (!types.length) {
    replace(body, h('tr', {}, h('td', { colspan: '9', class: 'empty', text: 'No runs yet.' })));
    return;
  }
  replace(body, types.map(typeRow));
}

function showWindow() {
  for (const b of document.querySelectorAll('#chart-window button')) {
    b.setAttribute('aria-pressed', b.dataset.window === win ? 'true' : 'false');
  }
}

/** Fetches the current window and redraws the chart and the table. */
export async function loadInsight() {
  if (!document.getElementById('chart')) return;
  const mine = ++latest;
  const error = document.getElementById('chart-error');
  let res;
  try {
    res = await api(`/api/insight?window=${win}`);
  } catch (e) {
    if (mine !== latest) return;
    error.textContent = e instanceof ApiError ? e.message : `Insight: ${e.message}`;
    return;
  }
  if (mine !== latest) return;
  error.textContent = '';
  data = res;
  drawChart();
  drawTable();
}

/** A run changed: when it finished, refresh a little later, once per burst. */
export function noteInsightRun(run) {
  if (!run || !run.finishedAt || refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; loadInsight(); }, REFRESH_MS);
}

/** Wires the window switch, reading the window from the URL. */
export function initCharts() {
  const group = document.getElementById('chart-window');
  if (!group) return;
  const want = readParams().get('chart');
  win = WINDOWS.includes(want) ? want : DEFAULT;
  showWindow();
  group.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-window]');
    if (!b || b.dataset.window === win) return;
    win = b.dataset.window;
    writeParams(['chart'], { chart: win === DEFAULT ? '' : win });
    showWindow();
    loadInsight();
  });
  // The newest bucket moves on with the clock.
  setInterval(loadInsight, 60000);
}
