// "Run a job": pick a type, fill a form generated from its declared
// parameters, validate in the browser, enqueue, then open the new run.

import { api, attempt, toast } from './api.js';
import { h, replace, withCode } from './format.js';
import { zoneName } from './tz.js';

let types = [];

/** Stores the job types (GET /api/job-types) and fills the picker. */
export function setJobTypes(list) {
  types = list || [];
  const select = document.getElementById('newjob-type');
  const current = select.value;
  replace(select, h('option', { value: '', text: 'Choose a job type…' }),
    types.map((t) => h('option', {
      value: t.name,
      // A paused type still takes runs; they wait until it is resumed.
      text: t.paused ? `${t.name} (paused, ${t.queued || 0} waiting)` : t.name,
    })));
  select.value = types.some((t) => t.name === current) ? current : '';
}

/** The declared job type called `name`, or null when unknown. */
export function jobType(name) {
  return types.find((t) => t.name === name) || null;
}

/** Fetches the job types; resolves to the list. */
export async function loadJobTypes() {
  const res = await attempt(() => api('/api/job-types'), 'Job types');
  if (res) setJobTypes(res.jobTypes);
  return types;
}

function fieldId(name) {
  return `param-${name}`;
}

function input(param) {
  const id = fieldId(param.name);
  const common = { id, name: param.name, 'aria-describedby': `${id}-help ${id}-error` };
  const def = param.default;
  switch (param.type) {
    case 'boolean':
      return h('input', { ...common, type: 'checkbox', checked: def === true });
    case 'enum':
      return h('select', common,
        param.required && (def === null || def === undefined) ? h('option', { value: '', text: 'Choose…' })
          : (!param.required ? h('option', { value: '', text: '(none)' }) : null),
        (param.choices || []).map((c) => h('option', { value: String(c), text: String(c), selected: c === def })));
    case 'integer':
      return h('input', { ...common, type: 'number', step: '1', inputmode: 'numeric',
        min: param.min ?? null, max: param.max ?? null, value: def ?? '' });
    default:
      return h('input', { ...common, type: 'text', value: def ?? '',
        maxlength: param.maxLength ?? null, spellcheck: 'false',
        placeholder: param.type === 'path' ? '/path/to/file' : null });
  }
}

function field(param) {
  const id = fieldId(param.name);
  const label = h('label', { for: id },
    h('span', { class: 'field-name', text: param.name }),
    param.required ? h('span', { class: 'required', text: ' *', 'aria-hidden': 'true' }) : null,
    h('span', { class: 'field-type muted', text: ` ${param.type}` }));
  const constraints = [];
  if (param.min !== null && param.min !== undefined) constraints.push(`min ${param.min}`);
  if (param.max !== null && param.max !== undefined) constraints.push(`max ${param.max}`);
  if (param.maxLength) constraints.push(`up to ${param.maxLength} characters`);
  const help = [param.help, constraints.length ? `(${constraints.join(', ')})` : ''].filter(Boolean).join(' ');
  return h('div', { class: `field field-${param.type}`, dataset: { param: param.name } },
    label, input(param),
    h('div', { class: 'help muted', id: `${id}-help` }, withCode(help)),
    h('div', { class: 'field-error', id: `${id}-error`, role: 'alert' }));
}

function selected() {
  const name = document.getElementById('newjob-type').value;
  return types.find((t) => t.name === name) || null;
}

function renderForm() {
  const type = selected();
  const box = document.getElementById('newjob-fields');
  document.getElementById('newjob-error').textContent = '';
  document.getElementById('newjob-submit').disabled = !type;
  if (!type) {
    replace(box);
    replace(document.getElementById('newjob-description'));
    return;
  }
  replace(document.getElementById('newjob-description'), withCode(type.description));
  replace(box, (type.parameters || []).length
    ? type.parameters.map(field)
    : h('p', { class: 'muted', text: 'This job type takes no parameters.' }));
}

/** Reads and checks the form; returns { params, errors }. */
function collect(type) {
  const form = document.getElementById('newjob-form');
  const params = {};
  const errors = {};
  for (const p of type.parameters || []) {
    const el = form.elements[p.name];
    if (p.type === 'boolean') {
      params[p.name] = el.checked;
      continue;
    }
    const raw = el.value.trim();
    if (raw === '') {
      if (p.required) errors[p.name] = 'This parameter is required.';
      continue;
    }
    if (p.type === 'integer') {
      if (!/^-?\d+$/.test(raw)) { errors[p.name] = 'Enter a whole number.'; continue; }
      const n = Number(raw);
      if (p.min !== null && p.min !== undefined && n < p.min) { errors[p.name] = `Must be at least ${p.min}.`; continue; }
      if (p.max !== null && p.max !== undefined && n > p.max) { errors[p.name] = `Must be at most ${p.max}.`; continue; }
      params[p.name] = n;
    } else if (p.type === 'enum') {
      if (p.choices && !p.choices.map(String).includes(raw)) { errors[p.name] = 'Choose one of the listed values.'; continue; }
      const choice = (p.choices || []).find((c) => String(c) === raw);
      params[p.name] = choice === undefined ? raw : choice;
    } else {
      if (p.maxLength && raw.length > p.maxLength) { errors[p.name] = `At most ${p.maxLength} characters.`; continue; }
      params[p.name] = raw;
    }
  }
  return { params, errors };
}

function showErrors(errors) {
  document.querySelectorAll('#newjob-fields .field').forEach((f) => {
    const msg = errors[f.dataset.param] || '';
    f.querySelector('.field-error').textContent = msg;
    f.classList.toggle('invalid', Boolean(msg));
  });
}

async function submit(e) {
  e.preventDefault();
  const type = selected();
  if (!type) return;
  const { params, errors } = collect(type);
  showErrors(errors);
  const box = document.getElementById('newjob-error');
  box.textContent = '';
  if (Object.keys(errors).length) {
    box.textContent = 'Please correct the highlighted parameters.';
    return;
  }
  const priority = Number(document.getElementById('newjob-priority').value || 0);
  const at = document.getElementById('newjob-run-at').value;
  const body = { jobName: type.name, parameters: params, priority };
  // The local time with the zone it was typed in; the server does the
  // arithmetic (and refuses a time that a daylight-saving gap skips).
  if (at) body.runAt = `${at} ${zoneName()}`;
  const button = document.getElementById('newjob-submit');
  button.disabled = true;
  try {
    const res = await api('/api/jobs', { body });
    document.getElementById('newjob').close();
    toast(res.run.status === 'SCHEDULED' ? `Run #${res.run.id} scheduled` : `Run #${res.run.id} queued`, 'ok');
    location.hash = `#/runs/${res.run.id}`;
  } catch (err) {
    // Show the server's message, and beside the parameter it names.
    box.textContent = err.message;
    const named = /parameter '([^']+)'/.exec(err.message);
    if (named) showErrors({ [named[1]]: err.message });
  } finally {
    button.disabled = false;
  }
}

/** Opens the dialog, optionally preselecting a type. */
export async function openNewJob() {
  if (!types.length) await loadJobTypes();
  const dlg = document.getElementById('newjob');
  renderForm();
  document.getElementById('newjob-zone').textContent = zoneName();
  if (!dlg.open) dlg.showModal();
}

/** Wires the dialog. */
export function initNewJob() {
  document.getElementById('newjob-open').addEventListener('click', openNewJob);
  document.getElementById('newjob-type').addEventListener('change', renderForm);
  document.getElementById('newjob-form').addEventListener('submit', submit);
  document.getElementById('newjob-cancel').addEventListener('click', () => document.getElementById('newjob').close());
}
