// The live log viewer of one run: loads the lines over HTTP, then follows
// new ones over the WebSocket; level filter, search, auto-scroll, export.
// Every message, stage and context is inserted as text.

import { api, attempt, query } from './api.js';
import { h, replace, clock, timeEl, prettyJson } from './format.js';
import { followLog } from './live.js';

const LEVELS = ['debug', 'info', 'warning', 'error'];
const PAGE = 1000;
const MAX_PAGES = 50;
const MAX_KEPT = 50000;
const MAX_SHOWN = 2000;

/** Builds a viewer for run `runId`; returns { element, destroy }. */
export function createLogViewer(runId) {
  let lines = [];
  let stop = null;
  let destroyed = false;

  const level = h('select', { class: 'log-level', 'aria-label': 'Minimum level' },
    h('option', { value: 'debug', text: 'All levels' }),
    h('option', { value: 'info', text: 'Info and above' }),
    h('option', { value: 'warning', text: 'Warnings and errors' }),
    h('option', { value: 'error', text: 'Errors only' }));
  const search = h('input', { type: 'search', class: 'log-search', placeholder: 'Search log…', 'aria-label': 'Search log' });
  const autoScroll = h('input', { type: 'checkbox', class: 'log-autoscroll', checked: true });
  const state = h('span', { class: 'log-state muted', text: 'Loading…' });
  const count = h('span', { class: 'log-count muted' });
  const list = h('ol', { class: 'log-lines', 'aria-live': 'off' });
  const exportBase = `/api/jobs/${encodeURIComponent(runId)}/logs/export`;
  const element = h('div', { class: 'log-viewer' },
    h('div', { class: 'log-toolbar' },
      level, search,
      h('label', { class: 'check' }, autoScroll, ' Auto-scroll'),
      h('span', { class: 'log-exports' }, 'Export: ',
        h('a', { href: `${exportBase}?format=ndjson`, download: `run-${runId}-log.ndjson`, class: 'export-ndjson', text: 'NDJSON' }),
        ' · ',
        h('a', { href: `${exportBase}?format=text`, download: `run-${runId}-log.txt`, class: 'export-text', text: 'Text' })),
      state, count),
    list);

  const matches = (line) => {
    if (LEVELS.indexOf(line.level) < LEVELS.indexOf(level.value)) return false;
    const q = search.value.trim().toLowerCase();
    if (!q) return true;
    const hay = `${line.message} ${line.stage || ''} ${line.context ? JSON.stringify(line.context) : ''}`;
    return hay.toLowerCase().includes(q);
  };

  const lineEl = (line) => {
    const ctx = line.context && !(typeof line.context === 'object' && !Object.keys(line.context).length)
      ? h('span', { class: 'log-context', text: typeof line.context === 'string' ? line.context : prettyJson(line.context).replace(/\s*\n\s*/g, ' ') })
      : null;
    return h('li', { class: `log-line level-${line.level}`, dataset: { lineId: String(line.id) } },
      timeEl(line.timestamp, clock(line.timestamp), { class: 'log-time' }),
      h('span', { class: 'log-lvl', text: line.level }),
      line.stage ? h('span', { class: 'log-stage', text: line.stage }) : null,
      h('span', { class: 'log-msg', text: line.message }),
      ctx);
  };

  const updateCount = () => {
    const shown = list.querySelectorAll('.log-line').length;
    count.textContent = `${shown.toLocaleString('en-US')} of ${lines.length.toLocaleString('en-US')} lines`;
  };

  const scroll = () => {
    if (autoScroll.checked) list.scrollTop = list.scrollHeight;
  };

  const rerender = () => {
    const shown = lines.filter(matches).slice(-MAX_SHOWN);
    if (!shown.length) replace(list, h('li', { class: 'empty', text: lines.length ? 'No lines match.' : 'No log lines yet.' }));
    else replace(list, shown.map(lineEl));
    updateCount();
    scroll();
  };

  const add = (fresh) => {
    lines.push(...fresh);
    if (lines.length > MAX_KEPT) lines = lines.slice(-MAX_KEPT);
    const shown = fresh.filter(matches);
    if (shown.length) {
      const empty = list.querySelector('.empty');
      if (empty) empty.remove();
      for (const line of shown) list.appendChild(lineEl(line));
      const all = list.querySelectorAll('.log-line');
      for (let i = 0; i < all.length - MAX_SHOWN; i++) all[i].remove();
    }
    updateCount();
    scroll();
  };

  const load = async () => {
    let after = 0;
    for (let page = 0; page < MAX_PAGES && !destroyed; page++) {
      const res = await attempt(() => api(`/api/jobs/${runId}/logs${query({ after: after || '', limit: PAGE })}`), 'Log');
      if (!res) break;
      const got = res.lines || [];
      lines.push(...got);
      if (got.length) after = got[got.length - 1].id;
      if (res.nextAfter === null || res.nextAfter === undefined || !got.length) break;
      after = res.nextAfter;
    }
    if (destroyed) return;
    rerender();
    stop = followLog(runId, after, {
      onLines: add,
      onState: (s) => {
        state.textContent = { live: 'Following live', ended: 'Run finished', offline: 'Reconnecting…' }[s] || s;
        state.dataset.state = s;
      },
    });
  };

  level.addEventListener('change', rerender);
  let typing = null;
  search.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(rerender, 200); });
  autoScroll.addEventListener('change', scroll);
  load();

  return {
    element,
    destroy() {
      destroyed = true;
      if (stop) stop();
    },
  };
}
