// The time zone every time on the page is shown in: the browser's own or
// UTC. The choice is made with the switch in the top bar, remembered in
// this browser, and announced with a "jobmgr:timezone" event so panels
// redraw their times.

const KEY = 'jobmgr.timeZone';

/** 'utc' or 'local'. */
export function zoneMode() {
  try {
    return localStorage.getItem(KEY) === 'utc' ? 'utc' : 'local';
  } catch {
    return 'local';
  }
}

/** The zone times are shown in, by name: "UTC" or e.g. "Europe/Berlin". */
export function zoneName() {
  if (zoneMode() === 'utc') return 'UTC';
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
}

function setZoneMode(mode) {
  try { localStorage.setItem(KEY, mode); } catch { /* private mode: this page only */ }
  document.dispatchEvent(new CustomEvent('jobmgr:timezone'));
}

/** Wires the top bar's switch: it names the zone in use and flips it. */
export function initZoneSwitch() {
  const button = document.getElementById('tz-toggle');
  if (!button) return;
  const show = () => {
    button.textContent = `Times: ${zoneName()}`;
    button.setAttribute('aria-pressed', zoneMode() === 'utc' ? 'true' : 'false');
    button.title = zoneMode() === 'utc'
      ? 'Times are in UTC; click for your local time'
      : 'Times are in your local time; click for UTC';
  };
  button.addEventListener('click', () => setZoneMode(zoneMode() === 'utc' ? 'local' : 'utc'));
  document.addEventListener('jobmgr:timezone', show);
  show();
}
