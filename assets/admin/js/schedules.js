// Schedules: each one's cron and zone, next due time, last run, whether it
// is paused, with Run now, Pause/Resume, and (for schedules made here, not
// in jobmgr.toml) Edit and Delete. A row opens its next due times and the
// ledger of decided due times with the reason for every skip. The form
// previews the next due times as the expression is typed. Kept live by
// "schedules" events and by runs a schedule made.

import { api, attempt, query, toast } from './api.js';
import { h, replace, statusBadge, runLink, timeEl, dateTime, ago } from './format.js';
import { confirmAction } from './confirm.js';

let list = [];
let open = null; // name of the schedule whose ledger is shown
let editing = null; // name being edited, or null for a new one
let reloadTimer = null;
let previewTimer = null;
let previewSeq = 0;

/** Reloads the list (and the open ledger) soon, at most once per burst. */
export function reloadSchedulesSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(loadSchedules, 200);
}

/** Fetches every schedule. */
export async function loadSchedules() {
  const res = await attempt(() => api('/api/schedules'), 'Schedules');
  if (!res) return;
  list = res.schedules || [];
  render();
  if (open) loadLedger(open);
}

/** A run event: a run a schedule made changes what the list shows. */
export function noteScheduleRun(run) {
  if (run && run.scheduleName) reloadSchedulesSoon();
}

function stateBadge(s) {
  if (!s.enabled) return h('span', { class: 'badge status-cancelled', text: 'disabled' });
  if (s.paused) return h('span', { class: 'badge status-cancelled', text: 'paused' });
  return h('span', { class: 'badge status-completed', text: 'active' });
}

function nextText(s) {
  if (!s.nextDueAt) return h('span', { class: 'muted', text: '—' });
  return h('span', {}, timeEl(s.nextDueAt, dateTime(s.nextDueAt)),
    h('span', { class: 'muted', text: ` (${ago(s.nextDueAt)})` }));
}

function lastText(s) {
  const r = s.lastRun;
  if (!r) return h('span', { class: 'muted', text: 'never' });
  return h('span', {}, runLink(r.id, `#${r.id}`), ' ', r.status ? statusBadge(r.status) : null);
}

async function act(s, what, button) {
  button.disabled = true;
  const res = await attempt(() => api(`/api/schedules/${encodeURIComponent(s.name)}/${what}`, { method: 'POST' }),
    `${what} ${s.name}`);
  button.disabled = false;
  if (!res) return;
  if (what === 'run') toast(`Run #${res.run.id} of ${s.name} queued`, 'ok');
  else toast(`${s.name} ${what === 'pause' ? 'paused' : 'resumed'}`, 'ok');
  loadSchedules();
}

async function remove(s, button) {
  const ok = await confirmAction({
    title: `Delete schedule ${s.name}?`,
    message: `${s.name} (${s.cron}, ${s.timezone}) will start no more runs. Runs it made and its ledger stay.`,
    yes: 'Delete schedule',
  });
  if (!ok) return;
  button.disabled = true;
  const res = await attempt(() => api(`/api/schedules/${encodeURIComponent(s.name)}`, { method: 'DELETE' }),
    `Delete ${s.name}`);
  if (res) { toast(`${s.name} deleted`, 'ok'); if (open === s.name) open = null; loadSchedules(); }
  else button.disabled = false;
}

function button(text, cls, onClick) {
  const b = h('button', { type: 'button', class: `btn btn-small ${cls}`, text });
  b.addEventListener('click', (e) => { e.stopPropagation(); onClick(b); });
  return b;
}

