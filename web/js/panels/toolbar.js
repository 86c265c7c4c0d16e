// Top bar: project, open / recent, drawing tools, undo / redo, view toggles, theme, help.
import { h, fill } from '../dom.js';
import { icon } from '../icons.js';
import { state, listen } from '../state.js';
import { guard } from '../toast.js';
import { dropdown } from '../menu.js';
import { hint, setTool, toggleLabels } from '../keys.js';
import * as A from '../actions.js';
import * as E from '../editing.js';
import { activePack } from '../ai/models.js';

export const TOOLS = [
  ['select', 'Select', 'V', 'select'],
  ['box', 'Box', 'B', 'box'],
  ['polygon', 'Polygon', 'P', 'polygon'],
  ['point', 'Point', 'O', 'point'],
  ['segment', 'Segment (click an object)', 'S', 'wand'],
];

function iconButton(name, label, onclick, extra = {}) {
  return h('button', { class: ['icon-btn', extra.class], title: extra.title || label, 'aria-label': label, onclick, ...extra.props },
    icon(name), extra.children || null);
}

/** Shorten a path to its last parts for a menu line; the full path goes to the tooltip. */
function shortPath(path) {
  const parts = String(path).split(/[\\/]/).filter(Boolean);
  return parts.length > 3 ? `…/${parts.slice(-3).join('/')}` : String(path);
}

export function recentItems() {
  if (!state.recent.length) return [{ label: 'No recent projects', disabled: true }];
  return [{ heading: 'Recent projects' }, ...state.recent.map((r) => ({
    label: r.name || r.path,
    hint: r.exists === false ? 'missing' : shortPath(r.path),
    title: r.exists === false ? `${r.path}\nThis folder no longer exists.` : r.path,
    disabled: r.exists === false,
    onselect: guard(() => A.openRecent(r.path), 'opening the project'),
  }))];
}

