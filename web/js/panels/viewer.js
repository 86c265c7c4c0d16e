// Center: the image header (navigation, status), display controls (page, channels, stretch),
// the LabelCanvas, and the empty / error states that replace it.
import { h, fill, formatCount } from '../dom.js';
import { icon } from '../icons.js';
import { state, listen, currentIndex } from '../state.js';
import { guard } from '../toast.js';
import { hint } from '../keys.js';
import * as A from '../actions.js';
import { welcomeView, noImagesView, imageErrorView } from './welcome.js';

export function mountViewer(root) {
  const prevBtn = h('button', { class: 'icon-btn', 'aria-label': 'Previous image', title: hint('Previous image', '←', 'A'), onclick: guard(() => A.step(-1), 'going back') }, icon('chevronLeft'));
  const nextBtn = h('button', { class: 'icon-btn', 'aria-label': 'Next image', title: hint('Next image', '→', 'D'), onclick: guard(() => A.step(1), 'going on') }, icon('chevronRight'));
  const name = h('span', { class: 'image-name' });
  const position = h('span', { class: 'image-pos' });
  const badge = h('span', { class: 'badge' });
  const doneBtn = h('button', { class: 'btn btn-small status-btn', 'aria-pressed': 'false', title: hint('Mark done — Ctrl+D also goes to the next image'), onclick: guard(() => A.toggleStatus('done'), 'marking the image') }, icon('check'), h('span', {}, 'Done'));
  const skipBtn = h('button', { class: 'btn btn-small status-btn', 'aria-pressed': 'false', title: hint('Mark skipped — Ctrl+Shift+D also goes to the next image'), onclick: guard(() => A.toggleStatus('skipped'), 'marking the image') }, icon('skip'), h('span', {}, 'Skip'));
  const header = h('div', { class: 'viewer-head' },
    h('div', { class: 'nav' }, prevBtn, nextBtn),
    h('div', { class: 'image-title' }, name, position, badge),
    h('div', { class: 'viewer-actions' }, doneBtn, skipBtn));

  const controls = h('div', { class: 'display-controls', hidden: true, 'aria-label': 'Display settings' });
  const host = h('div', { class: 'canvas-host' });
  const overlay = h('div', { class: 'viewer-overlay', hidden: true });
  const spinner = h('div', { class: 'spinner-wrap', hidden: true, role: 'status', 'aria-label': 'Loading' }, h('div', { class: 'spinner' }));
  fill(root, header, controls, h('div', { class: 'stage' }, host, overlay, spinner));

  const renderHead = () => {
    const img = state.byId.get(state.currentId);
    header.hidden = !img;
    if (!img) return;
    name.textContent = img.name;
    name.title = img.relpath || img.name;
    const i = currentIndex();
    position.textContent = i >= 0 ? `${formatCount(i + 1)} / ${formatCount(state.visible.length)}` : 'not in the filtered list';
    badge.className = `badge badge-${img.status}`;
    badge.textContent = A.STATUS_LABEL[img.status] || img.status;
    prevBtn.disabled = i <= 0;
    nextBtn.disabled = i < 0 || i >= state.visible.length - 1;
    for (const [btn, status] of [[doneBtn, 'done'], [skipBtn, 'skipped']]) {
      btn.classList.toggle('active', img.status === status);
      btn.setAttribute('aria-pressed', String(img.status === status));
    }
  };

  const renderOverlay = () => {
    let view = null;
    if (!state.project) view = state.loading ? null : welcomeView();
    else if (!state.images.length && !state.loading) view = noImagesView();
    else if (state.imageError) view = imageErrorView(state.byId.get(state.currentId), state.imageError);
    overlay.hidden = !view;
    host.classList.toggle('hidden', !!view || !state.project);
    root.classList.toggle('welcome-mode', !state.project);
    if (view) fill(overlay, view); else overlay.replaceChildren();
    spinner.hidden = !state.loading;
  };

  const renderControls = () => fill(controls, ...displayControls());
  listen(['current', 'images'], renderHead);
  listen(['project', 'current', 'loading', 'recent'], renderOverlay);
  listen(['display', 'current', 'project'], () => {
    const needs = A.displayNeeds(state.current);
    const show = !!state.current && !state.current.error && (needs.pages > 1 || needs.picker || needs.stretch);
    controls.hidden = !show;
    if (show) renderControls(); else controls.replaceChildren();
  });
  renderHead();
  renderOverlay();
  return { host };
}

