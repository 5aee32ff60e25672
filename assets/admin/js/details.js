// Run details at #/runs/ID, shown in a modal: parameters, metadata and the
// re-run chain, timings, stage timeline, outcome chart, the error with its
// context, and the live log viewer. Updates live from "run" events.

import { api, ApiError } from './api.js';
import {
  h, replace, statusBadge, runLink, timeEl, duration, runDuration, parseTime,
  prettyJson, asObject, num, progressText, roughDuration, unusualFlags,
} from './format.js';
import { sample, etaText, progressBar } from './progress.js';
import { cancelButton } from './active.js';
import { rerunButton } from './history.js';
import { createLogViewer } from './logs.js';

let current = null; // { id, detail, viewer }
let refetchTimer = null;
let ticker = 0;

function dialog() {
  return document.getElementById('details');
}

/** Opens the details of run `id` (called by the router). */
export async function openDetails(id) {
  const dlg = dialog();
  if (current && current.id === id) return;
  closeViewer();
  current = { id, detail: null, viewer: null };
  replace(document.getElementById('details-title'), `Run #${id}`);
  replace(document.getElementById('details-body'), h('p', { class: 'muted', text: 'Loading…' }));
  if (!dlg.open) dlg.showModal();
  clearInterval(ticker);
  ticker = setInterval(tick, 1000);
  await fetchDetail(id);
}

/**
 * Once a second while a run is RUNNING: its duration and the current
 * stage's time so far grow with the clock, not only when an event comes.
 */
function tick() {
  if (!current || !current.detail || current.detail.run.status !== 'RUNNING') return;
  const t = document.getElementById('details-timings');
  const st = document.getElementById('details-stages');
  const rate = document.getElementById('details-rate');
  if (t) replace(t, timings(current.detail.run));
  if (st) replace(st, stageTimeline(current.detail));
  if (rate) rate.textContent = etaText(current.detail.run);
}

/** Draws the open run again, its log included (the time zone changed). */
export function redrawDetails() {
  if (!current || !current.detail) return;
  closeViewer();
  current.viewer = null;
  render();
}

async function fetchDetail(id) {
  let detail;
  try {
    detail = await api(`/api/jobs/${id}`);
  } catch (e) {
    if (!current || current.id !== id) return;
    const msg = e instanceof ApiError && e.status === 404 ? `Run #${id} does not exist.` : e.message;
    replace(document.getElementById('details-body'), h('p', { class: 'error-box', role: 'alert', text: msg }));
    return;
  }
  if (!current || current.id !== id) return;
  current.detail = detail;
  sample(detail.run);
  render();
}

/** Closes the modal (called by the router when the hash changes). */
export function closeDetails() {
  clearInterval(ticker);
  closeViewer();
  current = null;
  const dlg = dialog();
  if (dlg.open) dlg.close();
}

function closeViewer() {
  if (current && current.viewer) current.viewer.destroy();
}

/** Applies a run change if it is the one shown (or part of its chain). */
export function updateDetails(run) {
  if (!current || !current.detail) return;
  const d = current.detail;
  if (run.id === current.id) {
    const stageChanged = run.currentStage !== d.run.currentStage;
    const statusChanged = run.status !== d.run.status;
    d.run = run;
    sample(run);
    // A finished run changes timings and the timeline too: redraw it all.
    if (statusChanged) render();
    else renderSummary();
    if (stageChanged || statusChanged) scheduleRefetch();
  } else if (run.rerunOfId === current.id || (d.rerunOf && d.rerunOf.id === run.id)) {
    scheduleRefetch();
  }
}

function scheduleRefetch() {
  clearTimeout(refetchTimer);
  const id = current.id;
  refetchTimer = setTimeout(() => { if (current && current.id === id) fetchDetail(id); }, 300);
}

function section(title, ...content) {
  return h('section', { class: 'detail-section' }, h('h3', { text: title }), content);
}

function kvList(entries) {
  return h('dl', { class: 'kvs' }, entries.filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => h('div', { class: 'kv' }, h('dt', { text: k }), h('dd', {}, v))));
}

