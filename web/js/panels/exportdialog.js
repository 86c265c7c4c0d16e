// The Export dialog (issue 5): a format, one line each on what it is for; the options that
// format honours; the folder to write into. Then progress with Cancel, then a summary that
// lists every shape that could not be exported and why. The Import dialog (importdialog.js)
// shares the pieces exported below. Everything from a project, a file or the backend is
// inserted as text (dom.h), never as HTML. Closing the dialog while a job runs lets it finish
// in the background; a notification says how it ended.
import { h, fill, plural } from '../dom.js';
import { icon } from '../icons.js';
import { modal } from '../dialog.js';
import { api, apiJob } from '../bridge.js';
import { state } from '../state.js';
import { toast, reportError } from '../toast.js';

// --- shared with the Import dialog ---------------------------------------------------------

let catalog = null;

/** export.formats, asked once per page. */
export async function formatCatalog() {
  if (!catalog) catalog = api('export.formats').catch((err) => { catalog = null; throw err; });
  return catalog;
}

/** A radio list of formats: title, a one-line description, and `extra(info)` under the chosen one. */
export function formatList({ formats, chosen, onChoose, extra, label }) {
  const list = h('div', { class: 'xfer-formats', role: 'radiogroup', 'aria-label': label });
  const render = (current) => fill(list, formats.map((f) => {
    const on = f.id === current;
    return h('label', { class: ['xfer-format', on && 'active'], dataset: { format: f.id } },
      h('input', { type: 'radio', name: `${label}-format`, value: f.id, checked: on, disabled: !f.available,
        onchange: () => onChoose(f.id) }),
      h('span', { class: 'xfer-format-main' },
        h('span', { class: 'xfer-format-title' }, f.title),
        h('span', { class: 'xfer-format-desc' }, f.description),
        on && extra ? h('span', { class: 'xfer-format-extra' }, extra(f)) : null));
  }));
  render(chosen);
  return { el: list, render };
}

/** A titled block of the options column. */
export function section(title, ...children) {
  return h('section', { class: 'xfer-section' }, h('h3', { class: 'section-title' }, title), children);
}

