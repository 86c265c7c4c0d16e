// The Assist tab: which models are at work, the class prompts with "try on this image" and
// "run on all images", the run card, and segmenting (click tool, all boxes).
import { h, fill } from '../dom.js';
import { icon } from '../icons.js';
import { state, listen } from '../state.js';
import { guard } from '../toast.js';
import { hint, setTool } from '../keys.js';
import { isBusy } from '../ai/busy.js';
import { activePack } from '../ai/models.js';
import * as Detect from '../ai/detect.js';
import * as Runs from '../ai/runs.js';
import * as Segment from '../ai/segment.js';
import { mountPrompts } from './prompts.js';
import { mountRunCard } from './runcard.js';

function section(title, ...children) {
  return h('section', { class: 'assist-section' }, h('h3', { class: 'section-title' }, title), ...children);
}

function openModels() {
  return import('./models.js').then((m) => m.showModels());
}

function spinnerLabel(busy, idle, working) {
  return busy ? [h('span', { class: 'spinner spinner-small', 'aria-hidden': 'true' }), h('span', {}, working)] : idle;
}

export function mountAssist(root) {
  const modelCard = h('div', { class: 'model-card' });
  const prompts = h('div', { class: 'prompt-list' });
  const detectActions = h('div', { class: 'assist-actions stacked' });
  const runCard = h('div', { class: 'run-slot' });
  const segmentBody = h('div', { class: 'segment-body' });

  fill(root, h('div', { class: 'pane-scroll' },
    modelCard,
    section('Find objects by text',
      h('p', { class: 'pane-note' }, 'Describe each class in a few words. Proposals below a class’s threshold are hidden.'),
      prompts, detectActions, runCard),
    section('Segment by clicking', segmentBody)));

  mountPrompts(prompts);
  mountRunCard(runCard);

  const tryHere = guard(() => Detect.detectImage(), 'detecting objects');
  const runAll = guard(() => Runs.startRun('detect'), 'starting the run');
  const boxesHere = guard(() => Segment.segmentBoxesHere(), 'segmenting the boxes');
  const boxesAll = guard(() => Runs.startRun('segment_boxes'), 'starting the run');

  function renderModels() {
    const m = state.ai.models;
    const det = activePack('detector');
    const seg = activePack('segmenter');
    const none = m && Array.isArray(m.packs) && !m.packs.length;
    const line = (label, pack, fallback) => h('div', { class: 'model-line' }, h('span', { class: 'model-task' }, label),
      pack ? h('span', { class: 'model-name', title: `${pack.id}@${pack.version ?? ''}` }, `${pack.name || pack.id}${pack.version ? ` ${pack.version}` : ''}`)
        : h('span', { class: 'model-name muted' }, fallback));
    fill(modelCard,
      none ? h('p', { class: 'pane-note' }, 'No model packs installed yet. Smart select (S) works without one; add a detector to find objects by text.')
        : [line('Detector', det, 'none chosen'), line('Segmenter', seg, 'none — smart select')],
      h('button', { class: 'btn btn-small', onclick: openModels }, icon('cpu'), h('span', {}, none ? 'Add a model pack…' : 'Models…')));
  }

  function renderActions() {
    const det = !!activePack('detector');
    const ready = !!state.project && state.currentId !== null && det && Detect.hasPrompts();
    const why = !det ? 'Choose a detector under Models first' : !Detect.hasPrompts() ? 'Give a class a phrase first' : null;
    const busy = isBusy('detect');
    fill(detectActions,
      h('button', { class: 'btn btn-primary btn-small', disabled: !ready || busy, title: why || hint('Find the prompts on this image', 'T'), onclick: tryHere },
        spinnerLabel(busy, [icon('sparkles'), h('span', {}, 'Try on this image')], 'Detecting…')),
      h('button', { class: 'btn btn-small', disabled: !ready || !!state.ai.run, title: why || 'Detect on every image, in the background', onclick: runAll },
        icon('play'), h('span', {}, 'Run on all images')));
  }

  function renderSegment() {
    const seg = activePack('segmenter');
    const busy = isBusy('boxes');
    const s = state.ai.segment;
    const on = state.tool === 'segment';
    const status = on && (s.busy ? 'Computing the mask…' : s.error ? s.error
      : s.score !== null ? `Mask ready (score ${Number(s.score).toFixed(2)}) — Enter keeps it, Esc clears` : null);
    fill(segmentBody,
      h('p', { class: 'pane-note' }, seg ? 'Click an object; Shift+click excludes a part; drag a box around it. More clicks refine the mask.'
        : 'No segmenter pack is active: the tool uses smart select, which needs no model (a click or a box; good on clear edges).'),
      h('div', { class: 'assist-actions' },
        h('button', { class: ['btn', 'btn-small', on && 'active'], title: hint('Segment tool', 'S'), onclick: () => setTool(on ? 'select' : 'segment') },
          icon('wand'), h('span', {}, on ? 'Segment tool on' : 'Segment tool'))),
      status ? h('div', { class: ['seg-status', s.error && 'error'], role: 'status' }, status) : null,
      h('div', { class: 'assist-subtitle' }, 'Turn boxes into masks'),
      h('div', { class: 'assist-actions split' },
        h('button', { class: 'btn btn-small', disabled: !seg || busy || state.currentId === null, title: seg ? 'Segment every box on this image' : 'Needs a segmenter pack', onclick: boxesHere },
          spinnerLabel(busy, h('span', {}, 'This image'), 'Segmenting…')),
        h('button', { class: 'btn btn-small', disabled: !seg || !!state.ai.run, title: seg ? 'Segment the boxes of every image, in the background' : 'Needs a segmenter pack', onclick: boxesAll },
          h('span', {}, 'All images'))));
  }

  listen(['models', 'project'], renderModels);
  listen(['models', 'classes', 'prompts', 'current', 'busy', 'runs', 'project'], renderActions);
  listen(['models', 'segment', 'tool', 'busy', 'runs', 'current'], renderSegment);
  renderModels();
  renderActions();
  renderSegment();
}