function row(s) {
  const actions = h('div', { class: 'btn-row' },
    button('Run now', 'btn-run-now', (b) => act(s, 'run', b)),
    s.paused ? button('Resume', 'btn-resume', (b) => act(s, 'resume', b))
      : button('Pause', 'btn-pause', (b) => act(s, 'pause', b)),
    s.source === 'api' ? button('Edit', 'btn-edit', () => openForm(s)) : null,
    s.source === 'api' ? button('Delete', 'btn-danger btn-delete', (b) => remove(s, b)) : null);
  const tr = h('tr', { class: `schedule-row${open === s.name ? ' open' : ''}`, dataset: { schedule: s.name }, tabindex: '0' },
    h('td', {}, h('strong', { text: s.name }),
      s.source === 'file' ? h('span', { class: 'muted', text: ' jobmgr.toml', title: 'Edit it in jobmgr.toml' }) : null),
    h('td', { text: s.job }),
    h('td', {}, h('code', { text: s.cron }), h('span', { class: 'muted', text: ` ${s.timezone}` })),
    h('td', { class: 'schedule-next' }, nextText(s)),
    h('td', { class: 'schedule-last' }, lastText(s)),
    h('td', {}, stateBadge(s)),
    h('td', {}, actions));
  const toggle = () => { open = open === s.name ? null : s.name; render(); if (open) loadLedger(open); };
  tr.addEventListener('click', toggle);
  tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') toggle(); });
  if (open !== s.name) return [tr];
  return [tr, h('tr', { class: 'schedule-ledger-row' },
    h('td', { colspan: '7' }, h('div', { id: 'schedule-ledger', class: 'schedule-ledger' },
      h('p', { class: 'muted', text: 'Loading…' }))))];
}

function render() {
  const body = document.getElementById('schedules-rows');
  const count = document.getElementById('schedules-count');
  if (!body) return;
  if (count) count.textContent = list.length ? String(list.length) : '';
  if (!list.length) {
    replace(body, h('tr', {}, h('td', { colspan: '7', class: 'empty',
      text: 'No schedules. Add one with “New schedule”, or under [schedules.NAME] in jobmgr.toml.' })));
    return;
  }
  replace(body, list.flatMap(row));
}

const OUTCOME_TEXT = {
  ENQUEUED: 'enqueued',
  SKIPPED_MISSED: 'skipped: missed',
  SKIPPED_OVERLAP: 'skipped: overlap',
  SKIPPED_PAUSED: 'skipped: paused',
};

async function loadLedger(name) {
  const res = await attempt(() => api(`/api/schedules/${encodeURIComponent(name)}`), `Schedule ${name}`);
  const box = document.getElementById('schedule-ledger');
  if (!res || !box || open !== name) return;
  const d = res.schedule;
  const times = (d.nextDueTimes || []).map((t) => h('li', {}, timeEl(t.utc, dateTime(t.utc)),
    h('span', { class: 'muted', text: ` · ${t.local} ${d.timezone}` })));
  const ledger = (d.ledger || []).map((t) => h('tr', { class: `tick tick-${t.outcome.toLowerCase()}` },
    h('td', {}, timeEl(t.dueAt, dateTime(t.dueAt))),
    h('td', {}, h('span', { class: `badge ${t.outcome === 'ENQUEUED' ? 'status-completed' : 'status-cancelled'}`,
      text: OUTCOME_TEXT[t.outcome] || t.outcome })),
    h('td', {}, t.runId ? runLink(t.runId, `#${t.runId}`) : ''),
    h('td', { class: 'muted', text: t.reason || '' })));
  replace(box,
    h('div', { class: 'schedule-ledger-cols' },
      h('div', {}, h('h3', { text: 'Next due times' }),
        times.length ? h('ol', { class: 'due-times' }, times) : h('p', { class: 'muted', text: 'None.' })),
      h('div', {}, h('h3', { text: 'Ledger' }),
        ledger.length ? h('table', { class: 'history ledger' },
          h('thead', {}, h('tr', {}, h('th', { text: 'Due' }), h('th', { text: 'Outcome' }),
            h('th', { text: 'Run' }), h('th', { text: 'Reason' }))),
          h('tbody', {}, ledger))
          : h('p', { class: 'muted', text: 'No due time decided yet.' }))));
}

// The form.

function form() {
  return document.getElementById('schedule-form');
}

async function fillJobs(selected) {
  const res = await attempt(() => api('/api/job-types'), 'Job types');
  const select = form().elements.job;
  const types = res ? (res.jobTypes || res.types || res) : [];
  replace(select, (Array.isArray(types) ? types : []).map((t) =>
    h('option', { value: t.name, text: t.name, selected: t.name === selected })));
  if (selected) select.value = selected;
}

