// Keyboard shortcuts: one table drives the handler, the tooltips and the help dialog
// (docs/shortcuts.md documents the same table). Shortcuts never fire while typing in a field
// or while a dialog is open. "Ctrl" also matches Cmd on macOS.
import { isTyping } from './dom.js';
import { dialogOpen } from './dialog.js';
import { guard } from './toast.js';
import { state, emit } from './state.js';
import * as A from './actions.js';
import * as E from './editing.js';

const canvas = () => A.getCanvas();

function escape() {
  const c = canvas();
  if (c && c.cancelDrawing()) return;
  if (state.selectedId !== null) {
    E.selectShape(null);
    if (c) c.select(null);
  }
}

function backspace() {
  const c = canvas();
  if (c && c.isDrawing && c.tool === 'polygon') {
    c.undoLastVertex();
    return null;
  }
  return E.deleteSelection();
}

export function setTool(tool) {
  state.tool = tool;
  const c = canvas();
  if (c) c.setTool(tool);
  emit('tool');
}

/** [group, keys shown, description, matchers, action]. Matchers: 'Ctrl+Shift+z', 'ArrowLeft'. */
export const SHORTCUTS = [
  ['Tools', ['V'], 'Select and edit shapes', ['v'], () => setTool('select')],
  ['Tools', ['B'], 'Draw boxes', ['b'], () => setTool('box')],
  ['Tools', ['P'], 'Draw polygons', ['p'], () => setTool('polygon')],
  ['Tools', ['O'], 'Place points', ['o'], () => setTool('point')],
  ['Drawing', ['Enter'], 'Finish the polygon being drawn', ['Enter'], () => { const c = canvas(); if (c) c.finishPolygon(); }],
  ['Drawing', ['Esc'], 'Cancel the drawing; else clear the selection', ['Escape'], escape],
  ['Drawing', ['Delete', 'Backspace'], 'Delete the selected vertex, else the selected shape (while drawing a polygon: remove its last point)', ['Delete', 'Backspace'], backspace],
  ['Classes', ['1 … 9'], 'With a shape selected: give it that class (and make the class active). Otherwise: make that class active for new shapes', ['1', '2', '3', '4', '5', '6', '7', '8', '9'], (e) => E.chooseClassByKey(e.key)],
  ['Edit', ['Ctrl+Z'], 'Undo (while drawing a polygon: remove its last point)', ['Ctrl+z'], () => E.undo()],
  ['Edit', ['Ctrl+Shift+Z', 'Ctrl+Y'], 'Redo', ['Ctrl+Shift+z', 'Ctrl+y'], () => E.redo()],
  ['Images', ['←', 'A'], 'Previous image', ['ArrowLeft', 'a'], () => A.step(-1), true],
  ['Images', ['→', 'D'], 'Next image', ['ArrowRight', 'd'], () => A.step(1), true],
  ['Images', ['Home', 'End'], 'First / last image in the list', ['Home', 'End'], (e) => A.step(e.key === 'Home' ? -Infinity : Infinity)],
  ['Images', ['Ctrl+D'], 'Mark the image done and go to the next', ['Ctrl+d'], () => A.setStatus('done', { advance: true })],
  ['Images', ['Ctrl+Shift+D'], 'Mark the image skipped and go to the next', ['Ctrl+Shift+d'], () => A.setStatus('skipped', { advance: true })],
  ['View', ['F'], 'Fit the image to the window', ['f'], () => { const c = canvas(); if (c) c.fit(); }],
  ['View', ['+', '−'], 'Zoom in / out', ['+', '=', '-'], (e) => { const c = canvas(); if (c) c.zoomBy(e.key === '-' ? 1 / 1.25 : 1.25); }, true],
  ['View', ['H'], 'Hide or show labels', ['h'], () => toggleLabels()],
  // Handled by the canvas and the list themselves; listed so the help shows them.
  ['View', ['Space+drag'], 'Pan the image (or drag with the right or middle button)', [], null],
  ['View', ['Wheel'], 'Zoom at the cursor', [], null],
  ['Images', ['↑', '↓'], 'Move in the image list when it has the focus', [], null],
  ['App', ['Ctrl+O'], 'Open a folder', ['Ctrl+o'], () => A.pickFolder()],
  ['App', ['?'], 'Show these shortcuts', ['?'], () => import('./panels/help.js').then((m) => m.showShortcuts())],
];

export function toggleLabels() {
  state.labelsVisible = !state.labelsVisible;
  const c = canvas();
  if (c) c.setLabelsVisible(state.labelsVisible);
  emit('labels');
}

function comboOf(e) {
  const mods = [];
  if (e.ctrlKey || e.metaKey) mods.push('Ctrl');
  if (e.altKey) mods.push('Alt');
  // Shift is part of the character for symbols ('?', '+'); name it only for letters and keys.
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (e.shiftKey && (e.key.length > 1 || /[a-z]/i.test(e.key))) mods.push('Shift');
  return [...mods, key].join('+');
}

const table = new Map();
for (const [, , description, matchers, action, repeatable] of SHORTCUTS) {
  for (const m of matchers) table.set(m, { action: guard(action, description.toLowerCase()), repeatable });
}

/** Tooltip text: "Undo (Ctrl+Z)". */
export function hint(description, ...keys) {
  return keys.length ? `${description} (${keys.join(', ')})` : description;
}

export function installShortcuts() {
  window.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.isComposing || dialogOpen() || isTyping(e.target)) return;
    const entry = table.get(comboOf(e));
    if (!entry) return;
    // Buttons and list rows keep their own Enter/Space; the list keeps its arrows (see imagelist).
    if (e.key === 'Enter' && e.target instanceof HTMLButtonElement) return;
    e.preventDefault();
    if (e.repeat && !entry.repeatable) return;
    entry.action(e);
  });
}
