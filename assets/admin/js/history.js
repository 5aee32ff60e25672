// Run history: filters (statuses, job type, text, date range, page size)
// kept in the page's URL so a reload or a shared link shows the same runs,
// keyset pagination by cursor, failed runs highlighted, Re-run per
// finished row, bulk actions over every run the filters match, and the
// keyboard: `/` searches, j/k move, Enter opens.

import { api, attempt, query, toast } from './api.js';
import { confirmAction } from './confirm.js';
import { zoneMode } from './tz.js';
import { writeParams } from './urlstate.js';
import {
  h, replace, statusBadge, runLink, timeEl, duration, runDuration, progressText, counted, num, unusualFlags,
} from './format.js';

const SIZES = ['25', '50', '100', '200'];
let cursors = [null]; // cursor of each page visited; the last is the current page
let nextCursor = null;
let rows = [];
let reloadTimer = null;
let loading = false;
let reloadAfter = false; // a run changed while a load was out
// Number of the newest history request. Filters can change while a request
// is in flight; an answer that arrives after a newer request was made is
// dropped, or a slow answer for the old filters would replace the rows of
// the new ones and stay (live updates then patch the wrong rows).
let latest = 0;

/** The form's values as the URL and the API spell them. */
function formValues() {
  const form = document.getElementById('history-filters');
  const val = (name) => form.elements[name].value.trim();
  const statuses = [...form.querySelectorAll('input[name="status"]:checked')].map((c) => c.value);
  return {
    status: statuses.join(','),
    // Until the type list arrives the select has no options: the type
    // named in the URL is the filter meanwhile (the first load uses it).
    name: val('name') || form.dataset.wantName || '',
    q: val('q'),
    since: val('since'),
    until: val('until'),
    size: val('size') === SIZES[0] ? '' : val('size'),
  };
}

/** A date field's value as an instant: typed in the zone the page shows. */
function instant(v) {
  if (!v) return '';
  const t = new Date(zoneMode() === 'utc' ? `${v}Z` : v);
  return isNaN(t.getTime()) ? '' : t.toISOString();
}

function filters() {
  const v = formValues();
  return { status: v.status, name: v.name, q: v.q, since: instant(v.since), until: instant(v.until) };
}

function pageSize() {
  return Number(formValues().size || SIZES[0]);
}

const URL_KEYS = ['status', 'name', 'q', 'since', 'until', 'size'];

/** Writes the filters into the URL (its own keys only, see urlstate.js). */
function saveToUrl() {
  writeParams(URL_KEYS, formValues());
}

/** Sets the form from the URL, so a reload or a shared link keeps it. */
function loadFromUrl() {
  const form = document.getElementById('history-filters');
  const p = new URLSearchParams(location.search);
  const statuses = (p.get('status') || '').split(',');
  for (const box of form.querySelectorAll('input[name="status"]')) box.checked = statuses.includes(box.value);
  for (const name of ['q', 'since', 'until']) form.elements[name].value = p.get(name) || '';
  form.elements.size.value = SIZES.includes(p.get('size')) ? p.get('size') : SIZES[0];
  // The job type list arrives later (setHistoryJobTypes keeps this value).
  form.dataset.wantName = p.get('name') || '';
}

/** Loads the current page. */
export async function loadHistory() {
  const mine = ++latest;
  loading = true;
  const cursor = cursors[cursors.length - 1];
  const res = await attempt(() => api(`/api/jobs${query({ ...filters(), limit: pageSize(), cursor })}`), 'History');
  if (mine !== latest) return;
  loading = false;
  if (reloadAfter) { reloadAfter = false; scheduleReload(); }
  if (!res) return;
  rows = res.runs || [];
  nextCursor = res.nextCursor ?? null;
  render();
  loadCount(mine);
  loadBulk(mine);
}

// The total for the filters ("1,234 matching") and the page count. The
// server sums its per-status counters when only statuses are chosen, and
// otherwise counts up to a cap, past which the total is "more than".
let total = null; // { count, exact } for the current filters, or null

// A count the server had to make by reading runs (a type, text or dates)
// costs about what the page did: while runs change and the first page
// reloads, it is made again at most this often. The counters' is free.
const RECOUNT_MS = 10000;
let lastCount = { key: '', at: 0 };
let recountTimer = null;

async function loadCount(mine) {
  const key = query(filters());
  const fresh = key === lastCount.key && Date.now() - lastCount.at < RECOUNT_MS;
  if (total && fresh && total.counted === 'rows') {
    // Not now, but soon: the runs that changed meanwhile are counted then.
    if (!recountTimer) {
      recountTimer = setTimeout(() => { recountTimer = null; loadCount(latest); }, RECOUNT_MS - (Date.now() - lastCount.at));
    }
    renderPage();
    return;
  }
  const res = await attempt(() => api(`/api/jobs/count${key}`), 'Count matching runs');
  if (mine !== latest) return;
  total = res;
  lastCount = { key, at: Date.now() };
  renderPage();
}