/** Progress: a bar, the current step, "n of total"; `update(p)` with a job.progress payload. */
export function progressView(title) {
  const fillEl = h('div', { class: 'xfer-fill' });
  const step = h('div', { class: 'xfer-step' }, 'Starting…');
  const count = h('div', { class: 'xfer-count muted' });
  const el = h('div', { class: 'xfer-progress', role: 'status', 'aria-live': 'polite' },
    h('div', { class: 'xfer-progress-title' }, h('span', { class: 'spinner spinner-small' }), h('span', {}, title)),
    h('div', { class: 'xfer-track', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' }, fillEl),
    step, count);
  return {
    el,
    update(p) {
      const total = Number(p.total) || 0;
      const done = Math.min(Number(p.done) || 0, total);
      const pct = total ? Math.round((100 * done) / total) : 0;
      fillEl.style.setProperty('--pct', `${pct}%`);
      el.querySelector('.xfer-track').setAttribute('aria-valuenow', String(pct));
      step.textContent = String(p.message || 'Working');
      count.textContent = total > 1 ? `${done.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}` : '';
    },
    cancelling() { step.textContent = 'Stopping after the current image…'; },
  };
}

/**
 * What was left out, grouped by reason (most frequent first), each group folded open on demand.
 * `what(item)` names one item; `total` is the full count when the list was cut.
 */
export function leftOut({ items, total, reasonOf, what, heading, className = '' }) {
  const groups = new Map();
  for (const it of items) {
    const reason = String(reasonOf(it) || 'no reason given');
    if (!groups.has(reason)) groups.set(reason, []);
    groups.get(reason).push(it);
  }
  const sorted = [...groups.entries()].sort((a, b) => b[1].length - a[1].length);
  return h('div', { class: ['xfer-left-out', className] },
    h('div', { class: 'xfer-left-head' }, icon(className ? 'info' : 'alert'), h('span', {}, heading)),
    sorted.map(([reason, list]) => h('details', { class: 'xfer-group' },
      h('summary', {}, h('span', { class: 'xfer-group-count' }, String(list.length)), h('span', { class: 'xfer-group-reason' }, reason)),
      h('ul', { class: 'xfer-items' }, list.slice(0, 200).map((it) => h('li', {}, what(it))),
        list.length > 200 ? h('li', { class: 'muted' }, `… and ${list.length - 200} more`) : null))),
    total > items.length ? h('p', { class: 'muted xfer-note' }, `Showing the first ${items.length} of ${total}.`) : null);
}

/** A short view with a message and buttons (cancelled, failed). */
export function messageView(kind, title, text) {
  return h('div', { class: ['xfer-message', `xfer-${kind}`] },
    icon(kind === 'failed' ? 'alert' : 'info'), h('div', {},
      h('div', { class: 'xfer-message-title' }, title),
      text ? h('p', { class: 'dialog-text' }, text) : null));
}

export function button(label, onclick, { primary = false, disabled = false, iconName = null, dataset } = {}) {
  return h('button', { class: ['btn', primary && 'btn-primary'], disabled, onclick, dataset },
    iconName ? icon(iconName) : null, h('span', {}, label));
}

// --- the Export dialog ------------------------------------------------------------------------

// What the person chose last time, kept for the session: exporting again is one click.
const choice = {
  format: 'coco', include_pending: false, include_unlabeled: true, copy_images: true,
  split: false, train: 80, val: 10, test: 10, seed: 0, resize: false, size: 640,
  segmentation: 'polygon', folder: null,
};

function isInt(v, lo, hi) {
  return Number.isInteger(v) && v >= lo && v <= hi;
}

/** Why the form cannot be exported as it is, or '' when it can. */
export function formProblem(c) {
  if (c.split) {
    if (![c.train, c.val, c.test].every((v) => isInt(v, 0, 100))) return 'Split shares are whole percentages from 0 to 100.';
    if (c.train <= 0) return 'The training share must be above 0 %.';
    const sum = c.train + c.val + c.test;
    if (sum !== 100) return `The split must add up to 100 % (now ${sum} %).`;
    if (!isInt(c.seed, 0, 2 ** 31 - 1)) return 'The seed is a whole number from 0.';
  }
  if (c.resize && !isInt(c.size, 16, 16384)) return 'The training size is a longest side of 16 to 16384 pixels.';
  if (!c.folder) return 'Choose a folder to export into.';
  return '';
}

/** The export.run options for the choices and the format (only options it honours). */
export function optionsFor(c, info) {
  const o = { include_pending: c.include_pending, include_unlabeled: c.include_unlabeled, copy_images: c.copy_images };
  if (c.split) {
    o.split = c.test > 0 ? [c.train / 100, c.val / 100, c.test / 100] : [c.train / 100, c.val / 100];
    o.seed = c.seed;
  }
  if (c.resize) o.resize = c.size;
  if (info && info.options.includes('segmentation')) o.segmentation = c.segmentation;
  return o;
}

function check(label, key, onchange, hint) {
  return h('label', { class: 'xfer-check' },
    h('input', { type: 'checkbox', checked: !!choice[key], dataset: { option: key }, onchange: (e) => { choice[key] = e.target.checked; onchange(); } }),
    h('span', {}, h('span', {}, label), hint ? h('span', { class: 'xfer-hint' }, hint) : null));
}

function radio(name, value, label, onchange, hint) {
  return h('label', { class: 'xfer-check' },
    h('input', { type: 'radio', name, value: String(value), checked: choice[name] === value, dataset: { option: name },
      onchange: () => { choice[name] = value; onchange(); } }),
    h('span', {}, h('span', {}, label), hint ? h('span', { class: 'xfer-hint' }, hint) : null));
}

function numberInput(key, { min, max, label, width = 'narrow', onchange }) {
  return h('input', { class: ['input', 'input-number', `xfer-num-${width}`], type: 'number', min, max, step: 1,
    value: String(choice[key]), 'aria-label': label, dataset: { option: key },
    oninput: (e) => { choice[key] = e.target.value === '' ? NaN : Number(e.target.value); onchange(); } });
}

/** Open the Export dialog. Resolves when it closes. */
export async function openExportDialog() {
  if (!state.project) {
    toast('Open a folder of images first, then export its labels.');
    return null;
  }
  const formats = await formatCatalog();
  if (!formats.some((f) => f.id === choice.format && f.available)) choice.format = (formats.find((f) => f.available) || formats[0]).id;
  const info = () => formats.find((f) => f.id === choice.format);
  let open = true;
  const content = h('div', { class: 'xfer' });
  const actions = h('div', { class: 'xfer-actions' });

  const problem = h('div', { class: 'xfer-problem', role: 'alert' });
  const folderPath = h('div', { class: 'xfer-path mono' });
  const targetLine = h('div', { class: 'xfer-hint xfer-target' });
  const optionsBox = h('div', { class: 'xfer-options' });
  let exportBtn = null;
  let targetSeq = 0;

  const validate = () => {
    const text = formProblem(choice);
    problem.textContent = choice.folder ? text : '';
    if (exportBtn) exportBtn.disabled = !!text;
  };
  const refreshTarget = async () => {
    const seq = ++targetSeq;
    folderPath.textContent = choice.folder || 'No folder chosen yet';
    folderPath.classList.toggle('muted', !choice.folder);
    if (!choice.folder) { targetLine.textContent = ''; return; }
    try {
      const { path } = await api('export.target', { format: choice.format, out: choice.folder, options: optionsFor({ ...choice, resize: choice.resize && isInt(choice.size, 16, 16384) }, info()) });
      if (seq === targetSeq) targetLine.textContent = `Writes ${path}`;
    } catch (err) {
      if (seq !== targetSeq) return;
      choice.folder = null; // no longer usable (moved, or a new session): choose again
      targetLine.textContent = '';
      problem.textContent = err.message;
      folderPath.textContent = 'No folder chosen yet';
    }
  };
  const chooseFolder = async () => {
    try {
      const picked = await api('export.pick_out');
      if (picked) choice.folder = picked.folder;
      problem.textContent = '';
    } catch (err) {
      problem.textContent = err.message;
    }
    await refreshTarget();
    validate();
  };

  const renderOptions = () => {
    const f = info();
    const changed = () => validate();
    const splitInputs = h('div', { class: 'xfer-inline', hidden: !choice.split },
      h('span', { class: 'xfer-field' }, numberInput('train', { min: 1, max: 100, label: 'Training share in percent', onchange: changed }), h('span', {}, '% train')),
      h('span', { class: 'xfer-field' }, numberInput('val', { min: 0, max: 100, label: 'Validation share in percent', onchange: changed }), h('span', {}, '% val')),
      h('span', { class: 'xfer-field' }, numberInput('test', { min: 0, max: 100, label: 'Test share in percent', onchange: changed }), h('span', {}, '% test')),
      h('span', { class: 'xfer-field' }, h('span', {}, 'seed'), numberInput('seed', { min: 0, max: 2 ** 31 - 1, label: 'Seed of the split', onchange: changed, width: 'wide' })));
    const sizeInput = h('span', { class: 'xfer-field', hidden: !choice.resize },
      numberInput('size', { min: 16, max: 16384, label: 'Longest side in pixels', onchange: () => { changed(); refreshTarget(); }, width: 'wide' }), h('span', {}, 'px longest side'));
    fill(optionsBox,
      section('Shapes',
        radio('include_pending', false, 'Accepted shapes only', changed),
        radio('include_pending', true, 'Accepted shapes and pending proposals', changed, 'Proposals nobody has reviewed yet.')),
      section('Images',
        check('Include images without shapes', 'include_unlabeled', changed, 'Background images teach what is not an object.'),
        check('Copy the images', 'copy_images', changed, 'Off: labels only; put the images next to them yourself.')),
      section('Split',
        check('Split into train / val / test', 'split', () => { splitInputs.hidden = !choice.split; changed(); }, 'Seeded and stratified by class: the same seed gives the same split.'),
        splitInputs),
      section('Size',
        check('Resize for training', 'resize', () => { sizeInput.hidden = !choice.resize; changed(); refreshTarget(); }, 'Coordinates are rescaled to match; everything goes into a .zip.'),
        sizeInput),
      f && f.options.includes('segmentation') ? section('Masks',
        radio('segmentation', 'polygon', 'Polygons', changed, f.id === 'coco' ? 'A mask with holes is written as RLE all the same.' : 'A mask with holes is written as a labelme mask.'),
        radio('segmentation', 'rle', f.id === 'coco' ? 'RLE (run-length encoded)' : 'Mask images', changed)) : null,
      section('Output',
        h('div', { class: 'xfer-out' }, button('Choose folder…', chooseFolder, { iconName: 'folderOpen', dataset: { action: 'choose-out' } }), folderPath),
        targetLine));
    validate();
  };

  const formats_ = formatList({
    formats, chosen: choice.format, label: 'Export format',
    onChoose: (id) => { choice.format = id; formats_.render(id); renderOptions(); refreshTarget(); },
    extra: (f) => f.holds,
  });

  const showForm = () => {
    exportBtn = button('Export', () => run(), { primary: true, dataset: { action: 'export' } });
    fill(content, h('div', { class: 'xfer-grid' },
      h('div', { class: 'xfer-col' }, h('h3', { class: 'section-title' }, 'Format'), formats_.el),
      h('div', { class: 'xfer-col' }, optionsBox, problem)));
    renderOptions();
    refreshTarget();
    fill(actions, button('Cancel', () => close(null)), exportBtn);
  };

  const showSummary = (r) => {
    const skipped = Array.isArray(r.skipped) ? r.skipped : [];
    const notes = Array.isArray(r.notes) ? r.notes : [];
    const name = (it) => `${it.image ?? 'project'}${it.shape_id !== null && it.shape_id !== undefined ? ` · shape ${it.shape_id}` : ''}`;
    fill(content, h('div', { class: 'xfer-summary' },
      h('div', { class: 'xfer-done' }, icon('check'),
        h('div', {}, h('div', { class: 'xfer-message-title' }, `Exported ${plural(r.images, 'image')} and ${plural(r.shapes, 'shape')} as ${r.title || r.format}`),
          h('div', { class: 'xfer-path mono', title: String(r.out) }, String(r.out)))),
      r.skipped_count ? leftOut({ items: skipped, total: r.skipped_count, reasonOf: (it) => it.reason, what: name,
        heading: `${plural(r.skipped_count, 'shape or image', 'shapes or images')} could not be exported:` })
        : h('p', { class: 'dialog-text' }, 'Every shape was exported.'),
      r.notes_count ? leftOut({ items: notes, total: r.notes_count, reasonOf: (it) => it.note, what: name,
        heading: `${plural(r.notes_count, 'shape')} written in another form:`, className: 'xfer-notes' }) : null));
    fill(actions, button('Export again…', showForm), button('Close', () => close(r), { primary: true, dataset: { action: 'close' } }));
    actions.lastElementChild.focus();
  };

  const showEnd = (view, again = true) => {
    fill(content, view);
    fill(actions, again ? button('Back', showForm) : null, button('Close', () => close(null), { primary: true }));
    actions.lastElementChild.focus();
  };

  async function run() {
    const f = info();
    const args = { format: choice.format, out: choice.folder, options: optionsFor(choice, f) };
    const progress = progressView(`Exporting as ${f.title}…`);
    let jobId = null;
    const cancel = button('Cancel export', () => {
      cancel.disabled = true;
      progress.cancelling();
      api('export.cancel', jobId ? { job: jobId } : {}).catch((err) => reportError(err, 'cancelling the export'));
    }, { dataset: { action: 'cancel-job' } });
    fill(content, progress.el);
    fill(actions, cancel);
    cancel.focus();
    try {
      const result = await apiJob('export.run', args, { onProgress: (p) => { jobId = p.job; progress.update(p); } });
      if (open) showSummary(result);
      else toast(`Exported ${plural(result.images, 'image')} and ${plural(result.shapes, 'shape')} to ${result.out}`, { kind: 'success' });
    } catch (err) {
      if (err && err.code === 'cancelled') {
        if (open) showEnd(messageView('cancelled', 'Export cancelled', 'Nothing was written.'));
        else toast('Export cancelled; nothing was written.');
      } else if (open && err && err.code) {
        showEnd(messageView('failed', 'The export did not finish', err.message));
      } else {
        reportError(err, 'exporting');
      }
    }
  }

  let close = () => {};
  const done = modal({
    title: 'Export labels',
    className: 'dialog-wide dialog-xfer',
    build: (closeModal) => {
      close = closeModal;
      showForm();
      return { body: content, actions: [actions] };
    },
    initialFocus: () => content.querySelector('.xfer-format.active input'),
  });
  return done.finally(() => { open = false; });
}
