// Entry point: builds the panels, creates the canvas, connects the bridge and boots.
// Tests (and curious people in a devtools console) use the single `window.fieldmark` namespace.
import { api, apiJob, on, idle, connected, ApiError } from './bridge.js';
import { state, emit } from './state.js';
import { guard, reportError, toast, errors } from './toast.js';
import { installShortcuts, SHORTCUTS, setTool } from './keys.js';
import { h, fill } from './dom.js';
import * as A from './actions.js';
import * as E from './editing.js';
import { mountToolbar } from './panels/toolbar.js';
import { mountImageList } from './panels/imagelist.js';
import { mountViewer } from './panels/viewer.js';
import { mountSidebar } from './panels/sidebar.js';
import { mountStatusbar } from './panels/statusbar.js';
import { LabelCanvas } from './canvas/index.js';
import * as AI from './ai/index.js';

function wireCanvas(canvas) {
  canvas.addEventListener('create', (e) => guard(() => E.createShape(e.detail), 'saving the shape')());
  canvas.addEventListener('change', (e) => guard(() => E.changeShape(e.detail), 'saving the change')());
  canvas.addEventListener('select', (e) => E.selectShape(e.detail ? e.detail.id : null));
  canvas.addEventListener('cursor', (e) => {
    const d = e.detail;
    state.cursor = d && Number.isFinite(d.x) && Number.isFinite(d.y) ? { x: d.x, y: d.y } : null;
    emit('cursor');
  });
  canvas.addEventListener('view', (e) => {
    state.scale = e.detail ? e.detail.scale : null;
    emit('view');
  });
}

function wireBackend() {
  on('project.changed', (p) => guard(() => A.loadProject(p ? p.project : null), 'opening the project')());
  on('images.changed', (p) => guard(() => A.refreshImages(p && p.ids), 'refreshing the list')());
  on('job.progress', (p) => {
    if (p && p.total && !p.handled) A.say(`${p.message || 'Working'} — ${p.done} of ${p.total}`);
  });
  on('app.error', (e) => { if (e) reportError(new ApiError(e), 'opening the folder'); });
  on('job.failed', (p) => { if (p && p.error && !p.awaited) reportError(new ApiError(p.error), 'running a job'); });
}

// Clicking a toolbar button must not keep keyboard focus on it: Enter would press it again
// instead of finishing a polygon. Keyboard users still reach every button with Tab.
function keepFocusOffButtons() {
  document.addEventListener('mousedown', (e) => {
    if (e.button === 0 && e.target instanceof Element && e.target.closest('.toolbar button, .viewer-head button, .chip, .seg-btn')) {
      e.preventDefault();
    }
  });
}

function mount() {
  const $ = (id) => document.getElementById(id);
  mountToolbar($('toolbar'));
  mountImageList($('images'));
  const { host } = mountViewer($('viewer'));
  mountSidebar($('classes'));
  mountStatusbar($('statusbar'));
  const canvas = new LabelCanvas(host);
  A.attachCanvas(canvas);
  wireCanvas(canvas);
  AI.wireAi(canvas);
  canvas.setTool(state.tool);
  canvas.setLabelsVisible(state.labelsVisible);
  return canvas;
}

function fatal(message) {
  fill(document.getElementById('app'), h('div', { class: 'fatal' },
    h('h1', { class: 'empty-title' }, 'Fieldmark could not start'), h('p', { class: 'empty-text' }, message)));
}

async function start() {
  let canvas;
  try {
    canvas = mount();
  } catch (err) {
    fatal(`The page failed to build: ${err && err.message}`);
    throw err;
  }
  window.fieldmark.canvas = canvas;
  installShortcuts();
  keepFocusOffButtons();
  wireBackend();
  try {
    await connected;
  } catch (err) {
    fatal(err.message);
    return;
  }
  document.documentElement.classList.add('connected');
  try {
    await Promise.all([A.boot(), AI.bootAi()]);
  } catch (err) {
    reportError(err, 'starting');
  }
}

// One namespace for tests and debugging (qutebrowser style); nothing else goes on `window`.
window.fieldmark = {
  ready: null, // Promise: the page is built, connected and the project (if any) is shown
  idle,        // () => Promise: no bridge call or image load in flight
  api,
  apiJob,      // api() that waits for the job's result when the answer is {job}
  state,
  canvas: null,
  actions: { ...A, ...E, setTool },
  ai: { models: AI.models, detect: AI.detect, review: AI.review, runs: AI.runs, segment: AI.segment },
  shortcuts: SHORTCUTS,
  errors,      // errors shown to the person as toasts
  toast,
};
window.fieldmark.ready = start();
