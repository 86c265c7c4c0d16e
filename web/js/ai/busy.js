// What AI work is in flight, so buttons can show a spinner and not start the same job twice.
import { state, emit } from '../state.js';

/** setBusy('detect', true, {done, total, message}) / setBusy('detect', false) */
export function setBusy(key, on, progress = null) {
  if (on) {
    state.ai.busy[key] = true;
    if (progress) state.ai.progress[key] = { done: progress.done, total: progress.total, message: progress.message || '' };
  } else {
    delete state.ai.busy[key];
    delete state.ai.progress[key];
  }
  emit('busy');
}

export function isBusy(key) {
  return !!state.ai.busy[key];
}
