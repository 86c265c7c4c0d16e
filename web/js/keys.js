// Keyboard shortcuts: one table drives the handler, the tooltips and the help dialog
// (docs/shortcuts.md documents the same table). Shortcuts never fire while typing in a field
// or while a dialog is open. "Ctrl" also matches Cmd on macOS.
import { isTyping } from './dom.js';
import { dialogOpen } from './dialog.js';
import { guard } from './toast.js';
import { state, emit } from './state.js';
import * as A from './actions.js';
import * as E from './editing.js';
import * as Detect from './ai/detect.js';
import * as Review from './ai/review.js';
import * as Segment from './ai/segment.js';

const canvas = () => A.getCanvas();

// Enter and Esc mean one thing at a time, first match wins: a polygon (or box) being drawn, then
// the segment tool's clicks, then the selected proposal. So drawing is never interrupted by
// review, and a proposal is never accepted by an Enter meant to close a polygon.
function enter() {
  const c = canvas();
  if (c && c.isDrawing) {
    c.finishPolygon();
    return null;
  }
  if (c && c.tool === 'segment' && c.segmentPrompt) return Segment.acceptSegment();
  if (Review.selectedProposal()) return Review.acceptSelected();
  return null;
}

function escape() {
  const c = canvas();
  if (c && c.cancelDrawing()) return null;
  if (Review.selectedProposal()) return Review.rejectSelected();
  if (state.selectedId !== null) {
    E.selectShape(null);
    if (c) c.select(null);
  }
  return null;
}

function backspace() {
  const c = canvas();
  if (c && c.isDrawing && c.tool === 'polygon') {
    c.undoLastVertex();
    return null;
  }
  if (c && c.tool === 'segment' && c.segmentPrompt) {
    c.undoSegmentPoint();
    return null;
  }
  return E.deleteSelection();
}

function undoKey() {
  const c = canvas();
  if (c && c.tool === 'segment' && c.segmentPrompt) {
    c.undoSegmentPoint();
    return null;
  }
  return E.undo();
}

/** Tab walks proposals only when no control has the keyboard focus (it still moves focus there). */
function focusOnPage(e) {
  const t = e.target;
  return !(t instanceof Element) || t === document.body || t === document.documentElement || !!t.closest('.stage');
}

export function setTool(tool) {
  state.tool = tool;
  const c = canvas();
  if (c) c.setTool(tool);
  emit('tool');
}

/**
 * [group, keys shown, description, matchers, action, repeatable, when]. Matchers: 'Ctrl+Shift+z',
 * 'ArrowLeft'. `when(e)`, if given, decides whether the key is ours (else it keeps its usual job).
 */
export const SHORTCUTS = [
  ['Tools', ['V'], 'Select and edit shapes', ['v'], () => setTool('select')],
  ['Tools', ['B'], 'Draw boxes', ['b'], () => setTool('box')],
  ['Tools', ['P'], 'Draw polygons', ['p'], () => setTool('polygon')],
  ['Tools', ['O'], 'Place points', ['o'], () => setTool('point')],
  ['Tools', ['S'], 'Segment by clicking: click the object, Shift+click what is not part of it, or drag a box', ['s'], () => setTool('segment')],
  ['Drawing', ['Enter'], 'Finish the polygon being drawn; else keep the segment mask; else accept the selected proposal', ['Enter'], enter],
  ['Drawing', ['Esc'], 'Cancel the drawing or the segment clicks; else reject the selected proposal; else clear the selection', ['Escape'], escape],
  ['Drawing', ['Delete', 'Backspace'], 'Delete the selected vertex, else the selected shape (while drawing a polygon or segmenting: remove the last point)', ['Delete', 'Backspace'], backspace],
  ['Drawing', ['Shift+click', 'Alt+click'], 'Segment tool: mark a point that is not part of the object', [], null],
  ['Assist', ['T'], 'Try the class prompts on this image (detect objects)', ['t'], () => Detect.detectImage()],
  ['Assist', ['M'], 'Find more objects like the selected shape on this image', ['m'], () => Detect.findSimilar()],
  ['Review', ['Tab', 'Shift+Tab'], 'Select the next / previous proposal on this image', ['Tab', 'Shift+Tab'], (e) => Review.nextProposal(e.shiftKey ? -1 : 1), true, focusOnPage],
  ['Review', ['Enter'], 'Accept the selected proposal (and select the next one)', [], null],
  ['Review', ['Esc'], 'Reject the selected proposal (and select the next one)', [], null],
  ['Review', ['Ctrl+Enter'], 'Accept every proposal on this image', ['Ctrl+Enter'], () => Review.acceptAll()],
  ['Classes', ['1 … 9'], 'With a shape selected: give it that class (and make the class active). Otherwise: make that class active for new shapes', ['1', '2', '3', '4', '5', '6', '7', '8', '9'], (e) => E.chooseClassByKey(e.key)],
  ['Edit', ['Ctrl+Z'], 'Undo (while drawing a polygon or segmenting: remove the last point)', ['Ctrl+z'], undoKey],
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
  ['App', ['Ctrl+E'], 'Export labels (COCO, YOLO, VOC, …)', ['Ctrl+e'], () => import('./panels/exportdialog.js').then((m) => m.openExportDialog())],
  ['App', ['Ctrl+I'], 'Import labels', ['Ctrl+i'], () => import('./panels/importdialog.js').then((m) => m.openImportDialog())],
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
for (const [, , description, matchers, action, repeatable, when] of SHORTCUTS) {
  for (const m of matchers) table.set(m, { action: guard(action, description.toLowerCase()), repeatable, when });
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
    if (entry.when && !entry.when(e)) return;
    e.preventDefault();
    if (e.repeat && !entry.repeatable) return;
    entry.action(e);
  });
}
