// Runs: batch jobs over many images (detect, segment boxes, find more like a shape) that can be paused, cancelled and
// resumed — also after the app was closed, since the backend keeps each run's progress.
// The page follows one run at a time: its progress (with ETA) and how it ended.
import { api, apiJob, ApiError } from '../bridge.js';
import { state, emit } from '../state.js';
import { say, refreshImages } from '../actions.js';
import { refreshShapes } from '../editing.js';
import { toast } from '../toast.js';
import { refreshQueue } from './review.js';
import { flushPrompts } from './detect.js';

export const KIND_LABEL = { detect: 'Detect objects', segment_boxes: 'Segment boxes', similar: 'Find more like this' };
const FINISHED = new Set(['done', 'completed', 'finished']);

export async function refreshRuns() {
  if (!state.project) return;
  const runs = await api('runs.list');
  state.ai.runs = Array.isArray(runs) ? runs : [];
  emit('runs');
}

/** Runs that stopped before every image was processed (paused, cancelled, interrupted). */
export function unfinishedRuns() {
  const following = state.ai.run && state.ai.run.run;
  return state.ai.runs.filter((r) => !FINISHED.has(r.state) && r.state !== 'running' && r.run !== following);
}

/** Failures of a run record or result: [{image_id, name, reason}] (a count becomes []). */
export function failuresOf(r) {
  return r && Array.isArray(r.failed) ? r.failed : [];
}

export function failedCount(r) {
  if (!r) return 0;
  return Array.isArray(r.failed) ? r.failed.length : Number(r.failed) || 0;
}

/** Start a run; `extra` carries kind-specific arguments (a similar run's `shape_id`). */
export function startRun(kind, imageIds = null, extra = {}) {
  const args = { kind };
  if (Array.isArray(imageIds)) args.image_ids = imageIds;
  if (extra && Number.isInteger(extra.shape_id)) args.shape_id = extra.shape_id;
  return follow('runs.start', args, kind, null);
}

export function resumeRun(record) {
  return follow('runs.resume', { run: record.run }, record.kind, record.run);
}

async function follow(method, args, kind, runId) {
  if (state.ai.run) {
    say('A run is already going; pause or cancel it first.');
    return null;
  }
  if (kind === 'detect') await flushPrompts();
  const r = { job: null, run: runId, kind, state: 'running', done: 0, total: 0, eta_s: null, message: '',
    stopping: null, stopAsked: false };
  state.ai.run = r;
  state.ai.lastRun = null;
  emit('runs');
  let result = null;
  try {
    result = await apiJob(method, args, { onProgress: (p) => onProgress(r, p) });
    const done = result && Number.isFinite(result.done) ? result.done : r.done;
    state.ai.lastRun = { run: result ? result.run : r.run, kind, state: 'done', done, total: Math.max(r.total, done),
      failed: result && Array.isArray(result.failed) ? result.failed : [] };
    const nFailed = failedCount(state.ai.lastRun);
    toast(`${KIND_LABEL[kind] || 'Run'}: finished — ${done} ${done === 1 ? 'image' : 'images'}${nFailed ? `, ${nFailed} could not be read` : ''}.`,
      { kind: nFailed ? 'info' : 'success' });
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'cancelled') throw err;
    state.ai.lastRun = { run: r.run, kind, state: r.stopping === 'pause' ? 'paused' : 'cancelled', done: r.done, total: r.total, failed: [] };
    say(r.stopping === 'pause' ? 'Run paused — resume it any time, also after restarting.' : 'Run cancelled — you can still resume it later.');
  } finally {
    state.ai.run = null;
    emit('runs');
    // What the run changed: proposals on many images, shape counts in the list.
    await Promise.allSettled([refreshRuns(), refreshImages(), refreshShapes()]);
    refreshQueue();
  }
  return result;
}

let lookingUp = false;

function onProgress(r, p) {
  if (state.ai.run !== r) return;
  r.job = p.job;
  if (Number.isFinite(p.done)) r.done = p.done;
  if (Number.isFinite(p.total)) r.total = p.total;
  r.eta_s = Number.isFinite(p.eta_s) ? p.eta_s : null;
  r.message = p.message || '';
  if (p.run !== undefined && p.run !== null) r.run = p.run;
  if (r.run === null && !lookingUp) findRunId(r);
  if (r.total) say([`${KIND_LABEL[r.kind] || 'Run'}: ${r.done} of ${r.total}`, formatEta(r.eta_s)].filter(Boolean).join(' · '));
  emit('runs');
}

/** The run id of a run started here (for pause/cancel): the newest running run of its kind. */
async function findRunId(r) {
  lookingUp = true;
  try {
    const runs = await api('runs.list');
    state.ai.runs = Array.isArray(runs) ? runs : [];
    const mine = state.ai.runs.filter((x) => x.state === 'running' && x.kind === r.kind);
    if (mine.length && r.run === null) r.run = mine[mine.length - 1].run;
  } finally {
    lookingUp = false;
  }
  emit('runs');
}

async function stop(how) {
  const r = state.ai.run;
  if (!r) return;
  if (r.run === null) await findRunId(r);
  if (r.run === null) {
    say('The run is still starting; try again in a moment.');
    return;
  }
  r.stopping = how;
  emit('runs');
  try {
    await api(how === 'pause' ? 'runs.pause' : 'runs.cancel', { run: r.run });
  } catch (err) {
    r.stopping = null;
    emit('runs');
    throw err;
  }
  r.stopAsked = true; // the backend knows: the run stops after the image it is on
  emit('runs');
}

export const pauseRun = () => stop('pause');
export const cancelRun = () => stop('cancel');

/** "about 2 min left" */
export function formatEta(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 1) return 'almost done';
  if (seconds < 60) return `about ${Math.ceil(seconds)} s left`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `about ${m} min ${Math.round(seconds % 60)} s left`;
  return `about ${Math.floor(m / 60)} h ${m % 60} min left`;
}
