// The prompt editor of the Assist tab: per class, the phrases the detector looks for and the
// class's threshold. The class name is offered as a phrase, never put in without asking.
// Edits re-score the current image at once (see ai/detect.js); a card being edited is never
// rebuilt under the person's cursor.
import { h, fill, safeColor } from '../dom.js';
import { icon } from '../icons.js';
import { state, listen, classById } from '../state.js';
import { reportError } from '../toast.js';
import { editPrompts, promptsOf, thresholdOf } from '../ai/detect.js';

const MAX_PHRASE = 200;
const NAV_KEYS = new Set(['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End', 'PageUp', 'PageDown']);

/** The phrases of class `id` now (records are replaced on every refresh; closures keep ids). */
const phrasesNow = (id) => promptsOf(classById(id));

/** Let go of a field in `body` so the card may be redrawn (it is not while one has the focus). */
function release(body) {
  if (body.contains(document.activeElement)) document.activeElement.blur();
}

export function mountPrompts(root) {
  const cards = new Map(); // class id -> {el, sig}
  // Not guard(): the draft must change now (the card is rebuilt right after), the call later.
  const edit = (id, change) => editPrompts(id, change).catch((err) => reportError(err, 'saving the prompt'));

  function signature(cls) {
    return JSON.stringify([cls.name, cls.color, promptsOf(cls), thresholdOf(cls)]);
  }

  function phraseInput(cls, phrases, i, body) {
    const input = h('input', { class: 'input phrase-input', value: phrases[i], maxlength: MAX_PHRASE, spellcheck: false,
      placeholder: `e.g. ${cls.name}`, 'aria-label': `Phrase ${i + 1} for ${cls.name}` });
    input.addEventListener('input', () => {
      const now = phrasesNow(cls.id);
      now[i] = input.value;
      edit(cls.id, { prompts: now });
    });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === 'Escape') {
        e.preventDefault();
        input.blur();
      }
    });
    // Leaving the field: show what is stored now (an empty phrase is dropped once saved).
    input.addEventListener('blur', () => setTimeout(render, 0));
    const remove = h('button', { class: 'icon-btn icon-btn-small', title: 'Remove this phrase', 'aria-label': `Remove phrase ${i + 1} of ${cls.name}`,
      onclick: () => {
        const now = phrasesNow(cls.id);
        now.splice(i, 1);
        release(body);
        edit(cls.id, { prompts: now });
      } }, icon('x'));
    return h('div', { class: 'phrase' }, input, remove);
  }

  /** (Re)build the inside of a class's card. */
  function build(cls, body) {
    const phrases = promptsOf(cls);
    const t = thresholdOf(cls);
    const value = h('span', { class: 'threshold-value mono' }, t.toFixed(2));
    const slider = h('input', { type: 'range', class: 'threshold', min: 0, max: 1, step: 0.01, value: String(t),
      'aria-label': `Threshold for ${cls.name}`, title: 'Proposals scoring below this are not shown' });
    slider.addEventListener('input', () => {
      value.textContent = Number(slider.value).toFixed(2);
      edit(cls.id, { threshold: Number(slider.value) });
    });
    // Arrow keys adjust the slider; they must not also go to the previous / next image.
    slider.addEventListener('keydown', (e) => { if (NAV_KEYS.has(e.key)) e.stopPropagation(); });
    // After a mouse drag, give the keys back to the page (Tab, Enter review proposals).
    slider.addEventListener('pointerup', () => setTimeout(() => slider.blur(), 0));
    const add = h('button', { class: 'btn btn-small btn-ghost add-phrase', title: 'Add a phrase to look for',
      onclick: () => {
        release(body);
        edit(cls.id, { prompts: [...phrasesNow(cls.id), ''] }); // the card is redrawn at once
        const inputs = body.querySelectorAll('.phrase-input');
        if (inputs.length) inputs[inputs.length - 1].focus();
      } }, icon('plus'), h('span', {}, phrases.length ? 'Phrase' : 'Add phrase'));
    const suggest = phrases.length ? null : h('button', { class: 'btn btn-small suggest', title: 'Look for the class name itself',
      onclick: () => { release(body); edit(cls.id, { prompts: [cls.name] }); } }, h('span', {}, 'Use “'), h('span', { class: 'suggest-name' }, cls.name), h('span', {}, '”'));
    fill(body,
      phrases.length ? h('div', { class: 'phrases' }, phrases.map((_, i) => phraseInput(cls, phrases, i, body)))
        : h('div', { class: 'muted no-phrase' }, 'Not looked for yet.'),
      h('div', { class: 'phrase-actions' }, suggest, add),
      h('div', { class: 'threshold-row' }, h('span', { class: 'field-label' }, 'Threshold'), slider, value));
  }

  /** A class's card: its head (color, name) and body; update() redraws both in place. */
  function card(cls) {
    const swatch = h('span', { class: 'swatch' });
    const name = h('span', { class: 'prompt-class' });
    const body = h('div', { class: 'prompt-body' });
    const el = h('section', { class: 'prompt-card', dataset: { id: cls.id } }, h('div', { class: 'prompt-head' }, swatch, name), body);
    const entry = { el, body, sig: null, update: (c) => {
      const color = safeColor(c.color);
      el.style.setProperty('--swatch', color);
      swatch.style.setProperty('--swatch', color);
      name.textContent = c.name;
      build(c, body);
      entry.sig = signature(c);
    } };
    cards.set(cls.id, entry);
    entry.update(cls);
    return entry;
  }

  function render() {
    if (!state.project || !state.classes.length) {
      cards.clear();
      fill(root, state.project ? h('div', { class: 'muted pane-note' }, 'Add a class first (Classes tab); then tell the detector what each class looks like.') : null);
      return;
    }
    const wanted = [];
    for (const cls of state.classes) {
      let entry = cards.get(cls.id);
      if (!entry) entry = card(cls);
      // Name, color or phrases changed (an edit here, an undo): redraw, unless the person is
      // typing or sliding in this card (what they see is what the draft holds anyway).
      else if (entry.sig !== signature(cls) && !entry.el.contains(document.activeElement)) entry.update(cls);
      wanted.push(entry.el);
    }
    for (const id of [...cards.keys()]) if (!state.classes.some((c) => c.id === id)) cards.delete(id);
    const current = [...root.children];
    if (current.length !== wanted.length || current.some((el, i) => el !== wanted[i])) root.replaceChildren(...wanted);
  }

  listen(['classes', 'prompts', 'project'], render);
  render();
}