/** Opens the form for `s`, or for a new schedule. */
export function openForm(s) {
  editing = s ? s.name : null;
  const f = form();
  f.reset();
  document.getElementById('schedule-form-title').textContent = s ? `Edit ${s.name}` : 'New schedule';
  f.elements.name.value = s ? s.name : '';
  f.elements.name.disabled = Boolean(s);
  f.elements.cron.value = s ? s.cron : '';
  f.elements.timezone.value = s ? s.timezone : (Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC');
  f.elements.parameters.value = s ? JSON.stringify(s.parameters || {}) : '{}';
  f.elements.missed.value = s ? s.missed : 'skip';
  f.elements.maxCatchUp.value = s ? String(s.maxCatchUp) : '10';
  f.elements.overlap.value = s ? s.overlap : 'skip';
  f.elements.enabled.checked = s ? s.enabled : true;
  document.getElementById('schedule-error').textContent = '';
  replace(document.getElementById('schedule-preview'), h('li', { class: 'muted', text: 'Type a cron expression.' }));
  fillJobs(s ? s.job : null);
  const dlg = document.getElementById('schedule-dialog');
  if (!dlg.open) dlg.showModal();
  if (s) preview();
}

/** Shows the next due times of what is typed, or where it is wrong. */
async function preview() {
  const f = form();
  const cron = f.elements.cron.value.trim();
  const box = document.getElementById('schedule-preview');
  const seq = ++previewSeq;
  if (!cron) { replace(box, h('li', { class: 'muted', text: 'Type a cron expression.' })); return; }
  const q = query({ cron, timezone: f.elements.timezone.value.trim() || 'UTC', count: '5' });
  try {
    const res = await api(`/api/schedules/preview${q}`);
    if (seq !== previewSeq) return;
    const times = res.dueTimes || [];
    replace(box, times.length ? times.map((t) => h('li', {}, timeEl(t.utc, dateTime(t.utc)),
      h('span', { class: 'muted', text: ` · ${t.local} ${f.elements.timezone.value.trim() || 'UTC'}` })))
      : h('li', { class: 'muted', text: 'This expression never comes due.' }));
    box.dataset.state = 'ok';
  } catch (err) {
    if (seq !== previewSeq) return;
    replace(box, h('li', { class: 'field-error', text: err.message }));
    box.dataset.state = 'error';
  }
}

function previewSoon() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 250);
}

async function submit(e) {
  e.preventDefault();
  const f = form();
  const error = document.getElementById('schedule-error');
  error.textContent = '';
  let parameters;
  try {
    parameters = JSON.parse(f.elements.parameters.value.trim() || '{}');
  } catch (err) {
    error.textContent = `Parameters must be a JSON object: ${err.message}`;
    return;
  }
  const body = {
    job: f.elements.job.value,
    cron: f.elements.cron.value.trim(),
    timezone: f.elements.timezone.value.trim() || 'UTC',
    parameters,
    missed: f.elements.missed.value,
    maxCatchUp: Number(f.elements.maxCatchUp.value || 10),
    overlap: f.elements.overlap.value,
    enabled: f.elements.enabled.checked,
  };
  if (!editing) body.name = f.elements.name.value.trim();
  const submitButton = document.getElementById('schedule-submit');
  submitButton.disabled = true;
  try {
    const path = editing ? `/api/schedules/${encodeURIComponent(editing)}` : '/api/schedules';
    const res = await api(path, { method: editing ? 'PUT' : 'POST', body });
    document.getElementById('schedule-dialog').close();
    toast(`Schedule ${res.schedule.name} ${editing ? 'saved' : 'created'}`, 'ok');
    loadSchedules();
  } catch (err) {
    error.textContent = err.message;
  } finally {
    submitButton.disabled = false;
  }
}

/** Wires the panel and the form. */
export function initSchedules() {
  document.getElementById('schedule-new').addEventListener('click', () => openForm(null));
  const f = form();
  f.addEventListener('submit', submit);
  f.elements.cron.addEventListener('input', previewSoon);
  f.elements.timezone.addEventListener('input', previewSoon);
  document.getElementById('schedule-cancel').addEventListener('click', () => document.getElementById('schedule-dialog').close());
  // Next due times move on as time passes.
  setInterval(() => { if (list.length) loadSchedules(); }, 30000);
}
