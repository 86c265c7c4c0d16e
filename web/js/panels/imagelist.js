// Left panel: search, status filter, and the (virtualized) list of every image in the project.
import { h, fill, formatCount } from '../dom.js';
import { icon } from '../icons.js';
import { state, listen, currentIndex } from '../state.js';
import { guard } from '../toast.js';
import * as A from '../actions.js';
import { VirtualList } from '../vlist.js';

const ROW_HEIGHT = 56;
const FILTERS = [['all', 'All'], ['new', 'New'], ['in_progress', 'In progress'], ['done', 'Done'], ['skipped', 'Skipped'], ['error', 'Unreadable']];

export function mountImageList(root) {
  const select = guard((id) => A.selectImage(id), 'opening the image');
  const count = h('span', { class: 'panel-count' });
  const progressBar = h('div', { class: 'progress-fill' });
  const progressText = h('span', { class: 'progress-text' });
  const search = h('input', { type: 'search', class: 'input search-input', placeholder: 'Search by name',
    'aria-label': 'Search images by name', spellcheck: false, autocomplete: 'off' });
  const chips = h('div', { class: 'chips', role: 'radiogroup', 'aria-label': 'Filter by status' });
  const viewport = h('div', { class: 'vlist', role: 'listbox', tabindex: 0, 'aria-label': 'Images' });
  const empty = h('div', { class: 'list-empty', hidden: true });

  fill(root,
    h('div', { class: 'panel-head' }, h('h2', { class: 'panel-title' }, 'Images'), count),
    h('div', { class: 'progress', title: 'Images marked done' }, h('div', { class: 'progress-track' }, progressBar), progressText),
    h('div', { class: 'search' }, icon('search', 'search-icon'), search),
    chips,
    h('div', { class: 'vlist-wrap' }, viewport, empty));

  let timer = 0;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => A.setFilter({ query: search.value }), 90);
  });
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && search.value) { e.stopPropagation(); search.value = ''; A.setFilter({ query: '' }); }
    else if (e.key === 'ArrowDown' || e.key === 'Enter') { e.preventDefault(); viewport.focus(); }
  });

  const createRow = () => {
    const thumb = h('img', { class: 'thumb', alt: '', loading: 'lazy', decoding: 'async', draggable: false });
    thumb.addEventListener('error', () => thumb.classList.add('broken'));
    const row = h('div', { class: 'row', role: 'option' },
      h('div', { class: 'thumb-box' }, thumb, icon('alert', 'thumb-error'), icon('image', 'thumb-placeholder')),
      h('div', { class: 'row-main' },
        h('div', { class: 'row-name' }),
        h('div', { class: 'row-meta' }, h('span', { class: 'badge' }), h('span', { class: 'row-shapes' }), h('span', { class: 'row-error' }))));
    row.addEventListener('mousedown', (e) => e.preventDefault()); // keep focus (and keys) where they are
    row.addEventListener('click', () => select(Number(row.dataset.id)));
    return row;
  };

  const renderRow = (row, index) => {
    const img = state.visible[index];
    if (!img) return;
    const [thumbBox, main] = row.children;
    const thumb = thumbBox.firstChild;
    row.dataset.id = String(img.id);
    row.id = `img-row-${img.id}`;
    row.setAttribute('aria-selected', String(img.id === state.currentId));
    row.classList.toggle('current', img.id === state.currentId);
    row.classList.toggle('has-error', !!img.error);
    row.title = img.error ? `${img.relpath || img.name}\n${img.error}` : (img.relpath || img.name);
    const src = img.error ? '' : A.thumbUrl(img.id);
    if (thumb.dataset.src !== src) {
      thumb.classList.remove('broken');
      thumb.dataset.src = src;
      if (src) thumb.src = src; else thumb.removeAttribute('src');
    }
    main.firstChild.textContent = img.name;
    const [badge, shapes, error] = main.lastChild.children;
    badge.className = `badge badge-${img.status}`;
    badge.textContent = A.STATUS_LABEL[img.status] || img.status;
    shapes.textContent = img.shape_count ? `${formatCount(img.shape_count)} ${img.shape_count === 1 ? 'shape' : 'shapes'}` : '';
    error.textContent = img.error ? 'Unreadable' : '';
    error.title = img.error || '';
  };

  const list = new VirtualList(viewport, { rowHeight: ROW_HEIGHT, createRow, renderRow });

  viewport.addEventListener('keydown', (e) => {
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 };
    if (e.key in moves && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      guard(() => A.step(moves[e.key]), 'moving in the list')();
    }
  });

  const renderChips = () => {
    const counts = { all: state.images.length, new: 0, in_progress: 0, done: 0, skipped: 0, error: 0 };
    for (const img of state.images) {
      counts[img.status] = (counts[img.status] || 0) + 1;
      if (img.error) counts.error += 1;
    }
    fill(chips, FILTERS.filter(([key]) => key !== 'error' || counts.error || state.filter.status === 'error').map(([key, label]) =>
      h('button', { class: ['chip', key === state.filter.status && 'active', key === 'error' && 'chip-error'], role: 'radio',
        'aria-checked': String(key === state.filter.status), title: `Show ${label.toLowerCase()} images`,
        onclick: () => A.setFilter({ status: key }) },
      h('span', { class: 'chip-label' }, label), h('span', { class: 'chip-count' }, formatCount(counts[key] || 0)))));
    count.textContent = formatCount(state.images.length);
    const pct = counts.all ? (counts.done / counts.all) * 100 : 0;
    progressBar.style.width = `${pct.toFixed(2)}%`;
    progressText.textContent = `${formatCount(counts.done)} of ${formatCount(counts.all)} done`;
  };

  const renderEmpty = () => {
    const filteredOut = state.visible.length === 0 && state.images.length > 0;
    const noImages = !!state.project && state.images.length === 0 && !state.loading;
    empty.hidden = !filteredOut && !noImages;
    if (filteredOut) {
      fill(empty, h('p', {}, 'No images match.'),
        h('button', { class: 'btn btn-small', onclick: () => { search.value = ''; A.setFilter({ status: 'all', query: '' }); } }, 'Clear filters'));
    } else if (noImages) {
      fill(empty, h('p', { class: 'muted' }, 'No images yet.'));
    }
  };

  let lastCurrent = null;
  const markCurrent = () => {
    for (const el of viewport.querySelectorAll('.row.current')) {
      el.classList.remove('current');
      el.setAttribute('aria-selected', 'false');
    }
    const i = currentIndex();
    if (i >= 0) {
      list.scrollIntoView(i);
      const el = list.elementFor(i);
      if (el) { el.classList.add('current'); el.setAttribute('aria-selected', 'true'); }
      viewport.setAttribute('aria-activedescendant', `img-row-${state.currentId}`);
    } else {
      viewport.removeAttribute('aria-activedescendant');
    }
    lastCurrent = state.currentId;
  };

  listen('images', (detail) => {
    if (detail && detail.ids) {
      // One or a few records changed in place: re-render only those rows.
      const ids = new Set(detail.ids);
      state.visible.forEach((img, i) => { if (ids.has(img.id)) list.refreshIndex(i); });
    } else {
      list.setCount(state.visible.length);
      if (search.value !== state.filter.query) search.value = state.filter.query;
      markCurrent();
    }
    renderChips();
    renderEmpty();
  });
  listen('current', () => { if (state.currentId !== lastCurrent) markCurrent(); });
  listen('project', () => { search.value = ''; list.setCount(0); renderChips(); renderEmpty(); });
  return { list };
}

