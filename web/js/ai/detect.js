// Detect from text: each class's prompt phrases and threshold, "try on this image", re-scoring
// from the cached image encoding when a phrase or threshold changes, and "find more like this".
import { api, apiJob, track, ApiError } from '../bridge.js';
import { state, emit, classById } from '../state.js';
import { say } from '../actions.js';
import { refreshShapes } from '../editing.js';
import { setBusy, isBusy } from './busy.js';
import { activePack } from './models.js';
import { refreshQueue } from './review.js';

export const DEFAULT_THRESHOLD = 0.3;
/** Slider moves and typing are sent once they pause this long (ms). */
const DEBOUNCE_MS = 50;

// Edits not yet confirmed by the backend: class id -> {prompts, threshold}. They win over the
// class records, which a refresh (after any edit) replaces with what the store had a moment ago.
const drafts = new Map();

/** A class's phrases as the page shows them (never the class name unless the person chose it). */
export function promptsOf(cls) {
  if (!cls) return [];
  const d = drafts.get(cls.id);
  const list = d && d.prompts !== undefined ? d.prompts : cls.prompts;
  return Array.isArray(list) ? list.map(String) : [];
}

export function thresholdOf(cls) {
  if (!cls) return DEFAULT_THRESHOLD;
  const d = drafts.get(cls.id);
  const t = d && d.threshold !== undefined ? d.threshold : cls.threshold;
  return typeof t === 'number' && t >= 0 && t <= 1 ? t : DEFAULT_THRESHOLD;
}

/** True when at least one class has a non-empty phrase. */
export function hasPrompts() {
  return state.classes.some((c) => promptsOf(c).some((p) => p.trim()));
}

// --- editing phrases and thresholds ------------------------------------------------------

const timers = new Map(); // class id -> debounce timer
let chain = Promise.resolve(); // set_prompts calls in order, so the last edit wins on disk too

/**
 * Change a class's phrases and/or threshold. The page's record changes at once (the panel keeps
 * what was typed); the backend hears it after a short pause, then the current image is re-scored.
 */
export function editPrompts(classId, { prompts, threshold } = {}) {
  const cls = classById(classId);
  if (!cls) return Promise.resolve();
  const draft = { prompts: promptsOf(cls), threshold: thresholdOf(cls) };
  if (prompts !== undefined) draft.prompts = prompts.map(String);
  if (threshold !== undefined) draft.threshold = threshold;
  drafts.set(classId, draft);
  emit('prompts');
  clearTimeout(timers.get(classId));
  return new Promise((resolve, reject) => {
    timers.set(classId, setTimeout(() => {
      timers.delete(classId);
      track(send(classId)).then(resolve, reject);
    }, DEBOUNCE_MS));
  });
}

async function send(classId) {
  const step = chain.then(async () => {
    const cls = classById(classId);
    const draft = drafts.get(classId);
    if (!cls || !draft) return;
    // Empty phrases stay in the editor (the person is typing) but are not sent.
    const prompts = draft.prompts.map((p) => p.trim()).filter(Boolean);
    try {
      const saved = await api('classes.set_prompts', { id: classId, prompts, threshold: draft.threshold });
      const now = classById(classId);
      if (now && saved) Object.assign(now, { prompts: saved.prompts, threshold: saved.threshold });
    } finally {
      // A newer edit keeps its draft; this one is on disk now (or failed, and the toast says so).
      if (drafts.get(classId) === draft) drafts.delete(classId);
      emit('prompts');
    }
  });
  chain = step.catch(() => {});
  await step;
  await rescore();
}

let rescoreSeq = 0;

/** Re-score the current image from its cached encoding; silent when it was never detected. */
export async function rescore() {
  const imageId = state.currentId;
  if (imageId === null || !activePack('detector')) return;
  const seq = ++rescoreSeq;
  try {
    await api('detect.rescore', { image_id: imageId });
  } catch (err) {
    // Nothing to re-score until the person tries the detector on this image.
    if (err instanceof ApiError && err.code === 'not_encoded') return;
    throw err;
  }
  if (seq !== rescoreSeq || imageId !== state.currentId) return;
  await refreshShapes();
  refreshQueue();
}

// --- detection jobs ----------------------------------------------------------------------

function requireDetector() {
  if (activePack('detector')) return true;
  say('No detector is active: choose or install one under Models.', 'error');
  return false;
}

/** Try the prompts on the current image: proposals replace the image's live proposals. */
export async function detectImage() {
  const imageId = state.currentId;
  if (imageId === null || isBusy('detect') || !requireDetector()) return null;
  if (!hasPrompts()) {
    say('Give at least one class a phrase to look for (Assist tab).', 'error');
    return null;
  }
  await flushPrompts();
  setBusy('detect', true, { message: 'Looking for objects' });
  let result;
  try {
    result = await apiJob('detect.image', { image_id: imageId }, { onProgress: (p) => setBusy('detect', true, p) });
  } finally {
    setBusy('detect', false);
  }
  await afterProposals(imageId, result, 'proposal');
  return result;
}

/** Find more like the selected shape on this image. */
export async function findSimilar() {
  const id = state.selectedId;
  const shape = id !== null && state.shapes.find((s) => s.id === id);
  if (!shape) {
    say('Select a shape first, then ask for more like it.');
    return null;
  }
  if (isBusy('similar') || !requireDetector()) return null;
  setBusy('similar', true, { message: 'Looking for similar objects' });
  let result;
  try {
    result = await apiJob('detect.similar', { shape_id: shape.id }, { onProgress: (p) => setBusy('similar', true, p) });
  } finally {
    setBusy('similar', false);
  }
  await afterProposals(shape.image_id, result, 'similar object');
  return result;
}

async function afterProposals(imageId, result, noun) {
  const n = result && Array.isArray(result.proposals) ? result.proposals.length : 0;
  if (imageId === state.currentId) {
    await refreshShapes();
    say(n ? `${n} ${noun}${n === 1 ? '' : 's'} — Tab goes through them, Enter accepts, Esc rejects`
      : `No ${noun}s above the thresholds. Lower a threshold or try another phrase.`);
  }
  refreshQueue();
  emit('proposals');
}

/** Send edits still waiting for their debounce (before a detection uses the prompts). */
export async function flushPrompts() {
  const waiting = [...timers.keys()];
  for (const id of waiting) {
    clearTimeout(timers.get(id));
    timers.delete(id);
  }
  await Promise.all(waiting.map((id) => send(id)));
  await chain;
}

/** A project was opened or closed: edits of the old one are void. */
export function forgetDrafts() {
  for (const t of timers.values()) clearTimeout(t);
  timers.clear();
  drafts.clear();
}
