// Rate and ETA, computed in the browser from successive progress updates
// of the same run, and the progress bar element shared by the panels.

import { h, num, duration, percent, progressText, parseTime, roughDuration, runDuration } from './format.js';

const WINDOW_MS = 30000;
const samples = new Map();

/** Records a progress sample of `run` (call on every run update). */
export function sample(run) {
  if (run.status !== 'RUNNING') {
    samples.delete(run.id);
    return;
  }
  const now = Date.now();
  let list = samples.get(run.id);
  if (!list) {
    list = [];
    samples.set(run.id, list);
    // Seed with the start so the first update already yields a rate.
    const started = parseTime(run.startedAt);
    if (started !== null && run.entitiesProcessed > 0 && now - started < WINDOW_MS) {
      list.push({ t: started, n: 0 });
    }
  }
  const lastSample = list[list.length - 1];
  if (lastSample && lastSample.n === run.entitiesProcessed) return;
  if (lastSample && run.entitiesProcessed < lastSample.n) list.length = 0;
  list.push({ t: now, n: run.entitiesProcessed });
  while (list.length > 2 && now - list[0].t > WINDOW_MS) list.shift();
}

/** Items per second over the recent window, or null. */
export function rate(run) {
  const list = samples.get(run.id);
  if (!list || list.length < 2) return null;
  const first = list[0];
  const last = list[list.length - 1];
  const dt = (last.t - first.t) / 1000;
  if (dt <= 0) return null;
  return (last.n - first.n) / dt;
}

/** "12.5 items/s · ETA 3m 10s" (parts omitted when unknown). */
export function rateText(run) {
  const r = rate(run);
  if (r === null) return '';
  const unit = run.entitiesUnit || 'items';
  const shown = r >= 100 ? num(Math.round(r)) : r.toFixed(1);
  let text = `${shown} ${unit}/s`;
  const total = run.entitiesTotal;
  if (total !== null && total !== undefined && r > 0) {
    const left = Math.max(0, total - run.entitiesProcessed);
    text += ` · ETA ${duration((left / r) * 1000)}`;
  }
  return text;
}

/**
 * Before the run reports a total: "usually about 2 min; ~1 min left", from
 * the median duration of its type's recent COMPLETED runs (the server's
 * `usual`). Empty once a total is known, when the rate gives the ETA.
 */
export function usualText(run) {
  const usual = run.usual && run.usual.durationMs;
  const total = run.entitiesTotal;
  if (run.status !== 'RUNNING' || !usual || (total !== null && total !== undefined)) return '';
  const left = usual - (runDuration(run) ?? 0);
  const rest = left >= 1000 ? `~${roughDuration(left)} left` : 'taking longer than usual';
  return `usually about ${roughDuration(usual)}; ${rest}`;
}

/** The rate and ETA of a RUNNING run: from progress with a total, else from its type's usual. */
export function etaText(run) {
  return [rateText(run), usualText(run)].filter(Boolean).join(' · ');
}

/** A progress bar: determinate with a known total, striped otherwise. */
export function progressBar(run) {
  const pct = percent(run);
  const fill = h('div', { class: 'bar-fill' });
  const bar = h('div', {
    class: pct === null ? 'bar bar-indeterminate' : 'bar',
    role: 'progressbar',
    'aria-valuemin': '0',
    'aria-valuemax': '100',
    'aria-valuenow': pct === null ? null : String(pct),
    'aria-label': progressText(run),
  }, fill);
  if (pct !== null) fill.style.width = `${pct}%`;
  return bar;
}