function render() {
  const d = current.detail;
  const run = d.run;
  replace(document.getElementById('details-title'), `${run.jobName} `, h('span', { class: 'muted', text: `#${run.id}` }));
  if (!current.viewer) current.viewer = createLogViewer(run.id);
  const params = asObject(run.parameters);
  const paramEntries = Object.entries(params);
  replace(document.getElementById('details-body'),
    h('div', { id: 'details-summary' }),
    h('div', { class: 'detail-grid' },
      section('Parameters', paramEntries.length
        ? kvList(paramEntries.map(([k, v]) => [k, h('code', { text: typeof v === 'string' ? v : JSON.stringify(v) })]))
        : h('p', { class: 'muted', text: 'No parameters.' })),
      section('Metadata', metadata(d)),
      section('Timings', h('div', { id: 'details-timings' }, timings(run))),
      section('Stages', h('div', { id: 'details-stages' }, stageTimeline(d)))),
    section('Log', current.viewer.element));
  renderSummary();
}

/** The top part that changes with every progress update. */
function renderSummary() {
  const box = document.getElementById('details-summary');
  if (!box) return;
  const run = current.detail.run;
  const active = ['RUNNING', 'QUEUED', 'SCHEDULED'].includes(run.status);
  const actions = h('div', { class: 'btn-row' }, active ? cancelButton(run) : rerunButton(run));
  const progress = run.status === 'RUNNING' ? h('div', { class: 'detail-progress' },
    progressBar(run),
    h('div', { class: 'run-card-foot' },
      h('span', { class: 'progress-text', id: 'details-progress', text: progressText(run) }),
      h('span', { class: 'rate muted', id: 'details-rate', text: etaText(run) }))) : null;
  const due = run.status === 'SCHEDULED'
    ? h('p', { class: 'muted', id: 'details-due', text: progressText(run) }) : null;
  const finishedText = !['RUNNING', 'QUEUED', 'SCHEDULED'].includes(run.status) && run.entitiesProcessed
    ? h('p', { class: 'muted', text: progressText({ ...run, progressText: null }) }) : null;
  replace(box,
    h('div', { class: 'detail-head' }, h('span', { id: 'details-status' }, statusBadge(run.status)),
      run.cancelRequestedAt && active ? h('span', { class: 'muted', text: 'cancellation requested' }) : null,
      actions),
    progress,
    due,
    finishedText,
    errorBox(run),
    unusualBox(run),
    outcomeChart(run));
}

/** What is far from the usual for the run's type, each in words. */
function unusualBox(run) {
  const flags = unusualFlags(run);
  if (!flags.length) return null;
  const n = run.usual ? run.usual.runs : 0;
  return h('div', { class: 'unusual-box', id: 'details-unusual', role: 'note' },
    h('strong', { text: `Unusual for ${run.jobName}` }),
    h('span', { class: 'muted', text: ` (against the last ${n} completed runs)` }),
    h('ul', {}, flags.map((f) => h('li', { text: f.text }))));
}

function errorBox(run) {
  if (!run.error) return null;
  const ctx = run.errorContext;
  const hasCtx = ctx && !(typeof ctx === 'object' && !Object.keys(ctx).length);
  return h('div', { class: 'error-box', role: 'alert' },
    h('strong', { text: 'Error: ' }), h('span', { class: 'error-message', text: run.error }),
    hasCtx ? h('pre', { class: 'error-context', text: prettyJson(ctx) }) : null);
}

function outcomeKind(key) {
  const k = key.toLowerCase();
  if (/(error|fail)/.test(k)) return 'bad';
  if (/(warn|skip)/.test(k)) return 'warn';
  return 'ok';
}

/** The outcome summary as CSS bars, errors and warnings highlighted. */
function outcomeChart(run) {
  const outcome = Object.entries(asObject(run.outcomeSummary))
    .filter(([, v]) => typeof v === 'number');
  if (!outcome.length) return null;
  const max = Math.max(1, ...outcome.map(([, v]) => v));
  return h('div', { class: 'outcome' }, h('h3', { text: 'Outcome' }),
    h('ul', { class: 'outcome-bars' }, outcome.map(([key, value]) => {
      const fill = h('span', { class: 'outcome-fill' });
      fill.style.width = `${Math.max(value > 0 ? 2 : 0, (value / max) * 100)}%`;
      return h('li', { class: `outcome-row outcome-${outcomeKind(key)}` },
        h('span', { class: 'outcome-key', text: key }),
        h('span', { class: 'outcome-track' }, fill),
        h('span', { class: 'outcome-value', text: num(value) }));
    })));
}

