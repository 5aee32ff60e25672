// Entry point: wires the panels to the WebSocket and the router.
// The hash route #/runs/ID opens a run's details; anything else closes them.

import { connect, on } from './live.js';
import { initWorker, loadWorker, setWorker } from './worker.js';
import { loadStats, setStats } from './stats.js';
import { initActive, loadActive, setActive, updateActive } from './active.js';
import { initHistory, loadHistory, setHistoryJobTypes, updateHistory } from './history.js';
import { initDetails, openDetails, closeDetails, updateDetails, redrawDetails } from './details.js';
import { initNewJob, loadJobTypes } from './newjob.js';
import { loadErrors, noteRun } from './errors.js';
import { initStalled } from './stalled.js';
import { initZoneSwitch } from './tz.js';
import { initConfirm } from './confirm.js';
import { loadNotifications, noteNotifyRun } from './notifications.js';
import { initSchedules, loadSchedules, noteScheduleRun, reloadSchedulesSoon } from './schedules.js';
import { initAudit, loadAudit, auditActivity } from './audit.js';
import { initCharts, loadInsight, noteInsightRun } from './charts.js';

function route() {
  const m = /^#\/runs\/(\d+)$/.exec(location.hash);
  if (m) openDetails(Number(m[1]));
  else closeDetails();
}

/**
 * The top bar is sticky and wraps on a phone: the page scrolls a jumped-to
 * section (or a row moved to with j/k) below it, not under it.
 */
function keepBelowTopbar() {
  const bar = document.querySelector('.topbar');
  if (!bar) return;
  const set = () => document.documentElement.style.setProperty('--topbar-h', `${bar.offsetHeight}px`);
  new ResizeObserver(set).observe(bar);
  set();
}

function refetchAll() {
  loadWorker();
  loadStats();
  loadActive();
  loadHistory();
  loadErrors();
  loadSchedules();
  loadNotifications();
  loadAudit();
  loadInsight();
}

function init() {
  initWorker();
  initActive();
  initHistory();
  initDetails();
  initNewJob();
  initStalled();
  initZoneSwitch();
  initConfirm();
  initSchedules();
  initAudit();
  initCharts();
  keepBelowTopbar();
  // Every time on the page follows the zone switch.
  document.addEventListener('jobmgr:timezone', () => { refetchAll(); redrawDetails(); });

  on('snapshot', (msg) => {
    if (msg.worker !== undefined) setWorker(msg.worker);
    if (msg.stats) setStats(msg.stats);
    if (Array.isArray(msg.active)) setActive(msg.active);
  });
  on('worker', (msg) => setWorker(msg.worker));
  on('stats', (msg) => setStats(msg.stats));
  on('run', (msg) => {
    if (!msg.run) return;
    updateActive(msg.run);
    updateHistory(msg.run);
    updateDetails(msg.run);
    noteRun(msg.run);
    noteScheduleRun(msg.run);
    noteNotifyRun(msg.run);
    noteInsightRun(msg.run);
    auditActivity();
  });
  on('schedules', () => { reloadSchedulesSoon(); auditActivity(); });
  on('resync', refetchAll);
  // After a reconnect, events may have been missed: refresh what the
  // snapshot does not carry.
  let connectedBefore = false;
  on('open', () => {
    if (connectedBefore) { loadHistory(); loadErrors(); }
    connectedBefore = true;
  });

  refetchAll();
  loadJobTypes().then(setHistoryJobTypes);
  connect();
  setInterval(loadErrors, 60000);
  setInterval(loadWorker, 30000);
  // Deliveries are settled by the worker's own connection: no live event.
  setInterval(loadNotifications, 10000);

  window.addEventListener('hashchange', route);
  route();
}

init();
