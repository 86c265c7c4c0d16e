// The Import dialog (issue 5): a format, the file or folder to read, then progress with Cancel,
// then a report of what was added and what was skipped and why. An import is all or nothing
// and one undo step. Names from files are inserted as text (dom.h), never as HTML.
import { h, fill, plural } from '../dom.js';
import { modal } from '../dialog.js';
import { api, apiJob } from '../bridge.js';
import { state } from '../state.js';
import { toast, reportError } from '../toast.js';
import { icon } from '../icons.js';
import * as A from '../actions.js';
import * as E from '../editing.js';
import { button, formatCatalog, formatList, leftOut, messageView, progressView, section } from './exportdialog.js';

const choice = { format: 'coco', path: null, pathFormat: null };

/** After an import: the list (shape counts), the classes, this image's shapes and undo. */
async function refreshPage() {
  await Promise.all([A.refreshImages(), E.afterEdit()]);
}

/** Open the Import dialog. Resolves when it closes. */
export async function openImportDialog() {
  if (!state.project) {
    toast('Open a folder of images first, then import labels for them.');
    return null;
  }
  const formats = (await formatCatalog()).filter((f) => f.can_import);
  if (!formats.some((f) => f.id === choice.format)) choice.format = formats[0].id;
  const info = () => formats.find((f) => f.id === choice.format);
  let open = true;
  const content = h('div', { class: 'xfer' });
  const actions = h('div', { class: 'xfer-actions' });
  const problem = h('div', { class: 'xfer-problem', role: 'alert' });
  const sourcePath = h('div', { class: 'xfer-path mono' });
  const sourceBox = h('div', { class: 'xfer-options' });
  let importBtn = null;

  const sourceValid = () => !!choice.path && choice.pathFormat === choice.format;
  const renderSource = () => {
    const f = info();
    const kind = f.import_source === 'file' ? 'file' : 'folder';
    if (!sourceValid()) choice.path = null;
    sourcePath.textContent = choice.path || 'Nothing chosen yet';
    sourcePath.classList.toggle('muted', !choice.path);
    fill(sourceBox,
      section('Source',
        h('p', { class: 'xfer-hint' }, f.import_hint),
        h('div', { class: 'xfer-out' }, button(`Choose ${kind}…`, choose, { iconName: 'folderOpen', dataset: { action: 'choose-source' } }), sourcePath)),
      section('What happens',
        h('p', { class: 'xfer-hint' }, 'Images are matched by their path, then by a unique file name; classes are created as needed.'),
        h('p', { class: 'xfer-hint' }, 'Nothing is added unless every file reads cleanly. The import is one step: Undo (Ctrl+Z) takes it back.')));
    if (importBtn) importBtn.disabled = !sourceValid();
  };
  async function choose() {
    try {
      const picked = await api('import.pick', { format: choice.format });
      if (picked) { choice.path = picked.path; choice.pathFormat = choice.format; }
      problem.textContent = '';
    } catch (err) {
      problem.textContent = err.message;
    }
    renderSource();
  }

  const formats_ = formatList({
    formats, chosen: choice.format, label: 'Import format',
    onChoose: (id) => { choice.format = id; formats_.render(id); problem.textContent = ''; renderSource(); },
  });

  const showForm = () => {
    importBtn = button('Import', () => run(), { primary: true, dataset: { action: 'import' } });
    fill(content, h('div', { class: 'xfer-grid' },
      h('div', { class: 'xfer-col' }, h('h3', { class: 'section-title' }, 'Format'), formats_.el),
      h('div', { class: 'xfer-col' }, sourceBox, problem)));
    renderSource();
    fill(actions, button('Cancel', () => close(null)), importBtn);
  };

  const showReport = (r) => {
    const skipped = Array.isArray(r.skipped) ? r.skipped : [];
    const classes = Array.isArray(r.classes_added) ? r.classes_added : [];
    fill(content, h('div', { class: 'xfer-summary' },
      h('div', { class: 'xfer-done' }, icon('check'),
        h('div', {}, h('div', { class: 'xfer-message-title' }, `Added ${plural(r.shapes_added, 'shape')} on ${plural(r.images_matched, 'image')}`),
          h('div', { class: 'xfer-path mono', title: String(r.source) }, String(r.source)))),
      classes.length ? h('p', { class: 'dialog-text' }, `New ${classes.length === 1 ? 'class' : 'classes'}: `,
        classes.map((name, i) => [i ? ', ' : '', h('strong', {}, name)])) : null,
      r.skipped_count ? leftOut({ items: skipped, total: r.skipped_count, reasonOf: (it) => it.reason, what: (it) => String(it.item),
        heading: `${plural(r.skipped_count, 'item')} skipped:` }) : h('p', { class: 'dialog-text' }, 'Nothing was skipped.'),
      h('p', { class: 'xfer-hint' }, 'Undo (Ctrl+Z) removes the whole import.')));
    fill(actions, button('Close', () => close(r), { primary: true, dataset: { action: 'close' } }));
    actions.lastElementChild.focus();
  };

  const showEnd = (view) => {
    fill(content, view);
    fill(actions, button('Back', showForm), button('Close', () => close(null), { primary: true }));
    actions.lastElementChild.focus();
  };

  async function run() {
    const f = info();
    const progress = progressView(`Importing ${f.title}…`);
    let jobId = null;
    const cancel = button('Cancel import', () => {
      cancel.disabled = true;
      progress.cancelling();
      api('import.cancel', jobId ? { job: jobId } : {}).catch((err) => reportError(err, 'cancelling the import'));
    }, { dataset: { action: 'cancel-job' } });
    fill(content, progress.el);
    fill(actions, cancel);
    cancel.focus();
    try {
      const report = await apiJob('import.run', { format: choice.format, path: choice.path },
        { onProgress: (p) => { jobId = p.job; progress.update(p); } });
      await refreshPage();
      if (open) showReport(report);
      else toast(`Imported ${plural(report.shapes_added, 'shape')} on ${plural(report.images_matched, 'image')}`, { kind: 'success' });
    } catch (err) {
      if (err && err.code === 'cancelled') {
        if (open) showEnd(messageView('cancelled', 'Import cancelled', 'Nothing was added.'));
        else toast('Import cancelled; nothing was added.');
      } else if (open && err && err.code) {
        showEnd(messageView('failed', 'Nothing was imported', err.message));
      } else {
        reportError(err, 'importing');
      }
    }
  }

  let close = () => {};
  const done = modal({
    title: 'Import labels',
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
