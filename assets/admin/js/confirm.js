// Confirmations in a dialog of the page's own: it says what will happen,
// names what it affects, and waits for a yes. Escape, a click outside or
// the "keep" button say no. Every string is inserted as text.

import { replace } from './format.js';

let pending = null; // the resolve function of the open confirmation

function finish(answer) {
  const dlg = document.getElementById('confirm');
  if (dlg.open) dlg.close();
  const resolve = pending;
  pending = null;
  if (resolve) resolve(answer);
}

/**
 * Asks before an action; resolves true on yes. `message` may be a string or
 * nodes; `yes` names the action ("Cancel run"), `no` the way back.
 */
export function confirmAction({ title, message, yes, no = 'Keep' }) {
  const dlg = document.getElementById('confirm');
  if (pending) finish(false);
  replace(document.getElementById('confirm-title'), title);
  replace(document.getElementById('confirm-message'), message);
  document.getElementById('confirm-yes').textContent = yes;
  document.getElementById('confirm-no').textContent = no;
  return new Promise((resolve) => {
    pending = resolve;
    dlg.showModal();
    document.getElementById('confirm-no').focus();
  });
}

/** Wires the dialog's buttons, Escape and the backdrop. */
export function initConfirm() {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-yes').addEventListener('click', () => finish(true));
  document.getElementById('confirm-no').addEventListener('click', () => finish(false));
  dlg.addEventListener('cancel', (e) => { e.preventDefault(); finish(false); });
  dlg.addEventListener('click', (e) => { if (e.target === dlg) finish(false); });
}