function renderPage() {
  const page = cursors.length;
  const count = document.getElementById('history-count');
  let pages = '';
  if (total) {
    const n = Math.max(1, Math.ceil(total.count / pageSize()));
    pages = ` of ${num(n)}${total.exact ? '' : '+'}`;
    if (count) count.textContent = `${total.exact ? '' : 'more than '}${num(total.count)} matching`;
  } else if (count) count.textContent = '';
  document.getElementById('history-page').textContent = `Page ${page}${pages}`;
}

// Bulk actions: each button names how many runs it acts on (the server's
// dry-run count for the current filters, "100,000+" past its cap) and shows
// only when a filter is active and that count is not zero. Re-run offers
// the failed and cancelled matches, cancel the unfinished ones, delete the
// finished ones. The server carries an action out in the background: the
// page follows its progress until it is done, then names the final count.
const BULK = {
  rerun: { only: ['FAILED', 'CANCELLED'], label: (n) => `Re-run all ${n} matching`, verb: 'Re-run', doing: 'Re-running' },
  cancel: { only: ['WAITING', 'SCHEDULED', 'QUEUED', 'RUNNING'], label: (n) => `Cancel all ${n}`, verb: 'Cancel', doing: 'Cancelling' },
  delete: { only: null, label: (n) => `Delete all ${n}`, verb: 'Delete', doing: 'Deleting' },
};
const bulkCounts = {};
const bulkCapped = {};
// How often a running bulk action's progress is asked for.
const BULK_POLL_MS = 500;

/** The count as a button names it: "100,000+" when the server stopped counting. */
function countText(action) {
  return `${num(bulkCounts[action] || 0)}${bulkCapped[action] ? '+' : ''}`;
}

/** The API's filter for `action`, or null when it can match nothing. */
function bulkFilter(action) {
  const f = filters();
  let status = f.status ? f.status.split(',') : [];
  const only = BULK[action].only;
  if (only) status = status.length ? status.filter((s) => only.includes(s)) : only;
  if (only && !status.length) return null;
  return { status, name: f.name, q: f.q, since: f.since, until: f.until };
}

function filterActive() {
  const f = filters();
  return Boolean(f.status || f.name || f.q || f.since || f.until);
}

/** Refreshes the bulk buttons for the filters of history request `mine`. */
async function loadBulk(mine) {
  const bar = document.getElementById('history-bulk');
  if (!bar) return;
  const active = filterActive();
  bar.hidden = !active;
  for (const action of Object.keys(BULK)) {
    const button = document.getElementById(`bulk-${action}`);
    const filter = active ? bulkFilter(action) : null;
    let n = 0;
    let capped = false;
    if (filter) {
      const res = await attempt(() => api('/api/jobs/bulk', { body: { action, filter, dryRun: true } }), 'Count matching runs');
      if (mine !== latest) return;
      n = res ? res.matched : 0;
      capped = Boolean(res && res.capped);
    }
    bulkCounts[action] = n;
    bulkCapped[action] = capped;
    button.hidden = n === 0;
    button.textContent = BULK[action].label(countText(action));
  }
}

function bulkMessage(action, n) {
  const runs = n === 1 ? '1 run' : `${countText(action)} runs`;
  if (action === 'rerun') return `${runs} that failed or were cancelled will be enqueued again, each with the same parameters.`;
  if (action === 'cancel') return `${runs} will be cancelled: queued ones will not run, running ones are asked to stop.`;
  return `${runs} and their log lines will be deleted for good. Queued and running runs are kept.`;
}

async function bulk(action) {
  const n = bulkCounts[action] || 0;
  const filter = bulkFilter(action);
  if (!n || !filter) return;
  const { verb } = BULK[action];
  const ok = await confirmAction({
    title: `${verb} ${n === 1 ? '1 run' : `all ${countText(action)} runs`}?`,
    message: bulkMessage(action, n),
    yes: `${verb} ${countText(action)}`,
    no: 'Keep them',
  });
  if (!ok) return;
  const button = document.getElementById(`bulk-${action}`);
  button.disabled = true;
  const started = await attempt(() => api('/api/jobs/bulk', { body: { action, filter } }), `${verb} all`);
  const res = started && await followBulk(action, started);
  button.disabled = false;
  if (res && res.status === 'DONE') {
    const done = { rerun: 're-run', cancel: 'cancelled', delete: 'deleted' }[action];
    toast(`${num(res.acted)} of ${num(res.matched)} matching runs ${done}`, 'ok');
  } else if (res) {
    toast(`${verb} all stopped after ${num(res.done)} of ${num(res.total)} runs: ${res.error || res.status}`, 'error');
  }
  if (res) {
    cursors = [null];
    loadHistory();
  }
}

