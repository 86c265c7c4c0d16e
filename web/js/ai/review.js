// Review: proposals (pending shapes) are accepted or rejected one by one or all at once, Tab
// walks through the current image's proposals, and a queue lists every proposal of the project,
// lowest score first. Each accept/reject is one undo step on the backend.
import { api, track } from '../bridge.js';
import { state, emit } from '../state.js';
import { getCanvas, say, selectImage } from '../actions.js';
import { afterEdit, selectShape } from '../editing.js';

const QUEUE_LIMIT = 200;

/** The current image's proposals in review order: highest score first, then oldest first. */
export function proposals() {
  return state.shapes.filter((s) => s.status === 'pending')
    .sort((a, b) => (b.score ?? -1) - (a.score ?? -1) || a.id - b.id);
}

export function selectedProposal() {
  const id = state.selectedId;
  const s = id === null ? null : state.shapes.find((x) => x.id === id);
  return s && s.status === 'pending' ? s : null;
}

function select(id) {
  selectShape(id);
  const canvas = getCanvas();
  if (canvas) canvas.select(id);
}

/** Tab / Shift+Tab: select the next (dir 1) or previous (dir -1) proposal of this image. */
export function nextProposal(dir = 1) {
  const list = proposals();
  if (!list.length) {
    say('No proposals on this image.');
    return null;
  }
  const i = list.findIndex((s) => s.id === state.selectedId);
  const j = i < 0 ? (dir > 0 ? 0 : list.length - 1) : (i + dir + list.length) % list.length;
  select(list[j].id);
  return list[j].id;
}

/** Set the status of proposals; afterwards select the proposal that followed `focusId`. */
async function decide(ids, status, focusId = null) {
  const before = proposals();
  const at = focusId === null ? -1 : before.findIndex((s) => s.id === focusId);
  await api('review.set', { ids, status });
  await afterEdit();
  const after = proposals();
  if (at >= 0 && after.length) select(after[Math.min(at, after.length - 1)].id);
  else if (at >= 0) select(null);
  say(`${status === 'accepted' ? 'Accepted' : 'Rejected'} ${ids.length === 1 ? 'the proposal' : `${ids.length} proposals`}${
    after.length ? ` — ${after.length} left on this image` : ' — none left on this image'}`);
  refreshQueue();
}

export async function acceptSelected() {
  const s = selectedProposal();
  if (s) await decide([s.id], 'accepted', s.id);
}

export async function rejectSelected() {
  const s = selectedProposal();
  if (s) await decide([s.id], 'rejected', s.id);
}

export async function acceptAll() {
  const imageId = state.currentId;
  if (imageId === null) return;
  if (!proposals().length) {
    say('No proposals on this image.');
    return;
  }
  const { ids } = await api('review.accept_all', { image_id: imageId });
  await afterEdit(imageId);
  say(`Accepted ${ids.length} ${ids.length === 1 ? 'proposal' : 'proposals'}`);
  refreshQueue();
}

// --- the project-wide queue ----------------------------------------------------------------

let queueTimer = 0;
let queueSeq = 0;
let queueWait = null; // {resolve}: the tracked promise of the pending refresh (idle() waits for it)

/** Re-read the queue soon (many events in a row cost one call). */
export function refreshQueue(delay = 120) {
  clearTimeout(queueTimer);
  if (!queueWait) {
    const wait = {};
    track(new Promise((resolve) => { wait.resolve = resolve; }));
    queueWait = wait;
  }
  queueTimer = setTimeout(() => {
    const wait = queueWait;
    queueWait = null;
    loadQueue().catch((err) => console.warn(`review queue: ${err && err.message}`)).finally(() => wait.resolve());
  }, delay);
}

export async function loadQueue() {
  if (!state.project) return;
  const seq = ++queueSeq;
  const queue = await api('review.queue', { limit: QUEUE_LIMIT });
  if (seq !== queueSeq) return;
  state.ai.queue = Array.isArray(queue) ? queue : [];
  emit('queue');
}

/** A click on a queue entry: show its image and select the proposal. */
export async function openEntry(entry) {
  if (entry.image_id !== state.currentId) await selectImage(entry.image_id);
  if (entry.image_id !== state.currentId) return;
  if (!state.shapes.some((s) => s.id === entry.id)) {
    say('That proposal was already reviewed.');
    refreshQueue(0);
    return;
  }
  select(entry.id);
}

// --- settings ------------------------------------------------------------------------------

export async function loadSettings() {
  state.ai.settings = await api('ai.settings', {});
  emit('settings');
}

/** Auto-accept proposals scoring at least `value` (null: off, the default). */
export async function setAutoAccept(value) {
  state.ai.settings = await api('ai.settings', { auto_accept: value });
  emit('settings');
  say(value === null ? 'Auto-accept is off: every proposal waits for review.'
    : `Proposals scoring ${value.toFixed(2)} or more are accepted without review.`);
}
