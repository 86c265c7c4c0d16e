// Non-blocking messages in the corner. Text only: messages often quote file or class names.
import { h } from './dom.js';
import { icon } from './icons.js';
import { ApiError } from './bridge.js';

const MAX = 4;
export const errors = []; // every error shown, newest last (tests read window.fieldmark.errors)
let host = null;

function region() {
  if (!host) {
    host = h('div', { class: 'toasts', role: 'region', 'aria-label': 'Notifications' });
    document.body.appendChild(host);
  }
  return host;
}

/** toast('Saved', {kind: 'info'|'success'|'error', timeout: ms}) */
export function toast(message, { kind = 'info', timeout = kind === 'error' ? 8000 : 3500, detail } = {}) {
  const close = () => {
    el.classList.add('leaving');
    setTimeout(() => el.remove(), 160);
  };
  const el = h('div', { class: ['toast', `toast-${kind}`], role: kind === 'error' ? 'alert' : 'status' },
    icon(kind === 'error' ? 'alert' : kind === 'success' ? 'check' : 'info', 'toast-icon'),
    h('div', { class: 'toast-body' }, h('div', { class: 'toast-message' }, message),
      detail ? h('div', { class: 'toast-detail' }, detail) : null),
    h('button', { class: 'icon-btn toast-close', title: 'Dismiss', 'aria-label': 'Dismiss', onclick: close }, icon('x')));
  const r = region();
  r.appendChild(el);
  while (r.children.length > MAX) r.firstElementChild.remove();
  if (timeout) setTimeout(close, timeout);
  return close;
}

/** Show an error for a person. Bugs (not ApiError) also go to the console so tests catch them. */
export function reportError(err, context = '') {
  if (err instanceof ApiError) {
    errors.push({ code: err.code, message: err.message, context });
    toast(err.message, { kind: 'error' });
    return;
  }
  errors.push({ code: 'bug', message: String(err && err.message || err), context });
  console.error(context ? `${context}:` : 'error:', err);
  toast(`Something went wrong${context ? ` while ${context}` : ''}: ${err && err.message || err}`, { kind: 'error' });
}

/** Wrap an async action so a failure becomes a toast instead of an unhandled rejection. */
export function guard(fn, context = '') {
  return (...args) => Promise.resolve().then(() => fn(...args)).catch((err) => reportError(err, context));
}
