// The keyboard shortcuts dialog ("?"), built from the same table the handler uses.
import { h } from '../dom.js';
import { modal } from '../dialog.js';
import { SHORTCUTS } from '../keys.js';

export function showShortcuts() {
  const groups = new Map();
  for (const [group, keys, description] of SHORTCUTS) {
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push([keys, description]);
  }
  return modal({
    title: 'Keyboard shortcuts',
    className: 'dialog-wide',
    build: () => ({
      body: h('div', { class: 'shortcut-grid' }, [...groups].map(([group, rows]) => h('section', { class: 'shortcut-group' },
        h('h3', { class: 'shortcut-title' }, group),
        h('dl', { class: 'shortcut-list' }, rows.map(([keys, description]) => [
          h('dt', {}, keys.map((k, i) => [i ? h('span', { class: 'muted' }, ' or ') : null, h('kbd', {}, k)])),
          h('dd', {}, description),
        ]))))),
      actions: [],
    }),
  });
}
