// The Classes tab: the project's classes — pick the active one, add, rename, recolor, merge, delete.
import { h, fill, formatCount, safeColor } from '../dom.js';
import { icon } from '../icons.js';
import { state, listen } from '../state.js';
import { guard } from '../toast.js';
import { confirmDialog, chooseDialog } from '../dialog.js';
import * as E from '../editing.js';

export function mountClasses(root) {
  const list = h('div', { class: 'class-list', role: 'listbox', 'aria-label': 'Classes' });
  const addBtn = h('button', { class: 'icon-btn', title: 'Add a class', 'aria-label': 'Add a class', onclick: () => startAdd() }, icon('plus'));
  const addRow = h('div', { class: 'class-add', hidden: true });
  const footer = h('div', { class: 'panel-foot' });
  const title = h('h2', { class: 'panel-title' }, 'Classes');
  fill(root,
    h('div', { class: 'panel-head' }, title, addBtn),
    h('div', { class: 'class-scroll' }, list, addRow), footer);

  let editing = null; // class id being renamed

  function startAdd() {
    if (!state.project) return;
    const input = h('input', { class: 'input', placeholder: 'New class name', 'aria-label': 'New class name', maxlength: 200, spellcheck: false });
    const commit = guard(async () => {
      const name = input.value.trim();
      if (!name) { addRow.hidden = true; return; }
      input.disabled = true;
      try {
        await E.addClass(name);
        input.value = '';
      } finally {
        input.disabled = false;
        input.focus();
      }
    }, 'adding the class');
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); commit(); }
      if (e.key === 'Escape') { e.preventDefault(); addRow.hidden = true; }
    });
    input.addEventListener('blur', () => { if (!input.value.trim()) setTimeout(() => { addRow.hidden = true; }, 120); });
    fill(addRow, input, h('button', { class: 'btn btn-small btn-primary', onmousedown: (e) => e.preventDefault(), onclick: commit }, 'Add'));
    addRow.hidden = false;
    input.focus();
  }

  function nameEditor(cls) {
    const input = h('input', { class: 'input input-inline', value: cls.name, 'aria-label': `Rename ${cls.name}`, maxlength: 200, spellcheck: false });
    let done = false;
    const finish = guard(async (save) => {
      if (done) return;
      done = true;
      const name = input.value.trim();
      editing = null;
      if (save && name && name !== cls.name) await E.renameClass(cls.id, name);
      else render();
    }, 'renaming the class');
    input.addEventListener('keydown', (e) => {
      e.stopPropagation();
      if (e.key === 'Enter') { e.preventDefault(); finish(true); }
      if (e.key === 'Escape') { e.preventDefault(); finish(false); }
    });
    input.addEventListener('blur', () => finish(true));
    input.addEventListener('click', (e) => e.stopPropagation());
    queueMicrotask(() => { input.focus(); input.select(); });
    return input;
  }

  const remove = guard(async (cls) => {
    const n = cls.count || 0;
    const ok = await confirmDialog({
      title: 'Delete class',
      message: n ? `Delete “${cls.name}”? Its ${formatCount(n)} ${n === 1 ? 'shape stays' : 'shapes stay'}, without a class. You can undo this.`
        : `Delete “${cls.name}”? No shapes use it. You can undo this.`,
      confirmLabel: 'Delete class',
      danger: true,
    });
    if (ok) await E.deleteClass(cls.id);
  }, 'deleting the class');

  const merge = guard(async (cls) => {
    const others = state.classes.filter((c) => c.id !== cls.id);
    const target = await chooseDialog({
      title: `Merge “${cls.name}” into…`,
      message: `Its ${formatCount(cls.count || 0)} shapes move to the class you choose, and “${cls.name}” is removed. You can undo this.`,
      options: others.map((c) => ({ value: c.id, label: c.name, color: safeColor(c.color), hint: formatCount(c.count || 0) })),
      confirmLabel: 'Merge',
    });
    if (target !== null) await E.mergeClasses(cls.id, target);
  }, 'merging the classes');

  const recolor = guard((cls, color) => E.recolorClass(cls.id, color), 'changing the color');
  const choose = guard((id) => E.chooseClass(id), 'choosing the class');

  function row(cls) {
    const active = cls.id === state.activeClassId;
    const swatch = safeColor(cls.color);
    const color = h('input', { type: 'color', class: 'swatch-input', value: swatch.toLowerCase(),
      'aria-label': `Color of ${cls.name}`, title: 'Change color' });
    color.addEventListener('click', (e) => e.stopPropagation());
    color.addEventListener('change', () => recolor(cls, color.value));
    const nameEl = editing === cls.id ? nameEditor(cls) : h('span', { class: 'class-name', title: `${cls.name} — double-click to rename` }, cls.name);
    const el = h('div', {
      class: ['class-row', active && 'active', editing === cls.id && 'editing'], role: 'option', 'aria-selected': String(active), tabindex: active ? 0 : -1,
      dataset: { id: cls.id }, vars: { '--swatch': swatch },
      onclick: () => choose(cls.id),
      ondblclick: (e) => { if (!e.target.closest('button, input')) { editing = cls.id; render(); } },
      onkeydown: (e) => { if ((e.key === 'Enter' || e.key === ' ') && e.target === el) { e.preventDefault(); choose(cls.id); } },
    },
    h('label', { class: 'swatch', vars: { '--swatch': swatch } }, color),
    nameEl,
    h('span', { class: 'class-count', title: `${formatCount(cls.count || 0)} shapes in the project` }, formatCount(cls.count || 0)),
    cls.key ? h('kbd', { class: 'class-key', title: `Press ${cls.key}` }, cls.key) : h('span', { class: 'class-key empty' }),
    h('div', { class: 'row-actions' },
      h('button', { class: 'icon-btn icon-btn-small', title: 'Rename', 'aria-label': `Rename ${cls.name}`, onclick: (e) => { e.stopPropagation(); editing = cls.id; render(); } }, icon('pencil')),
      h('button', { class: 'icon-btn icon-btn-small', title: 'Merge into another class', 'aria-label': `Merge ${cls.name}`, disabled: state.classes.length < 2, onclick: (e) => { e.stopPropagation(); merge(cls); } }, icon('merge')),
      h('button', { class: 'icon-btn icon-btn-small danger', title: 'Delete', 'aria-label': `Delete ${cls.name}`, onclick: (e) => { e.stopPropagation(); remove(cls); } }, icon('trash'))));
    return el;
  }

  function render() {
    addBtn.disabled = !state.project;
    title.textContent = state.classes.length ? `${formatCount(state.classes.length)} ${state.classes.length === 1 ? 'class' : 'classes'}` : 'Classes';
    if (!state.project) { list.replaceChildren(); footer.replaceChildren(); addRow.hidden = true; return; }
    if (!state.classes.length) {
      fill(list, h('div', { class: 'list-empty' },
        h('p', {}, 'No classes yet.'),
        h('p', { class: 'muted' }, 'Add the kinds of objects you label, e.g. “moth”. Shapes drawn without a class are kept unassigned.'),
        h('button', { class: 'btn btn-small', onclick: () => startAdd() }, icon('plus'), h('span', {}, 'Add class'))));
    } else {
      fill(list, state.classes.map(row));
    }
    renderFooter();
  }

  function renderFooter() {
    const shapes = state.shapes || [];
    if (!state.project || state.currentId === null) { footer.replaceChildren(); return; }
    const unassigned = shapes.filter((s) => s.class_id === null || s.class_id === undefined).length;
    fill(footer, h('span', {}, `${formatCount(shapes.length)} ${shapes.length === 1 ? 'shape' : 'shapes'} on this image`),
      unassigned ? h('span', { class: 'muted' }, ` · ${formatCount(unassigned)} without class`) : null);
  }

  listen(['classes', 'project'], render);
  listen(['shapes', 'current'], renderFooter);
  render();
}
