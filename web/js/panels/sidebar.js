// Right sidebar: tabs for Classes, Assist (prompts, batch runs, segmenting) and Review (the
// proposal queue), with the selected shape's card (class, provenance) above them.
import { h, fill, formatCount } from '../dom.js';
import { state, emit, listen } from '../state.js';
import { mountClasses } from './classes.js';
import { mountSelection } from './selection.js';
import { mountAssist } from './assist.js';
import { mountReview } from './review.js';

const TABS = [['classes', 'Classes'], ['assist', 'Assist'], ['review', 'Review']];

export function setSideTab(tab) {
  if (!TABS.some(([t]) => t === tab) || state.sideTab === tab) return;
  state.sideTab = tab;
  emit('sidetab');
}

export function mountSidebar(root) {
  const counts = {};
  const buttons = TABS.map(([tab, label]) => {
    counts[tab] = h('span', { class: 'tab-count' });
    return h('button', { class: 'side-tab', role: 'tab', id: `tab-${tab}`, 'aria-controls': `pane-${tab}`,
      dataset: { tab }, onclick: () => setSideTab(tab) }, h('span', {}, label), counts[tab]);
  });
  const tablist = h('div', { class: 'side-tabs', role: 'tablist', 'aria-label': 'Sidebar' }, buttons);
  tablist.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    e.preventDefault();
    e.stopPropagation(); // not "previous / next image"
    const i = TABS.findIndex(([t]) => t === state.sideTab);
    const j = (i + (e.key === 'ArrowRight' ? 1 : -1) + TABS.length) % TABS.length;
    setSideTab(TABS[j][0]);
    buttons[j].focus();
  });
  const selection = h('div', { class: 'selection-slot' });
  const panes = Object.fromEntries(TABS.map(([tab]) => [tab,
    h('div', { class: ['side-pane', `pane-${tab}`], role: 'tabpanel', id: `pane-${tab}`, 'aria-labelledby': `tab-${tab}` })]));
  fill(root, tablist, selection, ...Object.values(panes));

  mountSelection(selection);
  mountClasses(panes.classes);
  mountAssist(panes.assist);
  mountReview(panes.review);

  const render = () => {
    for (const b of buttons) {
      const on = b.dataset.tab === state.sideTab;
      b.classList.toggle('active', on);
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
    }
    for (const [tab, pane] of Object.entries(panes)) pane.hidden = tab !== state.sideTab;
  };
  const renderCounts = () => {
    const q = state.ai.queue.length;
    counts.review.textContent = q ? (q >= 200 ? '200+' : formatCount(q)) : '';
    counts.review.title = q ? `${formatCount(q)} proposals wait for review` : '';
    const running = !!state.ai.run;
    counts.assist.textContent = running ? '●' : '';
    counts.assist.title = running ? 'A run is going' : '';
    counts.assist.classList.toggle('live', running);
  };
  listen('sidetab', render);
  listen(['queue', 'runs', 'project'], renderCounts);
  render();
  renderCounts();
}
