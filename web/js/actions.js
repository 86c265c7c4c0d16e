// Project, image list and image display actions. Shape/class/undo actions live in editing.js.
// Actions are the only writers of `state`; each emits the parts it changed.
import { api, apiJob, track, ApiError } from './bridge.js';
import { state, emit, currentIndex } from './state.js';

export const STATUSES = ['new', 'in_progress', 'done', 'skipped'];
export const STATUS_LABEL = { new: 'New', in_progress: 'In progress', done: 'Done', skipped: 'Skipped' };
const DEFAULT_LO = 0.5;
const DEFAULT_HI = 99.5;

let canvas = null;
export function attachCanvas(c) {
  canvas = c;
}
export function getCanvas() {
  return canvas;
}

/** A short message in the status bar (not a toast). */
export function say(text, kind = 'info') {
  state.message = { text, kind, at: Date.now() };
  emit('status');
}

// --- theme ------------------------------------------------------------------------------

export function applyTheme(theme) {
  state.theme = theme === 'light' ? 'light' : 'dark';
  document.documentElement.dataset.theme = state.theme;
  emit('theme');
}

export async function toggleTheme() {
  applyTheme(state.theme === 'dark' ? 'light' : 'dark');
  await api('app.set_theme', { theme: state.theme });
}

// --- project ----------------------------------------------------------------------------

export async function boot() {
  const info = await api('app.info');
  state.info = info;
  applyTheme(info.theme);
  const recent = refreshRecent();
  if (info.project) await loadProject(info.project);
  else emit('project');
  await recent;
  // The project named on the command line may have failed to open; the Qt side keeps why.
  const startupError = info.startup_error || await api('app.startup_error').catch(() => null);
  if (startupError && startupError.message) throw new ApiError(startupError);
}

export async function refreshRecent() {
  const recent = await api('project.recent');
  state.recent = Array.isArray(recent) ? recent : [];
  emit('recent');
}

async function openWith(method, args) {
  state.loading = true;
  emit('loading');
  try {
    const summary = await apiJob(method, args, {
      onProgress: (p) => say(`${p.message || 'Opening'} — ${p.done}/${p.total}`),
    });
    if (summary) await loadProject(summary);
    return summary;
  } finally {
    state.loading = false;
    emit('loading');
  }
}

/** Ctrl+O: the native folder dialog (Qt side), then load what was chosen. */
export function pickFolder() {
  return openWith('project.pick', {});
}

export function openRecent(path) {
  // Re-opening the open project would only meet its own lock; show it fresh instead.
  if (state.project && state.project.path === path) return loadProject({ ...state.project }, { force: true });
  return openWith('project.open', { path });
}

let inflight = null; // {path, promise}: a project.changed event during our own open reuses it

/** Load everything the page shows for a project summary (null: back to the welcome page). */
export function loadProject(summary, { force = false } = {}) {
  if (!force && inflight && summary && inflight.path === summary.path) return inflight.promise;
  const promise = track(doLoadProject(summary)).finally(() => {
    if (inflight && inflight.promise === promise) inflight = null;
  });
  inflight = summary ? { path: summary.path, promise } : null;
  return promise;
}

async function doLoadProject(summary) {
  imageSeq += 1; // forget any image still loading from the previous project
  Object.assign(state, {
    project: summary || null, images: [], byId: new Map(), visible: [], currentId: null, shownId: null, current: null,
    display: null, shapes: [], selectedId: null, classes: [], activeClassId: null, imageError: null,
    edit: { can_undo: false, can_redo: false, undo: null, redo: null },
  });
  state.filter = { status: 'all', query: '' };
  if (canvas) canvas.setShapes([]);
  emit('project');
  if (!summary) return;
  const [images, classes, edit] = await Promise.all([api('images.list'), api('classes.list'), api('edit.state')]);
  setImages(images);
  state.classes = classes;
  state.activeClassId = classes.length ? classes[0].id : null;
  state.edit = edit;
  if (canvas) canvas.setClasses(classes.map(({ id, name, color }) => ({ id, name, color })));
  if (canvas && state.activeClassId !== null) canvas.setActiveClass(state.activeClassId);
  emit('classes');
  emit('edit');
  refreshRecent().catch(() => {}); // the recent list changed; failure here is harmless
  if (state.visible.length) await selectImage(state.visible[0].id);
}

