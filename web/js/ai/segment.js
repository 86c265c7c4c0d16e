// Segment by clicking: the canvas collects clicks and a box (the segment tool), this module asks
// the backend for the mask and shows it live; Enter keeps it as a polygon of the active class.
// With no segmenter pack active the same tool uses smart select (classical, no model).
//
// One request at a time: clicks made while a mask is being computed are merged into the next
// request, so a fast clicker never queues a backlog and the preview always ends on the latest
// prompt. Answers to older prompts are dropped.
import { api, apiJob, ApiError } from '../bridge.js';
import { state, emit, classById } from '../state.js';
import { getCanvas, say } from '../actions.js';
import { afterEdit } from '../editing.js';
import { reportError } from '../toast.js';
import { setBusy, isBusy } from './busy.js';
import { activePack } from './models.js';

const HINT = 'segment_hint'; // our own "do it this way" answers, shown in the status bar only
let seq = 0;          // bumps on every prompt change
let running = false;
let queued = null;    // {prompt, seq, imageId}: the newest prompt not yet sent
let sent = null;      // {imageId, points, box} of the last model request (for `refine`)
let result = null;    // {seq, imageId, mode, polygons, rings, score, area}
const waiters = [];

/** 'model' (a segmenter pack is active) or 'smart' (classical select, no model). */
export function segmentMode() {
  return activePack('segmenter') ? 'model' : 'smart';
}

function setSeg(partial) {
  Object.assign(state.ai.segment, partial);
  emit('segment');
}

/** The canvas's 'segment' event: the prompt changed. */
export function onPrompt(prompt) {
  seq += 1;
  const imageId = state.currentId;
  if (!prompt || (!prompt.points.length && !prompt.box)) {
    queued = null;
    result = null;
    setSeg({ busy: running, score: null, area: null, error: null, mode: segmentMode() });
    return;
  }
  if (imageId === null || state.shownId !== imageId) return; // clicked on the previous picture
  queued = { prompt, seq, imageId };
  pump();
}

function pump() {
  if (running || !queued) {
    if (!running && !queued) for (const resolve of waiters.splice(0)) resolve();
    return;
  }
  const job = queued;
  queued = null;
  running = true;
  setSeg({ busy: true, mode: segmentMode() });
  request(job).then((answer) => {
    if (job.seq !== seq || job.imageId !== state.currentId) return;
    const rings = toRings(answer.polygons);
    result = { seq: job.seq, imageId: job.imageId, mode: answer.mode, polygons: answer.polygons, rings,
      score: typeof answer.score === 'number' ? answer.score : null, area: answer.area ?? null, prompt: job.prompt };
    const canvas = getCanvas();
    if (canvas) canvas.setSegmentPreview(rings.length ? rings : null);
    setSeg({ score: result.score, area: result.area, error: rings.length ? null : 'No object found there — click elsewhere or drag a box.' });
  }, (err) => {
    if (job.seq !== seq) return;
    const canvas = getCanvas();
    if (canvas) canvas.setSegmentPreview(null);
    result = null;
    const message = err && err.message ? err.message : String(err);
    setSeg({ error: message });
    if (err instanceof ApiError && err.code === HINT) say(message, 'error'); // a hint, not a failure
    else if (!(err instanceof ApiError && err.code === 'cancelled')) reportError(err, 'segmenting');
  }).finally(() => {
    running = false;
    setSeg({ busy: !!queued });
    pump();
  });
}

async function request({ prompt, imageId }) {
  const mode = segmentMode();
  if (mode === 'model') {
    const args = { image_id: imageId, points: prompt.points };
    if (prompt.box) args.box = prompt.box;
    // More clicks on the same object refine the previous mask; anything else starts afresh.
    if (sent && sent.imageId === imageId && extends_(sent, prompt)) args.refine = true;
    sent = { imageId, points: prompt.points, box: prompt.box };
    const answer = await apiJob('segment.click', args);
    return { ...answer, mode };
  }
  sent = null;
  const args = { image_id: imageId };
  const positive = prompt.points.filter((p) => p[2] === 1);
  if (positive.length) args.point = positive[positive.length - 1].slice(0, 2);
  if (prompt.box) args.box = prompt.box;
  if (!args.point && !args.box) {
    throw new ApiError({ code: HINT, message: 'Smart select needs a click on the object (without Shift) or a box.' });
  }
  const answer = await apiJob('smart.select', args);
  return { ...answer, mode };
}

