// Shapes, classes and undo/redo. Every edit is committed by the backend when it happens;
// afterwards the page re-reads what the edit can have changed (shapes, class counts, the row).
import { api } from './bridge.js';
import { state, emit, classById } from './state.js';
import { getCanvas, say, selectImage, updateImage } from './actions.js';

// Latest-wins: answers to older refreshes of the same kind are dropped (edits can overlap), and
// a caller whose refresh was overtaken waits until the newer one has been applied, so after
// `await refreshShapes()` the state is never older than the call.
const seqs = {};
const newest = {};
async function latest(kind, promise, apply) {
  const seq = (seqs[kind] = (seqs[kind] || 0) + 1);
  let run = promise.then((value) => { if (seq === seqs[kind]) apply(value); });
  newest[kind] = run;
  await run;
  while (newest[kind] !== run) {
    run = newest[kind];
    await run;
  }
}

function canvasClasses() {
  return state.classes.map(({ id, name, color }) => ({ id, name, color }));
}

export async function refreshShapes() {
  const id = state.currentId;
  if (id === null) return;
  await latest('shapes', api('shapes.list', { image_id: id }), (shapes) => {
    if (id === state.currentId) applyShapes(shapes);
  });
}

function applyShapes(shapes) {
  state.shapes = shapes;
  if (state.selectedId !== null && !shapes.some((s) => s.id === state.selectedId)) state.selectedId = null;
  const canvas = getCanvas();
  if (canvas && !state.imageError) {
    canvas.setShapes(shapes);
    // select() also clears a selected vertex, so only call it when the selection differs.
    if (canvas.selectedId !== state.selectedId) canvas.select(state.selectedId);
  }
  emit('shapes');
  emit('selection');
}

export async function refreshClasses() {
  await latest('classes', api('classes.list'), applyClasses);
}

function applyClasses(classes) {
  state.classes = classes;
  if (!classes.some((c) => c.id === state.activeClassId)) state.activeClassId = classes.length ? classes[0].id : null;
  const canvas = getCanvas();
  if (canvas) {
    canvas.setClasses(canvasClasses());
    if (state.activeClassId !== null) canvas.setActiveClass(state.activeClassId);
  }
  emit('classes');
}

export async function refreshEdit() {
  await latest('edit', api('edit.state'), (edit) => {
    state.edit = edit;
    emit('edit');
  });
}

async function refreshRow(imageId) {
  if (imageId === null || imageId === undefined || !state.byId.has(imageId)) return;
  const record = await api('image.get', { id: imageId });
  if (imageId === state.currentId) state.current = { ...state.current, ...record };
  updateImage(record);
}

/** After any edit: what it can have changed. */
export async function afterEdit(imageId = state.currentId) {
  await Promise.all([
    imageId === state.currentId ? refreshShapes() : null,
    refreshClasses(),
    refreshEdit(),
    refreshRow(imageId),
  ]);
}

// --- shapes -----------------------------------------------------------------------------

/** Canvas 'create': a finished drawing in image pixels. */
export async function createShape({ kind, geometry }) {
  const imageId = state.currentId;
  if (imageId === null) return;
  if (state.shownId !== imageId) {
    // Drawn on the previous picture while the next one was loading: its coordinates belong to
    // neither image, so nothing is saved.
    say('The next image was still loading — draw the shape again.', 'error');
    return;
  }
  const args = { image_id: imageId, kind, geometry };
  if (state.activeClassId !== null) args.class_id = state.activeClassId;
  await api('shapes.add', args);
  const cls = classById(state.activeClassId);
  say(`Added ${kind}${cls ? ` · ${cls.name}` : ' (no class)'}`);
  await afterEdit(imageId);
}

/** Canvas 'change': a shape was moved or reshaped. */
export async function changeShape({ id, geometry }) {
  await api('shapes.update', { id, geometry });
  await afterEdit();
}

export function selectShape(id) {
  state.selectedId = id === undefined ? null : id;
  emit('selection');
}

/** Delete / Backspace: a selected vertex first (the canvas knows), else the selected shape. */
export async function deleteSelection() {
  const canvas = getCanvas();
  if (canvas && canvas.deleteVertex && canvas.deleteVertex()) return; // the canvas sends 'change'
  const id = state.selectedId;
  if (id === null) return;
  state.selectedId = null;
  if (canvas) canvas.select(null);
  emit('selection');
  await api('shapes.delete', { id });
  say('Deleted shape');
  await afterEdit();
}

/** 1–9 or a click on a class: re-class the selected shape if any; the class becomes active. */
export async function chooseClass(classId) {
  if (!classById(classId)) return;
  setActiveClass(classId);
  const id = state.selectedId;
  const shape = id !== null && state.shapes.find((s) => s.id === id);
  if (!shape || shape.class_id === classId) return;
  await api('shapes.update', { id, class_id: classId });
  say(`Shape is now ${classById(classId).name}`);
  await afterEdit();
}

export function chooseClassByKey(key) {
  const cls = state.classes.find((c) => c.key === key);
  if (cls) return chooseClass(cls.id);
  say(`No class has the key ${key}.`);
  return null;
}

export function setActiveClass(classId) {
  state.activeClassId = classId;
  const canvas = getCanvas();
  if (canvas && classId !== null) canvas.setActiveClass(classId);
  emit('classes');
}

// --- classes ----------------------------------------------------------------------------

async function afterClassEdit() {
  await Promise.all([refreshClasses(), refreshShapes(), refreshEdit()]);
}

export async function addClass(name, color) {
  const args = { name };
  if (color) args.color = color;
  const cls = await api('classes.add', args);
  await afterClassEdit();
  setActiveClass(cls.id);
  return cls;
}

export async function renameClass(id, name) {
  await api('classes.rename', { id, name });
  await afterClassEdit();
}

export async function recolorClass(id, color) {
  await api('classes.recolor', { id, color });
  await afterClassEdit();
}

export async function deleteClass(id) {
  await api('classes.delete', { id });
  await afterClassEdit();
}

export async function mergeClasses(source, target) {
  await api('classes.merge', { source, target });
  await afterClassEdit();
}

// --- undo / redo ------------------------------------------------------------------------

function drawingPolygon() {
  const canvas = getCanvas();
  return !!(canvas && canvas.isDrawing && canvas.tool === 'polygon');
}

async function travel(method, verb) {
  const result = await api(method);
  if (!result) {
    say(`Nothing to ${verb.toLowerCase()}.`);
    return;
  }
  say(`${verb === 'Undo' ? 'Undid' : 'Redid'}: ${result.description || 'last edit'}`);
  const target = result.image_id;
  // Go to where the edit happened, so the person sees what changed.
  if (target !== null && target !== undefined && target !== state.currentId && state.byId.has(target)) {
    await selectImage(target);
    await Promise.all([refreshClasses(), refreshEdit(), refreshRow(target)]);
  } else {
    await afterEdit(target ?? state.currentId);
  }
}

export function undo() {
  if (drawingPolygon()) {
    getCanvas().undoLastVertex();
    return null;
  }
  return travel('edit.undo', 'Undo');
}

export function redo() {
  return travel('edit.redo', 'Redo');
}