// --- image list -------------------------------------------------------------------------

function setImages(images) {
  state.images = images;
  state.byId = new Map(images.map((img) => [img.id, img]));
  applyFilter();
}

function passes(img, { status, query }) {
  if (status === 'error' ? !img.error : status !== 'all' && img.status !== status) return false;
  return !query || img.name.toLowerCase().includes(query);
}

/** Recompute the visible rows; emits 'images' (whole list changed). */
export function applyFilter() {
  const f = { status: state.filter.status, query: state.filter.query.trim().toLowerCase() };
  state.visible = state.images.filter((img) => passes(img, f));
  emit('images');
}

export function setFilter(partial) {
  Object.assign(state.filter, partial);
  applyFilter();
}

/** Merge a fresh record (image.get / set_status answer) into the list. */
export function updateImage(record) {
  const old = state.byId.get(record.id);
  if (!old) return;
  const statusChanged = old.status !== record.status || !!old.error !== !!record.error;
  for (const key of ['name', 'relpath', 'status', 'error', 'width', 'height', 'pages', 'shape_count']) {
    if (key in record) old[key] = record[key];
  }
  if (statusChanged && state.filter.status !== 'all') applyFilter();
  else emit('images', { ids: [record.id] });
}

/** images.changed: records changed on the backend (decode errors, batch jobs). */
export async function refreshImages(ids) {
  if (!state.project) return;
  if (!Array.isArray(ids) || ids.length > 50) {
    const images = await api('images.list');
    setImages(images);
    return;
  }
  const records = await Promise.all(ids.filter((id) => state.byId.has(id)).map((id) => api('image.get', { id })));
  for (const rec of records) updateImage(rec);
  if (ids.includes(state.currentId)) {
    const rec = records.find((r) => r.id === state.currentId);
    if (rec && rec.error && !state.imageError) showImageError(rec.error);
  }
}

export function step(delta) {
  const list = state.visible;
  if (!list.length) return null;
  const i = currentIndex();
  const j = i < 0 ? 0 : Math.min(list.length - 1, Math.max(0, i + delta));
  if (i === j) return null;
  return selectImage(list[j].id);
}

export async function setStatus(status, { advance = false } = {}) {
  const id = state.currentId;
  if (id === null) return;
  const i = currentIndex();
  const nextId = advance && i >= 0 && i + 1 < state.visible.length ? state.visible[i + 1].id : null;
  const record = await api('image.set_status', { id, status });
  updateImage(record);
  const edit = await api('edit.state');
  state.edit = edit;
  emit('edit');
  if (nextId !== null) await selectImage(nextId);
}

/** The Done / Skip buttons toggle; pressing again puts the image back in progress. */
export function toggleStatus(status) {
  const img = state.byId.get(state.currentId);
  if (!img) return null;
  if (img.status !== status) return setStatus(status);
  return setStatus(img.shape_count > 0 ? 'in_progress' : 'new');
}

// --- current image ----------------------------------------------------------------------

let imageSeq = 0;

export function isCurrentLoad(seq) {
  return seq === imageSeq;
}

