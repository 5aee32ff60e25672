// Run history: filters (status, job type, text, date range), keyset
// pagination by cursor, failed runs highlighted, Re-run per finished row.

import { api, attempt, query, toast } from './api.js';
import {
  h, replace, statusBadge, runLink, timeEl, duration, runDuration, progressText, counted, num,
} from './format.js';

const PAGE = 25;
let cursors = [null]; // cursor of each page visited; the last is the current page
let nextCursor = null;
let rows = [];
let reloadTimer = null;
let loading = false;
// Number of the newest history request. Filters can change while a request
// is in flight; an answer that arrives after a newer request was made is
// dropped, or a slow answer for the old filters would replace the rows of
// the new ones and stay (live updates then patch the wrong rows).
let latest = 0;

function filters() {
  const form = document.getElementById('history-filters');
  const val = (name) => form.elements[name].value.trim();
  const iso = (v) => {
    if (!v) return '';
    const t = new Date(v);
    return isNaN(t.getTime()) ? '' : t.toISOString();
  };
  return {
    status: val('status'),
    name: val('name'),
    q: val('q'),
    since: iso(val('since')),
    until: iso(val('until')),
  };
}

/** Loads the current page. */
export async function loadHistory() {
  const mine = ++latest;
  loading = true;
  const cursor = cursors[cursors.length - 1];
  const res = await attempt(() => api(`/api/jobs${query({ ...filters(), limit: PAGE, cursor })}`), 'History');
  if (mine !== latest) return;
  loading = false;
  if (!res) return;
  rows = res.runs || [];
  nextCursor = res.nextCursor ?? null;
  render();
}

function finished(run) {
  return run.status === 'COMPLETED' || run.status === 'FAILED' || run.status === 'CANCELLED';
}

async function rerun(run, button) {
  button.disabled = true;
  const res = await attempt(() => api(`/api/jobs/${run.id}/rerun`, { method: 'POST' }), `Re-run #${run.id}`);
  button.disabled = false;
  if (res && res.run) {
    toast(`Run #${res.run.id} queued (re-run of #${run.id})`, 'ok');
    location.hash = `#/runs/${res.run.id}`;
  }
}

/** A Re-run button for a finished run (also used by the details page). */
export function rerunButton(run) {
  const b = h('button', { type: 'button', class: 'btn btn-small btn-rerun', text: 'Re-run' });
  b.addEventListener('click', () => rerun(run, b));
  return b;
}

function summary(run) {
  if (run.status === 'FAILED' && run.error) return h('span', { class: 'error-text', text: run.error });
  if (run.status === 'RUNNING' || run.status === 'QUEUED') return progressText(run);
  const n = run.entitiesProcessed;
  if (!n) return '';
  return run.entitiesUnit ? counted(n, run.entitiesUnit) : `${num(n)} processed`;
}

function row(run) {
  return h('tr', { class: `row-${run.status.toLowerCase()}`, dataset: { runId: String(run.id) } },
    h('td', { class: 'col-id' }, runLink(run.id)),
    h('td', { class: 'col-name' }, runLink(run.id, run.jobName)),
    h('td', { class: 'col-status' }, statusBadge(run.status)),
    h('td', { class: 'col-summary' }, summary(run)),
    h('td', { class: 'col-created' }, timeEl(run.createdAt)),
    h('td', { class: 'col-duration', text: duration(runDuration(run)) }),
    h('td', { class: 'col-actions' }, finished(run) ? rerunButton(run) : null));
}

function render() {
  const body = document.getElementById('history-rows');
  if (!body) return;
  if (!rows.length) {
    replace(body, h('tr', {}, h('td', { colspan: '7', class: 'empty', text: 'No runs match these filters.' })));
  } else replace(body, rows.map(row));
  const page = cursors.length;
  document.getElementById('history-page').textContent = `Page ${page}`;
  document.getElementById('history-prev').disabled = page <= 1;
  document.getElementById('history-next').disabled = nextCursor === null;
}

/** Applies a run change to a visible row, or refreshes the first page. */
export function updateHistory(run) {
  const i = rows.findIndex((r) => r.id === run.id);
  if (i >= 0) {
    rows[i] = run;
    const body = document.getElementById('history-rows');
    const old = body && body.querySelector(`tr[data-run-id="${run.id}"]`);
    if (old) old.replaceWith(row(run));
    return;
  }
  // A run we do not show: new runs belong on the first page.
  if (cursors.length === 1 && !loading) scheduleReload();
}

/** Refetches soon, coalescing bursts of events. */
export function scheduleReload() {
  if (reloadTimer) return;
  reloadTimer = setTimeout(() => { reloadTimer = null; loadHistory(); }, 1000);
}

/** Fills the job type filter. */
export function setHistoryJobTypes(types) {
  const select = document.getElementById('history-filters').elements.name;
  const current = select.value;
  replace(select, h('option', { value: '', text: 'All job types' }),
    types.map((t) => h('option', { value: t.name, text: t.name })));
  select.value = current;
}

/** Wires the filter form and pager. */
export function initHistory() {
  const form = document.getElementById('history-filters');
  const restart = () => { cursors = [null]; loadHistory(); };
  form.addEventListener('submit', (e) => { e.preventDefault(); restart(); });
  form.addEventListener('change', (e) => { if (e.target.name !== 'q') restart(); });
  let typing = null;
  form.elements.q.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(restart, 350);
  });
  document.getElementById('history-reset').addEventListener('click', () => {
    form.reset();
    restart();
  });
  document.getElementById('history-prev').addEventListener('click', () => {
    if (cursors.length > 1) { cursors.pop(); loadHistory(); }
  });
  document.getElementById('history-next').addEventListener('click', () => {
    if (nextCursor !== null) { cursors.push(nextCursor); loadHistory(); }
  });
}