export function mountToolbar(root) {
  const projectName = h('span', { class: 'project-name' });
  const demoBadge = h('span', { class: 'badge badge-demo', hidden: true, title: 'A sample project to try Fieldmark. Open a folder to label your own images.' }, 'Demo');
  const openBtn = h('button', { class: 'btn btn-ghost', title: hint('Open a folder of images', 'Ctrl+O'),
    onclick: guard(() => A.pickFolder(), 'opening a folder') }, icon('folderOpen'), h('span', {}, 'Open folder'));
  const recentBtn = iconButton('clock', 'Recent projects', null, { class: 'has-caret', children: icon('chevronDown', 'caret') });
  dropdown(recentBtn, recentItems);

  const toolButtons = TOOLS.map(([tool, label, key, iconName]) => h('button', {
    class: 'icon-btn tool-btn', title: hint(label, key), 'aria-label': `${label} tool`, 'aria-pressed': 'false',
    dataset: { tool }, onclick: () => setTool(tool),
  }, icon(iconName), h('span', { class: 'key-hint', 'aria-hidden': 'true' }, key)));

  const undoBtn = iconButton('undo', 'Undo', guard(() => E.undo(), 'undoing'));
  const redoBtn = iconButton('redo', 'Redo', guard(() => E.redo(), 'redoing'));
  const labelsBtn = iconButton('eye', 'Hide labels', () => toggleLabels(), { title: hint('Hide labels', 'H') });
  const fitBtn = iconButton('fit', 'Fit image', () => { const c = A.getCanvas(); if (c) c.fit(); }, { title: hint('Fit image to the window', 'F') });
  const themeBtn = iconButton('sun', 'Switch theme', guard(() => A.toggleTheme(), 'switching the theme'));
  const modelsLabel = h('span', { class: 'models-label' }, 'Models');
  const modelsDot = h('span', { class: 'models-dot', 'aria-hidden': 'true' });
  const modelsBtn = h('button', { class: 'btn btn-ghost models-btn', title: 'Model packs: install, choose, unload',
    onclick: () => import('./models.js').then((m) => m.showModels()) }, icon('cpu'), modelsLabel, modelsDot);
  const dataBtn = h('button', { class: 'btn btn-ghost', title: 'Export or import labels' }, icon('package'), h('span', {}, 'Dataset'), icon('chevronDown', 'caret'));
  dropdown(dataBtn, () => [
    { label: 'Export labels…', hint: 'Ctrl+E', disabled: !state.project, onselect: guard(() => import('./exportdialog.js').then((m) => m.openExportDialog()), 'exporting') },
    { label: 'Import labels…', hint: 'Ctrl+I', disabled: !state.project, onselect: guard(() => import('./importdialog.js').then((m) => m.openImportDialog()), 'importing') },
  ]);
  const helpBtn = iconButton('keyboard', 'Keyboard shortcuts', () => import('./help.js').then((m) => m.showShortcuts()), { title: hint('Keyboard shortcuts', '?') });

  const projectGroup = h('div', { class: 'tb-group tb-project' }, projectName, demoBadge);
  const editGroup = h('div', { class: 'tb-group tb-edit' },
    h('div', { class: 'segmented', role: 'group', 'aria-label': 'Drawing tools' }, toolButtons),
    h('span', { class: 'tb-sep' }), undoBtn, redoBtn,
    h('span', { class: 'tb-sep' }), labelsBtn, fitBtn);

  fill(root,
    h('div', { class: 'tb-group tb-brand' }, h('img', { class: 'logo', src: 'img/icon.svg', alt: '' }), h('span', { class: 'brand-name' }, 'Fieldmark')),
    h('span', { class: 'tb-sep' }),
    h('div', { class: 'tb-group' }, openBtn, recentBtn),
    projectGroup,
    h('div', { class: 'tb-spacer' }),
    editGroup,
    h('div', { class: 'tb-spacer' }),
    h('div', { class: 'tb-group' }, dataBtn, modelsBtn, h('span', { class: 'tb-sep' }), themeBtn, helpBtn));

  const renderTools = () => {
    for (const b of toolButtons) {
      const on = b.dataset.tool === state.tool;
      b.classList.toggle('active', on);
      b.setAttribute('aria-pressed', String(on));
    }
  };
  const renderEdit = () => {
    const e = state.edit || {};
    undoBtn.disabled = !e.can_undo;
    redoBtn.disabled = !e.can_redo;
    undoBtn.title = e.can_undo ? hint(`Undo: ${e.undo || 'last edit'}`, 'Ctrl+Z') : 'Nothing to undo';
    redoBtn.title = e.can_redo ? hint(`Redo: ${e.redo || 'edit'}`, 'Ctrl+Shift+Z') : 'Nothing to redo';
  };
  const renderProject = () => {
    const p = state.project;
    projectName.textContent = p ? p.name : '';
    projectName.title = p ? p.path : '';
    demoBadge.hidden = !(p && p.demo);
    editGroup.classList.toggle('disabled', !p);
    for (const b of editGroup.querySelectorAll('button')) b.disabled = !p;
    if (p) renderEdit();
  };
  const renderLabels = () => {
    const shown = state.labelsVisible;
    labelsBtn.replaceChildren(icon(shown ? 'eye' : 'eyeOff'));
    labelsBtn.title = hint(shown ? 'Hide labels' : 'Show labels', 'H');
    labelsBtn.setAttribute('aria-label', shown ? 'Hide labels' : 'Show labels');
    labelsBtn.classList.toggle('active', !shown);
  };
  const renderTheme = () => {
    const dark = state.theme === 'dark';
    themeBtn.replaceChildren(icon(dark ? 'sun' : 'moon'));
    themeBtn.title = dark ? 'Switch to the light theme' : 'Switch to the dark theme';
  };
  const renderLoading = () => { openBtn.disabled = state.loading; recentBtn.disabled = state.loading; };

  const renderModels = () => {
    const m = state.ai.models;
    const det = activePack('detector');
    const seg = activePack('segmenter');
    const device = m && m.device ? String(m.device.provider || '').replace(/ExecutionProvider$/, '') : '';
    modelsDot.className = ['models-dot', det || seg ? 'on' : ''].join(' ');
    modelsLabel.textContent = det || seg ? `Models${device ? ` · ${device}` : ''}` : 'Models';
    modelsBtn.title = [
      `Detector: ${det ? det.name || det.id : 'none'}`,
      `Segmenter: ${seg ? seg.name || seg.id : 'none (smart select)'}`,
      m && m.device ? `Device: ${m.device.provider || '?'}${m.device.reason ? ` — ${m.device.reason}` : ''}` : null,
      'Click to install, choose or unload model packs.',
    ].filter(Boolean).join('\n');
  };
  listen('models', renderModels);
  renderModels();
  listen('tool', renderTools);
  listen('edit', renderEdit);
  listen('project', renderProject);
  listen('labels', renderLabels);
  listen('theme', renderTheme);
  listen('loading', renderLoading);
  renderTools(); renderProject(); renderLabels(); renderTheme();
}
