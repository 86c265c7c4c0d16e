// Stroke icons on a 24×24 grid, drawn with currentColor so they follow the theme.
// Built as DOM nodes (not markup strings), which the CSP and dom.js rules both allow.
import { svg } from './dom.js';

const P = (d) => ['path', { d }];
const C = (cx, cy, r) => ['circle', { cx, cy, r }];

const ICONS = {
  folder: [P('M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z')],
  folderOpen: [P('M4 19h14.5a1 1 0 0 0 .97-.76l1.5-6A1 1 0 0 0 20 11H7.2a1 1 0 0 0-.95.68L4 19z'),
    P('M4 19a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1h4.5l2 2H18a1 1 0 0 1 1 1v3')],
  clock: [C(12, 12, 9), P('M12 7v5l3 2')],
  chevronDown: [P('M6 9l6 6 6-6')],
  chevronLeft: [P('M15 6l-6 6 6 6')],
  chevronRight: [P('M9 6l6 6-6 6')],
  select: [P('M5 3l14 7.5-6.2 1.6L10 18.5z'), P('M13 12.5l5 5')],
  box: [['rect', { x: 4, y: 5, width: 16, height: 14, rx: 1.5 }]],
  polygon: [P('M12 3.5l8 5.5-3 10H7L4 9z'), C(12, 3.5, 0.6), C(20, 9, 0.6), C(17, 19, 0.6), C(7, 19, 0.6), C(4, 9, 0.6)],
  point: [C(12, 12, 3), P('M12 2v4M12 18v4M2 12h4M18 12h4')],
  undo: [P('M9 14L4 9l5-5'), P('M4 9h10.5a5.5 5.5 0 0 1 0 11H11')],
  redo: [P('M15 14l5-5-5-5'), P('M20 9H9.5a5.5 5.5 0 0 0 0 11H13')],
  eye: [P('M2 12s3.5-7 10-7 10 7 10 7-3.5 7-10 7S2 12 2 12z'), C(12, 12, 3)],
  eyeOff: [P('M10.6 5.1A10.4 10.4 0 0 1 12 5c6.5 0 10 7 10 7a17.6 17.6 0 0 1-2.6 3.6'),
    P('M6.6 6.6A17.4 17.4 0 0 0 2 12s3.5 7 10 7a9.7 9.7 0 0 0 5.4-1.6'), P('M9.9 9.9a3 3 0 0 0 4.2 4.2'), P('M3 3l18 18')],
  fit: [P('M4 9V5a1 1 0 0 1 1-1h4M15 4h4a1 1 0 0 1 1 1v4M20 15v4a1 1 0 0 1-1 1h-4M9 20H5a1 1 0 0 1-1-1v-4')],
  sun: [C(12, 12, 4), P('M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4')],
  moon: [P('M20 14.5A8 8 0 0 1 9.5 4a8 8 0 1 0 10.5 10.5z')],
  keyboard: [['rect', { x: 2, y: 6, width: 20, height: 12, rx: 2 }], P('M6 10h.01M10 10h.01M14 10h.01M18 10h.01M7 14h10')],
  plus: [P('M12 5v14M5 12h14')],
  pencil: [P('M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z')],
  trash: [P('M4 7h16M10 11v6M14 11v6M5 7l1 12a2 2 0 0 0 2 2h8a2 2 0 0 0 2-2l1-12M9 7V4h6v3')],
  merge: [P('M6 3v6a6 6 0 0 0 6 6h6'), P('M6 21v-6'), P('M15 12l3 3-3 3')],
  check: [P('M5 12.5l4.5 4.5L19 7.5')],
  skip: [P('M5 5l9 7-9 7z'), P('M19 5v14')],
  x: [P('M6 6l12 12M18 6L6 18')],
  alert: [P('M12 3.5L2.5 20h19z'), P('M12 10v4.5M12 17.5h.01')],
  search: [C(11, 11, 7), P('M20 20l-4-4')],
  image: [['rect', { x: 3, y: 4, width: 18, height: 16, rx: 2 }], C(9, 10, 1.8), P('M21 16l-5-5-9 9')],
  layers: [P('M12 3l9 5-9 5-9-5z'), P('M3 13l9 5 9-5')],
  info: [C(12, 12, 9), P('M12 11v5M12 8h.01')],
  drop: [P('M12 3v12M7 10l5 5 5-5'), P('M4 15v3a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-3')],
  wand: [P('M4 20L15 9'), P('M14 4v2M19 9h2M17.5 5.5l1.4-1.4M18 13l1.4 1.4M10 5.5L8.6 4.1'), P('M13.5 7.5l3 3')],
  sparkles: [P('M12 3l1.8 4.7L18.5 9.5l-4.7 1.8L12 16l-1.8-4.7L5.5 9.5l4.7-1.8z'), P('M19 15l.8 2.2 2.2.8-2.2.8L19 21l-.8-2.2-2.2-.8 2.2-.8z')],
  cpu: [['rect', { x: 6, y: 6, width: 12, height: 12, rx: 2 }], ['rect', { x: 9.5, y: 9.5, width: 5, height: 5, rx: 0.5 }],
    P('M9 2.5V6M15 2.5V6M9 18v3.5M15 18v3.5M2.5 9H6M2.5 15H6M18 9h3.5M18 15h3.5')],
  pause: [P('M9 5v14M15 5v14')],
  play: [P('M7 4.5l12 7.5-12 7.5z')],
  stop: [['rect', { x: 6, y: 6, width: 12, height: 12, rx: 1.5 }]],
  copy: [['rect', { x: 8, y: 8, width: 12, height: 12, rx: 2 }], P('M16 8V6a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h2')],
  list: [P('M9 6h11M9 12h11M9 18h11'), C(4.5, 6, 0.8), C(4.5, 12, 0.8), C(4.5, 18, 0.8)],
  package: [P('M12 3l8 4.5v9L12 21l-8-4.5v-9z'), P('M4 7.5l8 4.5 8-4.5M12 12v9')],
  sliders: [P('M4 6h10M18 6h2M4 12h4M12 12h8M4 18h12M20 18h0'), C(16, 6, 2), C(10, 12, 2), C(18, 18, 2)],
};

/** icon('undo') -> <svg class="icon">; unknown names are a programming error. */
export function icon(name, extraClass = '') {
  const parts = ICONS[name];
  if (!parts) throw new Error(`unknown icon ${name}`);
  return svg('svg', {
    class: ['icon', `icon-${name}`, extraClass], viewBox: '0 0 24 24', 'aria-hidden': 'true',
    focusable: 'false', fill: 'none', stroke: 'currentColor', 'stroke-width': 1.75,
    'stroke-linecap': 'round', 'stroke-linejoin': 'round',
  }, parts.map(([tag, attrs]) => svg(tag, attrs)));
}
