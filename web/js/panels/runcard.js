// The run card of the Assist tab: the batch run being followed (progress, ETA, pause, cancel),
// how the last one ended (with every file that failed and why), and unfinished runs to resume.
import { h, fill, formatCount } from '../dom.js';
import { icon } from '../icons.js';
import { state, listen } from '../state.js';
import { guard } from '../toast.js';
import * as Runs from '../ai/runs.js';

function bar(done, total) {
  const pct = total ? Math.min(100, (done / total) * 100) : 0;
  return h('div', { class: 'run-track', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': total || 0, 'aria-valuenow': done },
    h('div', { class: 'run-fill', vars: { '--pct': `${pct.toFixed(2)}%` } }));
}

function when(created) {
  const t = typeof created === 'number' ? new Date(created < 1e12 ? created * 1000 : created) : new Date(String(created));
  return Number.isNaN(t.getTime()) ? '' : t.toLocaleString();
}

export function mountRunCard(root) {
  const pause = guard(() => Runs.pauseRun(), 'pausing the run');
  const cancel = guard(() => Runs.cancelRun(), 'cancelling the run');
  const resume = guard((r) => Runs.resumeRun(r), 'resuming the run');

  function failures(list) {
    if (!list.length) return null;
    return h('details', { class: 'run-failures', open: list.length <= 5 },
      h('summary', {}, `${formatCount(list.length)} ${list.length === 1 ? 'file' : 'files'} skipped`),
      h('ul', { class: 'failure-list' }, list.map((f) => h('li', { class: 'failure', title: String(f.reason ?? '') },
        h('span', { class: 'failure-name' }, String(f.name ?? `image ${f.image_id}`)),
        h('span', { class: 'failure-reason' }, String(f.reason ?? ''))))));
  }

  function live(r) {
    const label = Runs.KIND_LABEL[r.kind] || 'Run';
    const after = r.stopAsked ? ' after this image' : '';
    const status = r.stopping === 'pause' ? `Pausing${after}…` : r.stopping === 'cancel' ? `Cancelling${after}…`
      : r.total ? `${formatCount(r.done)} of ${formatCount(r.total)}` : 'Starting…';
    return h('div', { class: 'run-card live' },
      h('div', { class: 'run-head' }, h('span', { class: 'run-title' }, label), h('span', { class: 'run-status mono' }, status)),
      bar(r.done, r.total),
      h('div', { class: 'run-meta' }, h('span', { class: 'run-eta' }, Runs.formatEta(r.eta_s)),
        h('span', { class: 'run-actions' },
          h('button', { class: 'btn btn-small', disabled: !!r.stopping, onclick: pause, title: 'Stop after the current image; resume later' }, icon('pause'), h('span', {}, 'Pause')),
          h('button', { class: 'btn btn-small', disabled: !!r.stopping, onclick: cancel, title: 'Stop the run' }, icon('stop'), h('span', {}, 'Cancel')))));
  }

  function ended(r) {
    const label = Runs.KIND_LABEL[r.kind] || 'Run';
    const text = r.state === 'done' ? `Finished · ${formatCount(r.done)} ${r.done === 1 ? 'image' : 'images'}`
      : `${r.state === 'paused' ? 'Paused' : 'Cancelled'} at ${formatCount(r.done)} of ${formatCount(r.total)}`;
    return h('div', { class: ['run-card', `run-${r.state}`] },
      h('div', { class: 'run-head' }, h('span', { class: 'run-title' }, label), h('span', { class: 'run-status' }, text)),
      r.state === 'done' ? null : bar(r.done, r.total),
      failures(Runs.failuresOf(r)));
  }

  function resumable(r) {
    const label = Runs.KIND_LABEL[r.kind] || String(r.kind);
    const nFailed = Runs.failedCount(r);
    return h('div', { class: 'run-card run-resumable' },
      h('div', { class: 'run-head' }, h('span', { class: 'run-title' }, label),
        h('span', { class: 'run-status' }, `${String(r.state)} · ${formatCount(r.done || 0)} of ${formatCount(r.total || 0)}`)),
      bar(r.done || 0, r.total || 0),
      h('div', { class: 'run-meta' }, h('span', { class: 'muted' }, [when(r.created), nFailed ? `${nFailed} skipped` : ''].filter(Boolean).join(' · ')),
        h('button', { class: 'btn btn-small', disabled: !!state.ai.run, onclick: () => resume(r), title: 'Go on where it stopped; no image is done twice' },
          icon('play'), h('span', {}, 'Resume'))),
      failures(Runs.failuresOf(r)));
  }

  function render() {
    const parts = [];
    const unfinished = Runs.unfinishedRuns();
    const last = state.ai.lastRun;
    if (state.ai.run) parts.push(live(state.ai.run));
    // A paused or cancelled run shows once: as a run to resume when the list has it.
    else if (last && !(last.state !== 'done' && unfinished.some((r) => r.run === last.run))) parts.push(ended(last));
    for (const r of unfinished) parts.push(resumable(r));
    root.hidden = !parts.length;
    fill(root, parts);
  }

  listen(['runs', 'project'], render);
  render();
}