function channelSelect(label, value, count, onchange) {
  const select = h('select', { class: 'select select-small', 'aria-label': label, onchange: (e) => onchange(Number(e.target.value)) },
    Array.from({ length: count }, (_, c) => h('option', { value: String(c), selected: c === value }, `${c + 1}`)));
  return h('label', { class: 'field' }, h('span', { class: ['field-label', `channel-${label[0].toLowerCase()}`] }, label[0]), select);
}

function numberField(label, value, onchange, { min, max, step }) {
  const input = h('input', { type: 'number', class: 'input input-number', 'aria-label': label, min, max, step, value: String(value) });
  input.addEventListener('change', () => {
    const v = Number(input.value);
    if (Number.isFinite(v)) onchange(v);
  });
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') input.blur(); });
  return h('label', { class: 'field', title: label }, h('span', { class: 'field-label' }, label.split(' ')[0]), input);
}

/** Page, channel and stretch controls, only those the current image needs. */
function displayControls() {
  const img = state.current;
  const d = state.display;
  const needs = A.displayNeeds(img);
  const set = guard((partial) => A.setDisplay(partial), 'changing the display');
  const parts = [];
  if (needs.pages > 1) {
    const page = h('select', { class: 'select select-small', 'aria-label': 'Page', onchange: (e) => set({ page: Number(e.target.value) }) },
      Array.from({ length: needs.pages }, (_, p) => h('option', { value: String(p), selected: p === d.page }, `${p + 1} of ${needs.pages}`)));
    parts.push(h('div', { class: 'control-group' }, icon('layers'), h('span', { class: 'control-title' }, 'Page'), page));
  }
  if (needs.picker) {
    const mode = h('div', { class: 'segmented segmented-text', role: 'radiogroup', 'aria-label': 'Colour mode' },
      [['gray', 'Gray'], ['rgb', 'RGB']].map(([m, label]) => h('button', {
        class: ['seg-btn', d.mode === m && 'active'], role: 'radio', 'aria-checked': String(d.mode === m),
        onclick: () => set(m === 'gray' ? { mode: m, channels: [d.channels[0]] }
          : { mode: m, channels: [0, 1, 2].map((k) => (d.channels[k] ?? Math.min(k, needs.channels - 1))) }),
      }, label)));
    const pickers = d.mode === 'gray'
      ? [channelSelect('Gray channel', d.channels[0], needs.channels, (c) => set({ channels: [c] }))]
      : ['Red', 'Green', 'Blue'].map((label, k) => channelSelect(`${label} channel`, d.channels[k], needs.channels,
        (c) => set({ channels: d.channels.map((v, j) => (j === k ? c : v)) })));
    parts.push(h('div', { class: 'control-group' }, h('span', { class: 'control-title' }, `Channels (${needs.channels})`), mode, ...pickers));
  }
  if (needs.stretch) {
    parts.push(h('div', { class: 'control-group', title: 'Contrast stretch: pixel values between these percentiles map to black … white' },
      icon('sliders'), h('span', { class: 'control-title' }, 'Stretch'),
      numberField('Low percentile', d.lo, (lo) => set({ lo }), { min: 0, max: 100, step: 0.1 }),
      numberField('High percentile', d.hi, (hi) => set({ hi }), { min: 0, max: 100, step: 0.1 }),
      h('button', { class: 'btn btn-small btn-ghost', onclick: guard(() => A.resetStretch(), 'resetting the stretch') }, 'Reset')));
  }
  if (img && img.dtype) parts.push(h('span', { class: 'control-note' }, img.dtype));
  return parts;
}
