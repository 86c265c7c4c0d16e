// The Review tab: this image's proposals (accept all, keys), the auto-accept setting (off by
// default), and the project's review queue, lowest score first; an entry opens its image with
// the proposal selected.
import { h, fill, formatCount, safeColor } from '../dom.js';
import { icon } from '../icons.js';
import { state, listen, classById } from '../state.js';
import { guard } from '../toast.js';
import { hint } from '../keys.js';
import * as Review from '../ai/review.js';

const DEFAULT_AUTO = 0.9;

export function mountReview(root) {
  const here = h('div', { class: 'review-here' });
  const auto = h('div', { class: 'auto-accept' });
  const list = h('div', { class: 'queue', role: 'list', 'aria-label': 'Proposals to review' });
  const queueHead = h('div', { class: 'queue-head' });
  fill(root, here, auto, queueHead, h('div', { class: 'queue-scroll' }, list));

  const acceptAll = guard(() => Review.acceptAll(), 'accepting the proposals');
  const open = guard((entry) => Review.openEntry(entry), 'opening the proposal');
  const setAuto = guard((v) => Review.setAutoAccept(v), 'changing auto-accept');

  function renderHere() {
    const n = state.currentId === null ? 0 : Review.proposals().length;
    fill(here,
      h('div', { class: 'review-line' },
        h('span', { class: 'review-count' }, n ? `${formatCount(n)} ${n === 1 ? 'proposal' : 'proposals'} on this image` : 'No proposals on this image'),
        h('button', { class: 'btn btn-small', disabled: !n, title: hint('Accept every proposal on this image', 'Ctrl+Enter'), onclick: acceptAll },
          icon('check'), h('span', {}, 'Accept all'))),
      h('div', { class: 'key-row' }, h('kbd', {}, 'Tab'), h('span', {}, 'next'), h('kbd', {}, 'Enter'), h('span', {}, 'accept'),
        h('kbd', {}, 'Esc'), h('span', {}, 'reject')));
  }

  let autoValue = DEFAULT_AUTO;
  function renderAuto() {
    const v = state.ai.settings ? state.ai.settings.auto_accept : null;
    const on = typeof v === 'number';
    if (on) autoValue = v;
    const box = h('input', { type: 'checkbox', checked: on, 'aria-label': 'Auto-accept proposals above a score' });
    const num = h('input', { type: 'number', class: 'input input-number', min: 0, max: 1, step: 0.01, value: autoValue.toFixed(2),
      disabled: !on, 'aria-label': 'Auto-accept score' });
    box.addEventListener('change', () => setAuto(box.checked ? clamp(Number(num.value)) : null));
    num.addEventListener('change', () => {
      const value = clamp(Number(num.value));
      autoValue = value;
      if (box.checked) setAuto(value);
    });
    num.addEventListener('keydown', (e) => { if (e.key === 'Enter') num.blur(); });
    fill(auto, h('label', { class: 'auto-label', title: 'Off by default: every proposal waits for a person' }, box,
      h('span', {}, 'Auto-accept scores ≥')), num);
  }

  function entry(e) {
    const cls = classById(e.class_id);
    return h('button', { class: ['queue-item', e.id === state.selectedId && 'current'], role: 'listitem', dataset: { id: e.id, image: e.image_id },
      title: `${e.image_name ?? ''}${e.prompt ? `\nPrompt: ${e.prompt}` : ''}`, onclick: () => open(e) },
    h('span', { class: 'swatch', vars: { '--swatch': safeColor(cls ? cls.color : null) } }),
    h('span', { class: 'queue-main' },
      h('span', { class: 'queue-class' }, cls ? cls.name : (e.prompt ? String(e.prompt) : 'no class')),
      h('span', { class: 'queue-image' }, String(e.image_name ?? `image ${e.image_id}`))),
    h('span', { class: 'queue-score mono' }, typeof e.score === 'number' ? e.score.toFixed(2) : '–'));
  }

  function renderQueue() {
    const q = state.ai.queue;
    fill(queueHead, h('h3', { class: 'section-title' }, 'Across the project'),
      h('span', { class: 'muted' }, q.length ? 'lowest score first' : ''));
    if (!state.project) { list.replaceChildren(); return; }
    if (!q.length) {
      fill(list, h('div', { class: 'list-empty' }, h('p', {}, 'Nothing to review.'),
        h('p', { class: 'muted' }, 'Proposals from “Try on this image”, runs and “find more like this” wait here until you accept or reject them.')));
      return;
    }
    fill(list, q.map(entry));
  }

  listen(['shapes', 'current', 'project'], renderHere);
  listen(['settings', 'project'], renderAuto);
  listen(['queue', 'classes', 'selection', 'project'], renderQueue);
  renderHere();
  renderAuto();
  renderQueue();
}

function clamp(v) {
  return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : DEFAULT_AUTO;
}
