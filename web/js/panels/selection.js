// The selected shape's card: its class, whether it is a proposal, and where it came from
// (provenance: pack@version or manual, the prompt or clicks, the score), with the actions
// that apply to it. Everything from the store is shown as text.
import { h, fill, safeColor } from '../dom.js';
import { icon } from '../icons.js';
import { state, listen, classById } from '../state.js';
import { guard } from '../toast.js';
import { hint } from '../keys.js';
import * as Review from '../ai/review.js';
import * as Detect from '../ai/detect.js';
import { isBusy } from '../ai/busy.js';
import { startRun } from '../ai/runs.js';

/** A prompt as a person reads it: phrases as they are, clicks summarized. */
export function describePrompt(prompt) {
  if (prompt === null || prompt === undefined || prompt === '') return '';
  const text = String(prompt);
  let parsed = null;
  if (text.startsWith('{') || text.startsWith('[')) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  const points = parsed && Array.isArray(parsed.points) ? parsed.points : Array.isArray(parsed) ? parsed : null;
  if (points && points.every((p) => Array.isArray(p))) {
    const pos = points.filter((p) => p[2] !== 0).length;
    const neg = points.length - pos;
    const parts = [];
    if (pos) parts.push(`${pos} ${pos === 1 ? 'click' : 'clicks'} on the object`);
    if (neg) parts.push(`${neg} excluded`);
    if (parsed && parsed.box) parts.push('a box');
    return parts.join(', ') || 'clicks';
  }
  if (parsed && parsed.box) return 'a box';
  return text;
}

export function describeSource(source) {
  if (!source || source === 'manual') return 'Drawn by hand';
  return String(source);
}

export function mountSelection(root) {
  const accept = guard(() => Review.acceptSelected(), 'accepting the proposal');
  const reject = guard(() => Review.rejectSelected(), 'rejecting the proposal');
  const similar = guard(() => Detect.findSimilar(), 'finding similar objects');
  // The whole project: a `similar` run (pausable, resumable), followed in the runs card.
  const similarAll = guard(() => state.selectedId !== null && startRun('similar', null, { shape_id: state.selectedId }),
    'finding similar objects on all images');

  function row(label, value, extra = {}) {
    return h('div', { class: 'prov-row' }, h('span', { class: 'prov-label' }, label),
      h('span', { class: ['prov-value', extra.mono && 'mono'], title: extra.title || String(value) }, value));
  }

  function render() {
    const shape = state.selectedId !== null && (state.shapes || []).find((s) => s.id === state.selectedId);
    root.hidden = !shape;
    if (!shape) {
      root.replaceChildren();
      return;
    }
    const cls = classById(shape.class_id);
    const pending = shape.status === 'pending';
    const prompt = describePrompt(shape.prompt);
    const details = [row('Source', describeSource(shape.source), { mono: shape.source && shape.source !== 'manual' })];
    if (prompt) details.push(row('Prompt', prompt, { title: String(shape.prompt) }));
    if (typeof shape.score === 'number') details.push(row('Score', shape.score.toFixed(3), { mono: true }));
    const busy = isBusy('similar');
    fill(root, h('div', { class: ['selection-card', 'selection-hint', pending && 'pending'] },
      h('div', { class: 'selection-line' },
        h('span', { class: 'selection-kind' }, `Selected ${shape.kind}`),
        cls ? h('span', { class: 'selection-class', vars: { '--swatch': safeColor(cls.color) } }, cls.name)
          : h('span', { class: 'muted' }, 'no class'),
        pending ? h('span', { class: 'badge badge-proposal', title: 'Made by a model, waiting for review' }, 'Proposal') : null),
      h('div', { class: 'prov' }, details),
      pending ? h('div', { class: 'selection-actions' },
        h('button', { class: 'btn btn-small btn-primary', title: hint('Accept this proposal', 'Enter'), onclick: accept }, icon('check'), h('span', {}, 'Accept')),
        h('button', { class: 'btn btn-small', title: hint('Reject this proposal', 'Esc'), onclick: reject }, icon('x'), h('span', {}, 'Reject'))) : null,
      h('div', { class: 'selection-actions' },
        h('button', { class: 'btn btn-small btn-ghost', disabled: busy, title: hint('Find more objects like this one on this image', 'M'), onclick: similar },
          icon('copy'), h('span', {}, busy ? 'Looking…' : 'Find more like this')),
        h('button', { class: 'btn btn-small btn-ghost', disabled: Boolean(state.ai.run), title: 'Find more objects like this one on every image (a run you can pause and resume)', onclick: similarAll },
          h('span', {}, '…on all images'))),
      h('div', { class: 'muted selection-tip' }, 'Click a class or press 1–9 to change its class.')));
  }

  listen(['shapes', 'current', 'selection', 'classes', 'busy', 'runs'], render);
  render();
}