function extends_(prev, next) {
  if (JSON.stringify(prev.box) !== JSON.stringify(next.box)) return false;
  if (next.points.length <= prev.points.length) return false;
  return prev.points.every((p, i) => p.every((v, k) => v === next.points[i][k]));
}

/** Polygons as rings [[x, y], ...]: accepts a list of rings or a list of polygons of rings. */
export function toRings(polygons) {
  const out = [];
  const isPt = (p) => Array.isArray(p) && p.length >= 2 && typeof p[0] === 'number' && typeof p[1] === 'number';
  const walk = (v) => {
    if (!Array.isArray(v) || !v.length) return;
    if (isPt(v[0])) {
      if (v.length >= 3 && v.every(isPt)) out.push(v.map((p) => [p[0], p[1]]));
      return;
    }
    for (const x of v) walk(x);
  };
  walk(polygons);
  return out;
}

/** Resolves once no mask request is running or waiting. */
function settled() {
  if (!running && !queued) return Promise.resolve();
  return new Promise((resolve) => waiters.push(resolve));
}

/** A short text of the clicks for the shape's provenance: {"points": [[x, y, 1|0]], "box": ...}. */
function describe(prompt) {
  const r = (v) => Math.round(v * 10) / 10;
  return JSON.stringify({ points: prompt.points.map(([x, y, l]) => [r(x), r(y), l]), box: prompt.box ? prompt.box.map(r) : null });
}

/** Enter with the segment tool: store the previewed mask as a polygon of the active class. */
export async function acceptSegment() {
  const canvas = getCanvas();
  if (!canvas || !canvas.segmentPrompt) return false;
  await settled();
  const prompt = canvas.segmentPrompt;
  if (!prompt || !result || result.seq !== seq || !result.rings.length) {
    say('There is no mask to keep yet — click on an object first.');
    return false;
  }
  const imageId = result.imageId;
  // The tool names the provenance: the segmenter pack, or the classical smart select.
  const args = { image_id: imageId, polygons: result.polygons, prompt: describe(prompt),
    tool: result.mode === 'smart' ? 'smart' : 'segmenter' };
  if (state.activeClassId !== null) args.class_id = state.activeClassId;
  await api('segment.accept', args);
  canvas.clearSegment();
  const cls = classById(state.activeClassId);
  say(`Added polygon${cls ? ` · ${cls.name}` : ' (no class)'}`);
  await afterEdit(imageId);
  return true;
}

// --- segment all boxes -----------------------------------------------------------------------

/** Turn the current image's boxes into polygons (the "all images" variant is a run). */
export async function segmentBoxesHere() {
  const imageId = state.currentId;
  if (imageId === null || isBusy('boxes')) return null;
  if (!activePack('segmenter')) {
    say('Segmenting boxes needs a segmenter pack: choose or install one under Models.', 'error');
    return null;
  }
  if (!state.shapes.some((s) => s.kind === 'box' && s.status !== 'rejected')) {
    say('This image has no boxes to segment.');
    return null;
  }
  setBusy('boxes', true, { message: 'Segmenting boxes' });
  let answer;
  try {
    answer = await apiJob('segment.boxes', { image_id: imageId }, { onProgress: (p) => setBusy('boxes', true, p) });
  } finally {
    setBusy('boxes', false);
  }
  const n = answer && Number.isFinite(answer.shapes) ? answer.shapes : 0;
  say(`${n} ${n === 1 ? 'box' : 'boxes'} segmented`);
  await afterEdit(imageId);
  return answer;
}
