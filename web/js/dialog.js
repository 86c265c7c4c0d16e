// In-page modal dialogs (never window.confirm, which blocks the page and the bridge).
import { h } from './dom.js';
import { icon } from './icons.js';

let openCount = 0;
export function dialogOpen() {
  return openCount > 0;
}

/** Low level: show `body` in a modal; `build(close)` returns {body, actions}. Resolves on close. */
export function modal({ title, className = '', build, initialFocus }) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    let result = null;
    const close = (value) => {
      result = value;
      openCount -= 1;
      backdrop.remove();
      if (previous instanceof HTMLElement && previous.isConnected) previous.focus();
      resolve(result);
    };
    const { body, actions } = build(close);
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const panel = h('div', { class: ['dialog', className], role: 'dialog', tabindex: -1, 'aria-modal': 'true', 'aria-labelledby': titleId },
      h('div', { class: 'dialog-head' },
        h('h2', { class: 'dialog-title', id: titleId }, title),
        h('button', { class: 'icon-btn', title: 'Close (Esc)', 'aria-label': 'Close', onclick: () => close(null) }, icon('x'))),
      h('div', { class: 'dialog-body' }, body),
      actions && actions.length ? h('div', { class: 'dialog-actions' }, actions) : null);
    const backdrop = h('div', { class: 'backdrop', onmousedown: (e) => { if (e.target === backdrop) close(null); } }, panel);
    panel.addEventListener('keydown', (e) => {
      e.stopPropagation(); // keep app shortcuts away while a dialog is open
      if (e.key === 'Escape') { e.preventDefault(); close(null); }
      if (e.key === 'Tab') trapFocus(panel, e);
    });
    openCount += 1;
    document.body.appendChild(backdrop);
    const target = (initialFocus && initialFocus()) || panel.querySelector('[data-autofocus]') || panel;
    if (target) target.focus();
  });
}

function trapFocus(panel, e) {
  const items = [...panel.querySelectorAll('button, input, select, textarea, [tabindex]:not([tabindex="-1"])')]
    .filter((el) => !el.disabled && el.offsetParent !== null);
  if (!items.length) return;
  const first = items[0];
  const last = items[items.length - 1];
  if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
  else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
}

/** confirmDialog({title, message, confirmLabel, danger}) -> Promise<boolean> */
export async function confirmDialog({ title, message, confirmLabel = 'OK', danger = false }) {
  const answer = await modal({
    title,
    className: 'dialog-confirm',
    build: (close) => ({
      body: h('p', { class: 'dialog-text' }, message),
      actions: [
        h('button', { class: 'btn', onclick: () => close(false) }, 'Cancel'),
        h('button', { class: ['btn', danger ? 'btn-danger' : 'btn-primary'], 'data-autofocus': true,
          onclick: () => close(true) }, confirmLabel),
      ],
    }),
  });
  return answer === true;
}

/** chooseDialog({title, message, options: [{value, label, color}], confirmLabel}) -> value or null */
export function chooseDialog({ title, message, options, confirmLabel = 'OK', danger = false }) {
  return modal({
    title,
    className: 'dialog-choose',
    build: (close) => {
      let chosen = null;
      const ok = h('button', { class: ['btn', danger ? 'btn-danger' : 'btn-primary'], disabled: true,
        onclick: () => close(chosen) }, confirmLabel);
      const list = h('div', { class: 'choice-list', role: 'radiogroup', 'aria-label': title },
        options.map((opt, i) => {
          const input = h('input', { type: 'radio', name: 'choice', value: String(i), 'data-autofocus': i === 0 || null,
            checked: i === 0, onchange: () => { chosen = opt.value; ok.disabled = false; } });
          if (i === 0) { chosen = opt.value; ok.disabled = false; }
          return h('label', { class: 'choice' }, input,
            opt.color ? h('span', { class: 'swatch', vars: { '--swatch': opt.color } }) : null,
            h('span', { class: 'choice-label' }, opt.label),
            opt.hint ? h('span', { class: 'choice-hint' }, opt.hint) : null);
        }));
      list.addEventListener('dblclick', () => { if (chosen !== null) close(chosen); });
      list.addEventListener('keydown', (e) => { if (e.key === 'Enter' && chosen !== null) { e.preventDefault(); close(chosen); } });
      return {
        body: [message ? h('p', { class: 'dialog-text' }, message) : null, list],
        actions: [h('button', { class: 'btn', onclick: () => close(null) }, 'Cancel'), ok],
      };
    },
  });
}
