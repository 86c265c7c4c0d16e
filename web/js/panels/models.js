// The Models dialog: installed packs (name, task, family, version, size), the active detector
// and segmenter, the device in use and why, memory, install from a file or folder, unload.
import { h, fill } from '../dom.js';
import { icon } from '../icons.js';
import { modal } from '../dialog.js';
import { state, listen } from '../state.js';
import { guard } from '../toast.js';
import { isBusy } from '../ai/busy.js';
import * as M from '../ai/models.js';

const TASKS = [['detector', 'Detector', 'Finds objects from text prompts.', 'None'],
  ['segmenter', 'Segmenter', 'Turns clicks and boxes into masks.', 'None — smart select (no model)']];

function packRow(task, pack, active, choose) {
  const id = pack ? pack.id : null;
  const input = h('input', { type: 'radio', name: `active-${task}`, checked: active, 'aria-label': pack ? `Use ${pack.name || pack.id}` : 'Use none',
    onchange: () => choose(task, id) });
  return h('label', { class: ['pack-row', active && 'active'], dataset: { pack: id ?? '' } }, input,
    h('span', { class: 'pack-main' },
      h('span', { class: 'pack-name' }, pack ? String(pack.name || pack.id) : TASKS.find(([t]) => t === task)[3]),
      pack ? h('span', { class: 'pack-meta mono' }, [pack.family, pack.version, pack.id].filter(Boolean).map(String).join(' · ')) : null),
    pack ? h('span', { class: 'pack-size mono' }, M.formatBytes(pack.size_bytes)) : null);
}

function body(content) {
  const choose = guard((task, id) => M.activate(task, id), 'choosing the model');
  const unload = guard((task) => M.unload(task), 'unloading the model');
  const install = guard(() => M.installFromPicker(), 'installing the pack');
  const m = state.ai.models;
  if (!m) {
    fill(content, h('p', { class: 'dialog-text' }, 'Asking the app about its models…'));
    return;
  }
  const packs = Array.isArray(m.packs) ? m.packs : [];
  const device = m.device || {};
  const installing = isBusy('install');
  const progress = state.ai.progress.install;
  const sections = TASKS.map(([task, label, what]) => {
    const mine = packs.filter((p) => p.task === task);
    const active = m.active ? m.active[task] ?? null : null;
    return h('section', { class: 'models-section' },
      h('div', { class: 'models-head' }, h('h3', { class: 'section-title' }, label), h('span', { class: 'muted' }, what),
        h('button', { class: 'btn btn-small btn-ghost', disabled: active === null, title: 'Free its memory; it loads again when next used', onclick: () => unload(task) }, 'Unload')),
      h('div', { class: 'pack-list', role: 'radiogroup', 'aria-label': label },
        packRow(task, null, active === null, choose), mine.map((p) => packRow(task, p, p.id === active, choose))));
  });
  const broken = Array.isArray(m.broken) ? m.broken : [];
  fill(content,
    h('div', { class: 'device-line' }, icon('cpu'),
      h('span', {}, h('strong', {}, String(device.provider || 'unknown device')),
        device.threads ? ` · ${device.threads} threads` : '',
        device.reason ? h('span', { class: 'muted' }, ` — ${device.reason}`) : null),
      h('span', { class: 'device-mem mono', title: 'Memory held by loaded models' }, m.memory_bytes ? `${M.formatBytes(m.memory_bytes)} in use` : 'nothing loaded')),
    packs.length ? null : h('div', { class: 'models-empty' },
      h('p', {}, 'No model packs are installed.'),
      h('p', { class: 'muted' }, 'A pack is a folder or a .zip with a manifest.json and ONNX files (made with build_scripts/export_models.py, or given to you). Install one below, or from a terminal: python main.py models install PATH.'),
      h('p', { class: 'muted' }, 'Without a pack, the segment tool (S) still works: it uses smart select, which needs no model.')),
    sections,
    broken.length ? h('div', { class: 'models-broken', role: 'alert' },
      h('p', {}, `${broken.length === 1 ? 'A folder' : `${broken.length} folders`} in the packs folder could not be used:`),
      h('ul', {}, broken.map((b) => h('li', {}, h('span', { class: 'mono' }, String(b.path ?? b.name ?? '')), ' — ', String(b.error ?? b.message ?? ''))))) : null,
    h('div', { class: 'models-install' },
      h('button', { class: 'btn btn-primary', disabled: installing, onclick: install }, installing ? h('span', { class: 'spinner spinner-small' }) : icon('package'),
        h('span', {}, installing ? (progress && progress.message) || 'Installing…' : 'Install a pack…')),
      m.packs_dir ? h('span', { class: 'muted mono packs-dir', title: String(m.packs_dir) }, String(m.packs_dir)) : null));
}

/** Open the Models dialog (refreshes the list first). */
export function showModels() {
  let off = () => {};
  M.refreshModels().catch(() => {}); // the dialog shows what it has; models.changed updates it
  return modal({
    title: 'Models',
    className: 'dialog-wide dialog-models',
    build: () => {
      const content = h('div', { class: 'models' });
      body(content);
      off = listen(['models', 'busy'], () => body(content));
      return { body: content, actions: [] };
    },
  }).finally(() => off());
}
