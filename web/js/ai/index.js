// AI-assisted labeling in the page: wires backend events and the canvas's segment tool to the
// ai/* actions, and loads what the panels show when a project opens.
import { on, apiJob } from '../bridge.js';
import { state, emit, listen } from '../state.js';
import { guard } from '../toast.js';
import { refreshShapes } from '../editing.js';
import { say } from '../actions.js';
import { applyModels, refreshModels, activePack } from './models.js';
import { forgetDrafts } from './detect.js';
import { loadQueue, loadSettings, refreshQueue } from './review.js';
import { refreshRuns } from './runs.js';
import { onPrompt, segmentMode } from './segment.js';

export * as models from './models.js';
export * as detect from './detect.js';
export * as review from './review.js';
export * as runs from './runs.js';
export * as segment from './segment.js';

function onProjectChanged() {
  forgetDrafts();
  Object.assign(state.ai, { queue: [], runs: [], lastRun: null });
  emit('queue');
  emit('runs');
  if (!state.project) return;
  guard(() => Promise.all([loadSettings(), loadQueue(), refreshRuns()]), 'loading the AI settings')();
}

let prepared = null; // image id last encoded ahead for the segmenter

/** With the segment tool on an image, encode it now so the first click is quick. */
function prepareSegment() {
  const imageId = state.currentId;
  if (state.tool !== 'segment' || imageId === null || segmentMode() !== 'model' || prepared === imageId) return;
  prepared = imageId;
  guard(() => apiJob('segment.prepare', { image_id: imageId }), 'preparing the segmenter')();
}

export function wireAi(canvas) {
  canvas.addEventListener('segment', (e) => onPrompt(e.detail));
  on('models.changed', (m) => { if (m) applyModels(m); });
  on('proposals.changed', (p) => {
    if (p && p.image_id === state.currentId) guard(() => refreshShapes(), 'showing the proposals')();
    refreshQueue(300);
  });
  listen('project', onProjectChanged);
  // Any edit, undo or redo can accept, reject or bring back proposals.
  listen('edit', () => { if (state.project) refreshQueue(); });
  listen('tool', () => {
    if (state.tool !== 'segment') return;
    say(segmentMode() === 'model'
      ? 'Segment: click an object (Shift+click: not this part, drag: a box) — Enter keeps the mask, Esc clears'
      : 'Segment with smart select (no segmenter pack active): click an object or drag a box — Enter keeps it');
  });
  listen(['tool', 'current', 'models'], () => {
    state.ai.segment.mode = segmentMode();
    if (!activePack('segmenter')) prepared = null;
    prepareSegment();
  });
}

/** At start: what the models panel and the segment tool need to know. */
export function bootAi() {
  return refreshModels();
}
