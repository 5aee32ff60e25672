// The Audit panel: who did what from where (the page, the API or the CLI),
// newest first, filterable by action, source, user, run and time range,
// with every run it names linked. The filters are kept in the URL like the
// history's (`audit-action`, `audit-source`, ...), so a reload or a shared
// link keeps them. Keyset-paged like the history; the first page refreshes
// when runs change (most actions change runs) and each minute. A filter
// the server refuses is explained under the form.

import { api, ApiError, query } from './api.js';
import { zoneMode } from './tz.js';
import { h, replace, timeEl, runLink } from './format.js';
import { readParams, writeParams } from './urlstate.js';

const PAGE = 50;
let cursors = [null];
let nextCursor = null;
let latest = 0;
let reloadTimer = null;

/** A date field's value as an instant, typed in the zone the page shows. */
function instant(v) {
  if (!v) return '';
  const t = new Date(zoneMode() === 'utc' ? `${v}Z` : v);
  return isNaN(t.getTime()) ? '' : t.toISOString();
}

function filters() {
  const form = document.getElementById('audit-filters');
  const val = (name) => form.elements[name].value.trim();
  return {
    action: val('action'), source: val('source'), user: val('user'), run: val('run'),
    since: instant(val('since')), until: instant(val('until')),
  };
}

const FIELDS = ['action', 'source', 'user', 'run', 'since', 'until'];
const urlKey = (name) => `audit-${name}`;

/** Writes the form's values into the URL, under the panel's own keys. */
function saveToUrl() {
  const form = document.getElementById('audit-filters');
  const values = {};
  for (const name of FIELDS) values[urlKey(name)] = form.elements[name].value.trim();
  writeParams(FIELDS.map(urlKey), values);
}

/** Sets the form from the URL. */
function loadFromUrl() {
  const form = document.getElementById('audit-filters');
  const p = readParams();
  for (const name of FIELDS) form.elements[name].value = p.get(urlKey(name)) || '';
}

/** Text with each "run N" in it a link to that run. */
function withRunLinks(text) {
  if (!text) return '';
  const parts = [];
  let last = 0;
  for (const m of String(text).matchAll(/\brun (\d+)\b/g)) {
    parts.push(text.slice(last, m.index), runLink(Number(m[1]), m[0]));
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return parts.filter((p) => p !== '');
}

const FROM = { page: 'Page', api: 'API', cli: 'CLI', web: 'Web' };

function row(e) {
  return h('tr', { dataset: { auditId: String(e.id) } },
    h('td', { class: 'col-at' }, timeEl(e.at)),
    h('td', { class: 'col-action' }, h('code', { text: e.action })),
    h('td', { class: 'col-target' }, withRunLinks(e.target)),
    h('td', { class: 'col-from' }, h('span', { class: 'badge', text: FROM[e.from] || e.from }),
      e.address ? h('span', { class: 'muted', text: ` ${e.address}` }) : null),
    h('td', { class: 'col-user', text: e.user || '' }),
    h('td', { class: 'col-detail' }, withRunLinks(e.detail)));
}

/** Loads the current page of the audit trail. */
export async function loadAudit() {
  const mine = ++latest;
  const error = document.getElementById('audit-error');
  let res;
  try {
    res = await api(`/api/audit${query({ ...filters(), limit: PAGE, cursor: cursors[cursors.length - 1] })}`);
  } catch (e) {
    if (mine !== latest) return;
    error.textContent = e instanceof ApiError && e.status === 400 ? e.message : `Audit: ${e.message}`;
    return;
  }
  if (mine !== latest) return;
  error.textContent = '';
  const body = document.getElementById('audit-rows');
  const entries = res.entries || [];
  if (!entries.length) {
    replace(body, h('tr', {}, h('td', { colspan: '6', class: 'empty', text: 'No audited actions match these filters.' })));
  } else replace(body, entries.map(row));
  nextCursor = res.nextCursor ?? null;
  document.getElementById('audit-page').textContent = `Page ${cursors.length}`;
  document.getElementById('audit-prev').disabled = cursors.length <= 1;
  document.getElementById('audit-next').disabled = nextCursor === null;
}

/**
 * Refreshes the first page a little later, once however many runs change:
 * on a busy host runs change all the time, and a filtered page of a long
 * audit trail is not free to read.
 */
export function auditActivity() {
  if (reloadTimer || cursors.length > 1) return;
  reloadTimer = setTimeout(() => { reloadTimer = null; loadAudit(); }, 3000);
}

/** Wires the filters and the pager. */
export function initAudit() {
  const form = document.getElementById('audit-filters');
  if (!form) return;
  loadFromUrl();
  const restart = () => { cursors = [null]; saveToUrl(); loadAudit(); };
  let typing = null;
  form.addEventListener('submit', (e) => { e.preventDefault(); restart(); });
  form.addEventListener('change', restart);
  form.addEventListener('input', (e) => {
    if (e.target.tagName !== 'INPUT' || e.target.type === 'datetime-local') return;
    clearTimeout(typing);
    typing = setTimeout(restart, 400);
  });
  document.getElementById('audit-reset').addEventListener('click', () => { form.reset(); restart(); });
  document.getElementById('audit-prev').addEventListener('click', () => {
    if (cursors.length > 1) { cursors.pop(); loadAudit(); }
  });
  document.getElementById('audit-next').addEventListener('click', () => {
    if (nextCursor !== null) { cursors.push(nextCursor); loadAudit(); }
  });
  setInterval(() => { if (cursors.length === 1) loadAudit(); }, 60000);
}
