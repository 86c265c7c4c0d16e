// Bottom bar: messages on the left; cursor position, zoom, image facts and undo hint on the right.
import { h, fill, formatCount } from '../dom.js';
import { state, listen } from '../state.js';
import { displayNeeds } from '../actions.js';

export function mountStatusbar(root) {
  const message = h('span', { class: 'sb-message', role: 'status', 'aria-live': 'polite' });
  const cursor = h('span', { class: 'sb-item mono', title: 'Cursor position in image pixels' });
  const zoom = h('span', { class: 'sb-item mono', title: 'Zoom' });
  const image = h('span', { class: 'sb-item', title: 'Image size, channels and pixel type' });
  const undo = h('span', { class: 'sb-item sb-undo' });
  fill(root, message, h('span', { class: 'sb-spacer' }), cursor, zoom, image, undo);

  let clearTimer = 0;
  listen('status', () => {
    const m = state.message;
    message.textContent = m ? m.text : '';
    message.className = `sb-message ${m && m.kind === 'error' ? 'error' : ''}`;
    clearTimeout(clearTimer);
    clearTimer = setTimeout(() => { message.textContent = ''; }, 6000);
  });
  listen(['cursor', 'current'], () => {
    const c = state.cursor;
    cursor.textContent = c ? `x ${Math.floor(c.x)}  y ${Math.floor(c.y)}` : '';
    cursor.hidden = !c;
  });
  listen(['view', 'current'], () => {
    zoom.textContent = state.scale ? `${Math.round(state.scale * 100)}%` : '';
    zoom.hidden = !state.scale || !state.current || !!state.imageError;
  });
  listen(['current', 'display'], () => {
    const img = state.current;
    image.hidden = !img || !img.width || !!state.imageError;
    if (image.hidden) return;
    const needs = displayNeeds(img);
    const parts = [`${formatCount(img.width)} × ${formatCount(img.height)}`];
    if (img.channels) parts.push(`${img.channels} ch`);
    if (img.dtype) parts.push(img.dtype);
    if (needs.pages > 1 && state.display) parts.push(`page ${state.display.page + 1}/${needs.pages}`);
    image.textContent = parts.join(' · ');
  });
  listen(['edit', 'project'], () => {
    const e = state.edit || {};
    undo.hidden = !state.project || !e.can_undo;
    undo.textContent = e.can_undo ? `Undo: ${e.undo || 'last edit'}` : '';
    undo.title = 'Ctrl+Z undoes it';
  });
  cursor.hidden = true; zoom.hidden = true; image.hidden = true; undo.hidden = true;
}