function metadata(d) {
  const run = d.run;
  const meta = asObject(run.metadata);
  const entries = [
    ['Trigger', run.triggeredBy],
    ['Attempt', String(run.attempt)],
    ['Priority', String(run.priority)],
    ['Worker', run.workerId === null || run.workerId === undefined ? 'not claimed yet' : `#${run.workerId}`],
  ];
  // Runs record their worker's id; the details carry that worker's row.
  const w = d.worker;
  if (w) {
    entries.push(['Worker host', `${w.hostname} (pid ${w.pid})`], ['Worker version', w.version]);
  }
  for (const [k, v] of Object.entries(meta)) {
    entries.push([humanize(k), typeof v === 'string' ? v : JSON.stringify(v)]);
  }
  if (d.rerunOf) {
    entries.push(['Re-run of', h('span', {}, runLink(d.rerunOf.id), ' ', statusBadge(d.rerunOf.status))]);
  } else if (run.rerunOfId) entries.push(['Re-run of', runLink(run.rerunOfId)]);
  if (d.reruns && d.reruns.length) {
    entries.push(['Re-runs', h('span', { class: 'chain' }, d.reruns.map((r) =>
      h('span', { class: 'chain-item' }, runLink(r.id), ' ', statusBadge(r.status))))]);
  }
  // Dependencies, both ways, each linked with its status.
  for (const [label, list] of [['Waits for', d.after], ['Waited for by', d.waitedForBy]]) {
    if (list && list.length) {
      entries.push([label, h('span', { class: 'chain' }, list.map((r) =>
        h('span', { class: 'chain-item' }, runLink(r.id), ' ', statusBadge(r.status))))]);
    }
  }
  if (d.attempts && d.attempts.length) {
    // Each earlier attempt of a retried run: when it ended and why.
    entries.push(['Earlier attempts', h('ol', { class: 'attempts', id: 'details-attempts' },
      d.attempts.map((a) => h('li', {}, timeEl(a.finishedAt), ' ',
        h('span', { text: a.error || 'failed' }))))]);
  }
  return kvList(entries);
}

/** "enqueuedByVersion" → "Enqueued by version". */
function humanize(key) {
  const words = key.replace(/_/g, ' ').replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1).replace(/\bpid\b/, 'PID');
}

function timings(run) {
  const created = parseTime(run.createdAt);
  const started = parseTime(run.startedAt);
  return kvList([
    ['Created', timeEl(run.createdAt)],
    ['Started', run.startedAt ? timeEl(run.startedAt) : 'not yet'],
    ['Finished', run.finishedAt ? timeEl(run.finishedAt) : null],
    ['Waited in queue', created !== null && started !== null ? duration(started - created) : null],
    ['Duration', run.startedAt ? duration(runDuration(run)) : null],
    ['Usually', run.usual && run.usual.durationMs
      ? `about ${roughDuration(run.usual.durationMs)} (median of the last ${run.usual.runs} completed)` : null],
    ['Cancel requested', run.cancelRequestedAt ? timeEl(run.cancelRequestedAt) : null],
  ]);
}

function stageTimeline(d) {
  const stages = d.stages || [];
  if (!stages.length) return h('p', { class: 'muted', text: 'No stages recorded.' });
  const end = parseTime(d.run.finishedAt) ?? Date.now();
  return h('ol', { class: 'timeline' }, stages.map((s, i) => {
    const at = parseTime(s.at);
    const next = i + 1 < stages.length ? parseTime(stages[i + 1].at) : end;
    const last = i + 1 === stages.length;
    const running = last && d.run.status === 'RUNNING';
    return h('li', { class: running ? 'timeline-item current' : 'timeline-item' },
      h('span', { class: 'timeline-stage', text: s.stage }),
      h('span', { class: 'muted' }, timeEl(s.at),
        ` · ${at === null ? '' : duration(next - at)}${running ? ' so far' : ''}`));
  }));
}

/** Wires the close button and Escape. */
export function initDetails() {
  const dlg = dialog();
  document.getElementById('details-close').addEventListener('click', () => { location.hash = '#/'; });
  dlg.addEventListener('cancel', (e) => { e.preventDefault(); location.hash = '#/'; });
  dlg.addEventListener('click', (e) => { if (e.target === dlg) location.hash = '#/'; });
}
