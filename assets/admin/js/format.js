// Formatting helpers and the one DOM builder every panel uses.
// Dates and clocks follow the zone chosen in tz.js.
// h() only ever inserts strings as text nodes: data from jobs, parameters,
// errors and logs can never become markup.

import { zoneMode } from './tz.js';

/**
 * Creates an element. `attrs` keys: "class", "text", "on<event>" handlers,
 * "dataset" (object), boolean-ish properties, anything else as attribute.
 * Children may be nodes, strings (inserted as text), null or arrays.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (['value', 'checked', 'disabled', 'selected', 'required'].includes(key)) {
      el[key] = value;
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/**
 * Help text with `backticks` shown as code: the parts between backticks
 * become <code> elements, all of it inserted as text.
 */
export function withCode(text) {
  return String(text ?? '').split('`').map((part, i) => (i % 2 ? h('code', { text: part }) : part))
    .filter((part) => part !== '');
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const numberFormat = new Intl.NumberFormat('en-US');

/** 1250 → "1,250". */
export function num(n) {
  return n === null || n === undefined ? '—' : numberFormat.format(n);
}

/** Milliseconds → "3h 12m", "4m 05s", "12.3s", "850ms". */
export function duration(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

/** Parses an API timestamp; null when absent. */
export function parseTime(ts) {
  if (!ts) return null;
  const t = Date.parse(ts);
  return isNaN(t) ? null : t;
}

/** The calendar and clock fields of `t` in the chosen zone (tz.js). */
function fields(t) {
  const d = new Date(t);
  return zoneMode() === 'utc'
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(),
      d.getUTCSeconds(), d.getUTCMilliseconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(),
      d.getSeconds(), d.getMilliseconds()];
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** "2026-11-28 12:00:01" in the chosen zone. */
export function dateTime(ts) {
  const t = parseTime(ts);
  if (t === null) return '—';
  const [y, mo, d, hr, mi, se] = fields(t);
  return `${y}-${pad(mo)}-${pad(d)} ${pad(hr)}:${pad(mi)}:${pad(se)}`;
}

/** "12:00:01.123" in the chosen zone, for log lines. */
export function clock(ts) {
  const t = parseTime(ts);
  if (t === null) return '';
  const [, , , hr, mi, se, ms] = fields(t);
  return `${pad(hr)}:${pad(mi)}:${pad(se)}.${pad(ms, 3)}`;
}

/** The exact instant in UTC, for a tooltip: "2026-11-28T11:00:01.123Z". */
export function utcText(ts) {
  const t = parseTime(ts);
  return t === null ? '' : new Date(t).toISOString();
}

/**
 * A <time> element: `text` (default: the date and time in the chosen zone),
 * the machine-readable instant, and the UTC instant on hover.
 */
export function timeEl(ts, text, attrs = {}) {
  if (parseTime(ts) === null) return text ?? '—';
  return h('time', { ...attrs, datetime: ts, title: `${utcText(ts)} (UTC)`, text: text ?? dateTime(ts) });
}

/** "5m ago" relative to now; "in 5m" for a time still to come. */
export function ago(ts) {
  const t = parseTime(ts);
  if (t === null) return '—';
  const d = Date.now() - t;
  return d < 0 ? `in ${duration(-d)}` : `${duration(d)} ago`;
}

/** Run duration: finished - started, or running time so far. */
export function runDuration(run) {
  const start = parseTime(run.startedAt);
  if (start === null) return null;
  const end = parseTime(run.finishedAt) ?? Date.now();
  return end - start;
}

/** Percentage 0..100 for a run with a known total, else null. */
export function percent(run) {
  const total = run.entitiesTotal;
  if (total === null || total === undefined) return null;
  if (total <= 0) return run.status === 'COMPLETED' ? 100 : 0;
  return Math.max(0, Math.min(100, Math.floor((run.entitiesProcessed / total) * 100)));
}

/**
 * "Processing users (1,250 / 5,000) 25%" for a known total,
 * "Scanning (1,250 processed)" for an unknown one.
 */
export function progressText(run) {
  // A run waiting to be retried: "Attempt 2 of 5, next in 40 s", phrased by the server.
  if (run.status === 'SCHEDULED' && run.attempt > 1 && run.progressText) return run.progressText;
  // In the page's zone, not the server's UTC text.
  if (run.status === 'SCHEDULED') return run.runAt ? `Scheduled for ${dateTime(run.runAt)}` : 'Scheduled';
  const pct = percent(run);
  if (typeof run.progressText === 'string' && run.progressText) {
    // The server phrases progress; we only make sure the percentage shows.
    const text = run.progressText;
    return pct !== null && !text.trim().endsWith('%') ? `${text} ${pct}%` : text;
  }
  // A queued run has not started (a re-queued one keeps its last attempt's
  // stage and counts, which are not this attempt's).
  if (run.status === 'QUEUED') return run.attempt > 1 ? `Queued for attempt ${run.attempt}` : 'Queued';
  const stage = run.currentStage || 'Running';
  const processed = run.entitiesProcessed || 0;
  if (pct !== null) {
    const unit = run.entitiesUnit ? ` ${run.entitiesUnit}` : '';
    const label = unit && !stage.toLowerCase().includes(unit.trim().toLowerCase())
      ? `${stage}${unit}` : stage;
    return `${label} (${num(processed)} / ${num(run.entitiesTotal)}) ${pct}%`;
  }
  if (processed > 0 || run.status === 'RUNNING') return `${stage} (${num(processed)} processed)`;
  return stage;
}

/** "1 item", "2 items", "1 page": a count with its unit, singular for one. */
export function counted(n, unit) {
  const one = n === 1 && /[^s]s$/.test(unit);
  return `${num(n)} ${one ? unit.slice(0, -1) : unit}`;
}

/** A status pill. */
export function statusBadge(status) {
  return h('span', { class: `status status-${String(status).toLowerCase()}`, text: status });
}

/** Pretty JSON for display in a <pre>; tolerates strings holding JSON. */
export function prettyJson(value) {
  let v = value;
  if (typeof v === 'string') {
    try { v = JSON.parse(v); } catch { return v; }
  }
  return JSON.stringify(v, null, 2);
}

/** Parses a JSON object that may arrive as a string; {} on failure. */
export function asObject(value) {
  if (value && typeof value === 'object') return value;
  if (typeof value === 'string' && value) {
    try {
      const v = JSON.parse(value);
      return v && typeof v === 'object' ? v : {};
    } catch { return {}; }
  }
  return {};
}

/** Link to a run's details page. */
export function runLink(id, label) {
  return h('a', { href: `#/runs/${id}`, class: 'run-link', text: label ?? `#${id}` });
}

/** "45 s", "2 min", "3 h": a duration as a person says it roughly (the server words it the same). */
export function roughDuration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 1) return `${Math.max(0, Math.round(ms))} ms`;
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** The unusual-outcome flags the server found for a finished run ("0 inserts; usually about 5,000"). */
export function unusualFlags(run) {
  return Array.isArray(run.unusual) ? run.unusual.filter((f) => f && f.text) : [];
}
