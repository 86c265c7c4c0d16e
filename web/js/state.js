// What the page knows, in one plain object, plus a tiny event bus so panels re-render when a
// part changes. Actions (actions.js) are the only writers; panels read and listen.

export const state = {
  info: null,          // app.info answer
  project: null,       // project summary or null
  recent: [],          // [{path, name, exists}]
  images: [],          // every image record of the project, in backend order
  byId: new Map(),     // image id -> record (same objects as in `images`)
  filter: { status: 'all', query: '' },
  visible: [],         // records passing the filter, in list order
  currentId: null,
  shownId: null, // the image whose pixels the canvas shows (differs from currentId while loading)
  current: null,       // image.get answer for the current image (pages, channels, dtype)
  display: null,       // {page, mode:'rgb'|'gray', channels:[...], lo, hi} for the current image
  shapes: [],
  selectedId: null,
  classes: [],
  activeClassId: null,
  edit: { can_undo: false, can_redo: false, undo: null, redo: null },
  tool: 'box',
  labelsVisible: true,
  theme: 'dark',
  cursor: null,        // {x, y} in image pixels, or null when outside
  scale: null,         // canvas zoom (1 = 100 %)
  loading: false,      // a project is being opened
  imageError: null,    // why the current image could not be shown
  message: null,       // {text, kind, at}: the status bar's latest line
  sideTab: 'classes',  // the right sidebar's tab: classes | assist | review
  ai: {
    models: null,      // models.list answer (null until known)
    settings: { auto_accept: null },
    queue: [],         // review.queue answer: pending proposals, lowest score first
    runs: [],          // runs.list answer
    run: null,         // the run this page is following: {job, run, kind, state, done, total, eta_s, message}
    lastRun: null,     // how the last run this page followed ended: {run, kind, done, failed, state}
    busy: {},          // what is in flight: {detect, similar, boxes, install}: true while running
    progress: {},      // per busy key: {done, total, message}
    segment: { mode: null, busy: false, score: null, area: null, error: null },
  },
};

const bus = new EventTarget();

/** Parts: project, images, filter, current, display, shapes, selection, classes, edit, tool,
 * labels, theme, cursor, view, status (messages), loading, sidetab, and for AI-assisted
 * labeling: models, settings, queue, runs, busy, segment. */
export function emit(part, detail = null) {
  bus.dispatchEvent(new CustomEvent(part, { detail }));
}

/** listen('shapes', fn) or listen(['a', 'b'], fn) -> unsubscribe(). */
export function listen(parts, handler) {
  const offs = [];
  for (const part of [].concat(parts)) {
    const fn = (e) => handler(e.detail, part);
    bus.addEventListener(part, fn);
    offs.push(() => bus.removeEventListener(part, fn));
  }
  return () => offs.forEach((off) => off());
}

export function classById(id) {
  return state.classes.find((c) => c.id === id) || null;
}

export function currentIndex() {
  return state.visible.findIndex((img) => img.id === state.currentId);
}
