// Empty states: no project open (welcome), and a project folder without images.
import { h } from '../dom.js';
import { icon } from '../icons.js';
import { state } from '../state.js';
import { guard } from '../toast.js';
import * as A from '../actions.js';

// Shown when app.info does not list the formats the imaging core reads.
const FALLBACK_FORMATS = ['JPEG', 'PNG', 'TIFF (multi-page, 16-bit, multi-channel)', 'BMP', 'WebP'];

export function welcomeView() {
  const recent = state.recent.filter((r) => r.exists !== false).slice(0, 6);
  return h('div', { class: 'empty-state welcome' },
    h('img', { class: 'welcome-logo', src: 'img/icon.svg', alt: '' }),
    h('h1', { class: 'empty-title' }, 'Welcome to Fieldmark'),
    h('p', { class: 'empty-text' }, 'Label the objects in a folder of images — boxes, polygons and points. Everything stays on this computer and every edit is saved as you make it.'),
    h('button', { class: 'btn btn-primary btn-large', onclick: guard(() => A.pickFolder(), 'opening a folder') },
      icon('folderOpen'), h('span', {}, 'Open folder'), h('kbd', { class: 'kbd-inline' }, 'Ctrl+O')),
    h('p', { class: 'drop-hint' }, icon('drop'), h('span', {}, 'or drop a folder here')),
    recent.length ? h('div', { class: 'recent-list' },
      h('h2', { class: 'recent-title' }, 'Recent projects'),
      recent.map((r) => h('button', { class: 'recent-item', title: r.path, onclick: guard(() => A.openRecent(r.path), 'opening the project') },
        icon('folder'), h('span', { class: 'recent-name' }, r.name || r.path), h('span', { class: 'recent-path' }, r.path)))) : null);
}

export function noImagesView() {
  const formats = (state.info && Array.isArray(state.info.formats) && state.info.formats.length)
    ? state.info.formats : FALLBACK_FORMATS;
  const p = state.project;
  return h('div', { class: 'empty-state' },
    h('div', { class: 'empty-icon' }, icon('image')),
    h('h1', { class: 'empty-title' }, 'No images in this folder'),
    h('p', { class: 'empty-text' }, 'Fieldmark found no image files in ', h('span', { class: 'mono' }, p ? p.path : 'this folder'),
      ' or its subfolders. Copy images into it, or open another folder.'),
    h('p', { class: 'empty-text' }, 'Supported formats: ', formats.join(', '), '.'),
    h('button', { class: 'btn btn-primary', onclick: guard(() => A.pickFolder(), 'opening a folder') }, icon('folderOpen'), h('span', {}, 'Open another folder')),
    h('p', { class: 'drop-hint' }, icon('drop'), h('span', {}, 'or drop a folder here')));
}

export function imageErrorView(img, message) {
  return h('div', { class: 'empty-state image-error', role: 'alert' },
    h('div', { class: 'empty-icon danger' }, icon('alert')),
    h('h1', { class: 'empty-title' }, 'This image cannot be shown'),
    h('p', { class: 'empty-text mono' }, img ? (img.relpath || img.name) : ''),
    h('p', { class: 'empty-text error-text' }, message),
    h('div', { class: 'empty-actions' },
      h('button', { class: 'btn', onclick: guard(() => A.setStatus('skipped', { advance: true }), 'skipping the image') }, icon('skip'), h('span', {}, 'Skip it')),
      h('button', { class: 'btn', onclick: guard(() => A.step(1), 'going to the next image') }, h('span', {}, 'Next image'), icon('chevronRight'))));
}
