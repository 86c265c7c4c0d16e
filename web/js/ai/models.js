// Model packs: what is installed, which detector and segmenter are active, install and unload.
// The page never loads a model itself: activating only records the choice (loading is lazy, on
// the backend, off the GUI thread).
import { api, apiJob } from '../bridge.js';
import { state, emit } from '../state.js';
import { toast } from '../toast.js';
import { setBusy } from './busy.js';

/** Take a models.list answer (from a call or a models.changed event). */
export function applyModels(models) {
  state.ai.models = models && typeof models === 'object' ? models : null;
  emit('models');
}

export async function refreshModels() {
  applyModels(await api('models.list'));
}

/** The active pack record of a task ('detector' | 'segmenter'), or null. */
export function activePack(task) {
  const m = state.ai.models;
  const id = m && m.active ? m.active[task] : null;
  if (id === null || id === undefined) return null;
  return (m.packs || []).find((p) => p.id === id) || { id, name: String(id), task };
}

export function packsOf(task) {
  const m = state.ai.models;
  return m && Array.isArray(m.packs) ? m.packs.filter((p) => p.task === task) : [];
}

export async function activate(task, id) {
  applyModels(await api('models.activate', { task, id }));
}

export async function unload(task) {
  applyModels(await api('models.unload', task ? { task } : {}));
  toast(task ? `The ${task} was unloaded; it loads again when next used.` : 'Models unloaded; they load again when next used.');
}

/** The native file/folder dialog, then install (a job: verifying and copying can take a while). */
export async function installFromPicker() {
  setBusy('install', true, { message: 'Installing the pack' });
  try {
    const pack = await apiJob('models.pick_install', {}, {
      onProgress: (p) => setBusy('install', true, p),
    });
    if (!pack) return null; // the dialog was cancelled
    toast(`Installed ${pack.name || pack.id} ${pack.version || ''}`.trim(), { kind: 'success' });
    await refreshModels();
    return pack;
  } finally {
    setBusy('install', false);
  }
}

/** "12.3 MB" */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 0) return '';
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${v >= 100 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}