export async function selectImage(id) {
  if (!state.byId.has(id)) return;
  const seq = ++imageSeq;
  const previous = state.current;
  if (canvas && canvas.cancelDrawing) canvas.cancelDrawing();
  // Until the new pixels are on the canvas, a drawing there belongs to the old picture.
  Object.assign(state, { currentId: id, shownId: null, selectedId: null, imageError: null, cursor: null });
  emit('current');
  let img;
  let shapes;
  try {
    [img, shapes] = await Promise.all([api('image.get', { id }), api('shapes.list', { image_id: id })]);
  } catch (err) {
    if (seq !== imageSeq || !(err instanceof ApiError)) throw err;
    // e.g. the file was deleted since the folder was scanned: say so where the image would be.
    Object.assign(state, { current: null, shapes: [] });
    emit('shapes');
    showImageError(err.message);
    return;
  }
  if (seq !== imageSeq) return;
  state.current = img;
  state.shapes = shapes;
  state.display = defaultDisplay(img, previous && state.display);
  updateImage(img);
  emit('current');
  emit('display');
  emit('shapes');
  await showPixels(seq);
}

function channelCount(img) {
  const c = img.channels;
  if (Array.isArray(c)) return c.length;
  return Number.isInteger(c) && c > 0 ? c : 3;
}

/** What the display controls offer for this image. */
export function displayNeeds(img) {
  if (!img) return { pages: 1, channels: 0, stretch: false, picker: false };
  const channels = channelCount(img);
  const special = (img.dtype && img.dtype !== 'uint8') || channels > 3 || channels === 2;
  return { pages: Math.max(1, img.pages || 1), channels, stretch: !!special, picker: !!special && channels >= 2 };
}

function defaultDisplay(img, prev) {
  const needs = displayNeeds(img);
  // Keep channel and stretch choices while browsing a stack of images that look alike.
  if (prev && prev.nch === needs.channels) return { ...prev, page: 0 };
  const rgb = needs.channels >= 3;
  return { nch: needs.channels, page: 0, mode: rgb ? 'rgb' : 'gray', channels: rgb ? [0, 1, 2] : [0],
    lo: DEFAULT_LO, hi: DEFAULT_HI };
}

export function pixelUrl(img, display) {
  const needs = displayNeeds(img);
  const q = [`page=${display.page}`];
  if (needs.picker) q.push(`channels=${(display.mode === 'gray' ? display.channels.slice(0, 1) : display.channels).join(',')}`);
  if (needs.stretch) q.push(`lo=${display.lo}`, `hi=${display.hi}`);
  return `pixels/image/${encodeURIComponent(img.id)}?${q.join('&')}`;
}

export function thumbUrl(id) {
  return `pixels/thumb/${encodeURIComponent(id)}`;
}

function showImageError(message) {
  state.imageError = message;
  if (canvas) canvas.setShapes([]);
  emit('current');
}

async function showPixels(seq) {
  const img = state.current;
  if (img.error) {
    showImageError(img.error);
    return;
  }
  if (!canvas) return;
  try {
    await track(canvas.setImage({ url: pixelUrl(img, state.display), width: img.width, height: img.height }));
  } catch {
    if (seq !== imageSeq) return;
    // The backend records why (images.changed follows); ask now to show the reason at once.
    const fresh = await api('image.get', { id: img.id }).catch(() => null);
    updateImage(fresh || img);
    showImageError((fresh && fresh.error) || 'This image could not be displayed.');
    return;
  }
  if (seq !== imageSeq) return;
  state.shownId = img.id;
  canvas.setShapes(state.shapes); // keeps the canvas's selection when the shape is still there
}

/** Page, channels or stretch changed: reload the pixels, keep the shapes. */
export async function setDisplay(partial) {
  if (!state.current || !state.display) return;
  const next = { ...state.display, ...partial };
  if (!(next.lo >= 0 && next.lo < next.hi && next.hi <= 100)) {
    say('The low percentile must be below the high one (0–100).', 'error');
    emit('display');
    return;
  }
  state.display = next;
  emit('display');
  await showPixels(++imageSeq);
}

export function resetStretch() {
  return setDisplay({ lo: DEFAULT_LO, hi: DEFAULT_HI });
}