/** Shows the progress of bulk action `view` until it ends; its last state, or null. */
async function followBulk(action, view) {
  const line = document.getElementById('bulk-progress');
  let v = view;
  line.hidden = false;
  while (v && v.status === 'RUNNING') {
    line.textContent = `${BULK[action].doing}: ${num(v.done)} of ${num(v.total)} runs`;
    await new Promise((r) => setTimeout(r, BULK_POLL_MS));
    v = await attempt(() => api(`/api/jobs/bulk/${view.id}`), 'Bulk action progress');
  }
  line.hidden = true;
  return v;
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

/** A flag on a run far from its type's usual, naming the first way it is. */
function flag(run) {
  const flags = unusualFlags(run);
  if (!flags.length) return null;
  const more = flags.length > 1 ? ` (+${flags.length - 1})` : '';
  return h('span', { class: 'unusual-flag', title: flags.map((f) => f.text).join('\n'), text: `⚑ ${flags[0].text}${more}` });
}

function summary(run) {
  const flagged = flag(run);
  if (flagged) return h('span', { class: 'summary-flagged' }, plainSummary(run), ' ', flagged);
  return plainSummary(run);
}

function plainSummary(run) {
  if (run.status === 'FAILED' && run.error) return h('span', { class: 'error-text', text: run.error });
  if (['RUNNING', 'QUEUED', 'SCHEDULED'].includes(run.status)) return progressText(run);
  const n = run.entitiesProcessed;
  if (n) return run.entitiesUnit ? counted(n, run.entitiesUnit) : `${num(n)} processed`;
  // A job whose last stage reset its count still says what it did.
  const outcome = Object.entries(run.outcomeSummary || {}).filter(([, v]) => typeof v === 'number');
  return outcome.map(([k, v]) => counted(v, k)).join(' · ');
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
  mark(false);
  const page = cursors.length;
  renderPage();
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
    if (old) { old.replaceWith(row(run)); mark(false); }
    return;
  }
  // A run we do not show: new runs belong on the first page. While a load
  // is out, its answer may predate this run: load again once it is in.
  if (cursors.length !== 1) return;
  if (loading) reloadAfter = true;
  else scheduleReload();
}

/** Refetches soon, coalescing bursts of events. */
export function scheduleReload() {
  if (reloadTimer) return;
  reloadTimer = setTimeout(() => { reloadTimer = null; loadHistory(); }, 1000);
}

/** Fills the job type filter. */
export function setHistoryJobTypes(types) {
  const form = document.getElementById('history-filters');
  const select = form.elements.name;
  const current = select.value || form.dataset.wantName || '';
  const names = types.map((t) => t.name);
  // A type named in the URL that no longer exists stays selectable.
  if (current && !names.includes(current)) names.push(current);
  replace(select, h('option', { value: '', text: 'All job types' }),
    names.map((n) => h('option', { value: n, text: n })));
  select.value = current;
  delete form.dataset.wantName;
}

/** The row the keyboard is on, as a zero-based index, or -1. */
let selected = -1;

/** Marks the selected row (after a redraw too); scrolls it into view if asked. */
function mark(scroll) {
  const trs = [...document.querySelectorAll('#history-rows tr[data-run-id]')];
  if (!trs.length || selected < 0) return;
  selected = Math.min(trs.length - 1, selected);
  trs.forEach((tr, n) => {
    tr.classList.toggle('selected', n === selected);
    tr.setAttribute('aria-selected', n === selected ? 'true' : 'false');
  });
  if (scroll) trs[selected].scrollIntoView({ block: 'nearest' });
}

function select(i) {
  selected = Math.max(0, i);
  mark(true);
}

/** `/` searches; j/k move through the rows and Enter opens one. */
function onKey(e) {
  const t = e.target;
  const typing = t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'SELECT', 'TEXTAREA'].includes(t.tagName));
  if (typing || e.ctrlKey || e.metaKey || e.altKey || document.querySelector('dialog[open]')) return;
  if (e.key === '/') {
    e.preventDefault();
    document.getElementById('history-filters').elements.q.focus();
  } else if (e.key === 'j') select(selected + 1);
  else if (e.key === 'k') select(selected - 1);
  else if (e.key === 'Enter' && selected >= 0) {
    const tr = document.querySelectorAll('#history-rows tr[data-run-id]')[selected];
    if (tr) location.hash = `#/runs/${tr.dataset.runId}`;
  }
}

/** Wires the filter form and pager. */
export function initHistory() {
  const form = document.getElementById('history-filters');
  loadFromUrl();
  const restart = () => { cursors = [null]; total = null; saveToUrl(); loadHistory(); };
  document.addEventListener('keydown', onKey);
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
  // Dates are typed in the zone the page shows.
  const zoneLabels = () => {
    for (const label of form.querySelectorAll('.date-field')) {
      label.firstChild.textContent = `${label.querySelector('input').name === 'since' ? 'From' : 'To'}${zoneMode() === 'utc' ? ' (UTC)' : ''} `;
    }
  };
  document.addEventListener('jobmgr:timezone', zoneLabels);
  zoneLabels();
  for (const action of Object.keys(BULK)) {
    document.getElementById(`bulk-${action}`).addEventListener('click', () => bulk(action));
  }
  document.getElementById('history-prev').addEventListener('click', () => {
    if (cursors.length > 1) { cursors.pop(); loadHistory(); }
  });
  document.getElementById('history-next').addEventListener('click', () => {
    if (nextCursor !== null) { cursors.push(nextCursor); loadHistory(); }
  });
}
