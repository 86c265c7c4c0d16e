// A dropdown menu anchored to a button: arrow keys move, Enter picks, Esc or a click outside
// closes. Items are rebuilt on every open so they always show the current state.
import { h, fill } from './dom.js';

/**
 * @param {HTMLButtonElement} button
 * @param {() => Array<{label, hint?, disabled?, onselect?} | 'separator' | {heading}>} items
 */
export function dropdown(button, items, { align = 'left', className = '' } = {}) {
  const menu = h('div', { class: ['menu', className], role: 'menu', hidden: true, tabindex: -1 });
  button.setAttribute('aria-haspopup', 'menu');
  button.setAttribute('aria-expanded', 'false');
  document.body.appendChild(menu);

  const entries = () => [...menu.querySelectorAll('[role="menuitem"]:not([disabled])')];
  const close = (refocus = true) => {
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    document.removeEventListener('mousedown', outside, true);
    if (refocus) button.focus();
  };
  const outside = (e) => {
    if (!menu.contains(e.target) && !button.contains(e.target)) close(false);
  };
  const open = () => {
    fill(menu, items().map((item) => {
      if (item === 'separator') return h('div', { class: 'menu-sep', role: 'separator' });
      if (item.heading) return h('div', { class: 'menu-heading' }, item.heading);
      return h('button', { class: 'menu-item', role: 'menuitem', disabled: !!item.disabled, title: item.title || null,
        onclick: () => { close(); if (item.onselect) item.onselect(); } },
      h('span', { class: 'menu-label' }, item.label),
      item.hint ? h('span', { class: 'menu-hint' }, item.hint) : null);
    }));
    const r = button.getBoundingClientRect();
    menu.hidden = false;
    const left = align === 'right' ? r.right - menu.offsetWidth : r.left;
    menu.style.left = `${Math.max(8, Math.min(left, window.innerWidth - menu.offsetWidth - 8))}px`;
    menu.style.top = `${r.bottom + 4}px`;
    button.setAttribute('aria-expanded', 'true');
    document.addEventListener('mousedown', outside, true);
    const first = entries()[0];
    (first || menu).focus();
  };

  button.addEventListener('click', () => (menu.hidden ? open() : close()));
  menu.addEventListener('keydown', (e) => {
    const list = entries();
    const i = list.indexOf(document.activeElement);
    if (e.key === 'Escape' || e.key === 'Tab') { e.preventDefault(); e.stopPropagation(); close(); }
    else if (e.key === 'ArrowDown') { e.preventDefault(); e.stopPropagation(); (list[i + 1] || list[0])?.focus(); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); e.stopPropagation(); (list[i - 1] || list[list.length - 1])?.focus(); }
    else if (e.key !== 'Enter' && e.key !== ' ') e.stopPropagation(); // no app shortcuts while a menu is open
  });
  window.addEventListener('blur', () => close(false));
  return { open, close };
}
