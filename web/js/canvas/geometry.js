// Pure geometry for the labeling canvas: view transforms, zoom math, hit-testing, edits.
//
// No DOM here, so the real page can test every function without pixels.
// Conventions (ARCHITECTURE.md): image pixels as displayed, floats, origin top-left, x right,
// y down. Box [x0, y0, x1, y1] with x0 <= x1, y0 <= y1; polygon [[x, y], ...]; point [x, y].
// A view is {scale, tx, ty}: view = image * scale + t, in CSS pixels of the canvas element.

/** @param {number} v @param {number} lo @param {number} hi */
export function clamp(v, lo, hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/** Box with its corners in order: [min x, min y, max x, max y]. */
export function normalizeBox(box) {
  const [x0, y0, x1, y1] = box;
  return [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
}

/** Normalized box spanned by two {x, y} corners. */
export function boxFromPoints(a, b) {
  return normalizeBox([a.x, a.y, b.x, b.y]);
}

/** {x, y} moved inside the image rectangle [0, w] x [0, h]. */
export function clampPoint(x, y, w, h) {
  return { x: clamp(x, 0, w), y: clamp(y, 0, h) };
}

// ---------------------------------------------------------------------------------------------
// View

export function imageToView(view, x, y) {
  return { x: x * view.scale + view.tx, y: y * view.scale + view.ty };
}

export function viewToImage(view, x, y) {
  return { x: (x - view.tx) / view.scale, y: (y - view.ty) / view.scale };
}

/** View that shows the whole image centred in a viewW x viewH area with `margin` CSS px around. */
export function fitView(imgW, imgH, viewW, viewH, margin = 16) {
  if (!(imgW > 0 && imgH > 0 && viewW > 0 && viewH > 0)) return { scale: 1, tx: 0, ty: 0 };
  const availW = Math.max(viewW - 2 * margin, 1);
  const availH = Math.max(viewH - 2 * margin, 1);
  const scale = Math.min(availW / imgW, availH / imgH);
  return { scale, tx: (viewW - imgW * scale) / 2, ty: (viewH - imgH * scale) / 2 };
}

/** Zoom range for an image whose fit scale is `fitScale`: a quarter of fit out, 64x pixels in. */
export function zoomLimits(fitScale) {
  const fit = fitScale > 0 ? fitScale : 1;
  return { min: Math.min(fit / 4, 1), max: Math.max(64, fit * 4) };
}

/** View zoomed by `factor` about the view point (cx, cy), which stays over the same image pixel. */
export function zoomAt(view, factor, cx, cy, limits = { min: 0, max: Infinity }) {
  const scale = clamp(view.scale * factor, limits.min, limits.max);
  const k = scale / view.scale;
  return { scale, tx: cx - (cx - view.tx) * k, ty: cy - (cy - view.ty) * k };
}

/**
 * `view` shifted as little as needed so that at least `keep` CSS px of the imgW x imgH image stay
 * inside the viewW x viewH viewport on each axis: panning can never lose the image.
 */
export function clampView(view, imgW, imgH, viewW, viewH, keep = 48) {
  if (!(imgW > 0 && imgH > 0 && viewW > 0 && viewH > 0)) return view;
  const w = imgW * view.scale;
  const h = imgH * view.scale;
  const kx = Math.min(keep, w, viewW);
  const ky = Math.min(keep, h, viewH);
  return { scale: view.scale, tx: clamp(view.tx, kx - w, viewW - kx), ty: clamp(view.ty, ky - h, viewH - ky) };
}

export function panView(view, dx, dy) {
  return { scale: view.scale, tx: view.tx + dx, ty: view.ty + dy };
}

/** Image-space rectangle [x0, y0, x1, y1] seen through a w x h CSS px viewport. */
export function viewportRect(view, w, h) {
  return [-view.tx / view.scale, -view.ty / view.scale, (w - view.tx) / view.scale, (h - view.ty) / view.scale];
}

/** Overlap of two rectangles [x0, y0, x1, y1], or null when they do not overlap. */
export function intersectRect(a, b) {
  const r = [Math.max(a[0], b[0]), Math.max(a[1], b[1]), Math.min(a[2], b[2]), Math.min(a[3], b[3])];
  return r[0] < r[2] && r[1] < r[3] ? r : null;
}

/** True when rectangle `inner` lies within `outer`. */
export function containsRect(outer, inner) {
  return inner[0] >= outer[0] && inner[1] >= outer[1] && inner[2] <= outer[2] && inner[3] <= outer[3];
}

/**
 * Zoom factor for one wheel event. Exponential in the distance scrolled, so many small trackpad
 * events and one big mouse notch zoom alike; pinch gestures arrive as ctrl+wheel with small
 * deltas and get more gain. deltaMode: 0 pixels, 1 lines, 2 pages (WheelEvent).
 */
export function wheelZoomFactor(deltaY, deltaMode = 0, ctrlKey = false) {
  const px = deltaMode === 1 ? deltaY * 16 : deltaMode === 2 ? deltaY * 400 : deltaY;
  const gain = ctrlKey ? 0.01 : 0.002;
  return Math.exp(-clamp(px * gain, -1, 1));
}

// ---------------------------------------------------------------------------------------------
// Measures

export function distToSegment(px, py, ax, ay, bx, by) {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 > 0 ? clamp(((px - ax) * dx + (py - ay) * dy) / len2, 0, 1) : 0;
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

/** Even-odd point-in-polygon test (ray casting); points exactly on an edge may go either way. */
export function pointInPolygon(x, y, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Absolute area of a simple polygon (shoelace). */
export function polygonArea(ring) {
  let s = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    s += (ring[j][0] + ring[i][0]) * (ring[j][1] - ring[i][1]);
  }
  return Math.abs(s) / 2;
}

/** Bounding box [x0, y0, x1, y1] of a shape's geometry, or null when it is malformed. */
export function shapeBBox(kind, g) {
  if (kind === 'box') return isBox(g) ? normalizeBox(g) : null;
  if (kind === 'point') return isPoint(g) ? [g[0], g[1], g[0], g[1]] : null;
  if (kind === 'polygon') {
    if (!isRing(g)) return null;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const [x, y] of g) {
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    return [x0, y0, x1, y1];
  }
  if (kind === 'mask') return g && isBox(g.bbox) ? normalizeBox(g.bbox) : null;
  return null;
}

/** Area used to rank overlapping hits (smaller wins); points and masks by their extent. */
export function shapeArea(kind, g, bbox) {
  if (kind === 'polygon') return polygonArea(g);
  if (kind === 'point') return 0;
  return (bbox[2] - bbox[0]) * (bbox[3] - bbox[1]);
}

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
export const isPoint = (p) => Array.isArray(p) && p.length === 2 && isNum(p[0]) && isNum(p[1]);
export const isBox = (b) => Array.isArray(b) && b.length === 4 && b.every(isNum);
export const isRing = (r) => Array.isArray(r) && r.length >= 3 && r.every(isPoint);

// ---------------------------------------------------------------------------------------------
// Hit-testing. `tol` is in image pixels (callers pass screen px / scale).

/**
 * How (x, y) hits one shape: 'inside', 'edge' (within tol of its outline or point), or null.
 * `item` is {kind, geometry, bbox}; masks are hit inside their bbox unless `item.maskHit`
 * (a function (x, y) -> bool over the decoded mask) says otherwise.
 */
export function hitShape(item, x, y, tol) {
  const b = item.bbox;
  if (!b || x < b[0] - tol || x > b[2] + tol || y < b[1] - tol || y > b[3] + tol) return null;
  const g = item.geometry;
  if (item.kind === 'point') return Math.hypot(x - g[0], y - g[1]) <= tol ? 'edge' : null;
  if (item.kind === 'box') {
    if (x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3]) return 'inside';
    return 'edge'; // within tol of the rectangle (bbox test above)
  }
  if (item.kind === 'polygon') {
    if (pointInPolygon(x, y, g)) return 'inside';
    for (let i = 0, j = g.length - 1; i < g.length; j = i++) {
      if (distToSegment(x, y, g[j][0], g[j][1], g[i][0], g[i][1]) <= tol) return 'edge';
    }
    return null;
  }
  if (item.kind === 'mask') {
    if (x < b[0] || x > b[2] || y < b[1] || y > b[3]) return null;
    return !item.maskHit || item.maskHit(x, y) ? 'inside' : null;
  }
  return null;
}

/**
 * Id of the shape under (x, y). `items` run bottom to top ({id, kind, geometry, bbox, area}).
 * Points win (they are hard to reach otherwise), then the smallest area, then the topmost,
 * so a small shape inside a big one stays selectable.
 */
export function hitTest(items, x, y, tol) {
  let best = null;
  for (let i = 0; i < items.length; i++) {
    const it = items[i];
    if (!hitShape(it, x, y, tol)) continue;
    const rank = it.kind === 'point' ? -1 : it.area;
    if (best === null || rank <= best.rank) best = { id: it.id, rank };
  }
  return best ? best.id : null;
}

/** Index of the vertex of `ring` nearest to (x, y) within tol, or -1. */
export function nearestVertex(ring, x, y, tol) {
  let best = -1;
  let bestD = tol;
  for (let i = 0; i < ring.length; i++) {
    const d = Math.hypot(ring[i][0] - x, ring[i][1] - y);
    if (d <= bestD) {
      best = i;
      bestD = d;
    }
  }
  return best;
}

/**
 * Nearest edge of closed `ring` within tol: {index, x, y} where the edge runs from ring[index]
 * to ring[(index + 1) % n] and (x, y) is the closest point on it; null if none is that close.
 */
export function nearestEdge(ring, x, y, tol) {
  let best = null;
  const n = ring.length;
  for (let i = 0; i < n; i++) {
    const [ax, ay] = ring[i];
    const [bx, by] = ring[(i + 1) % n];
    const d = distToSegment(x, y, ax, ay, bx, by);
    if (d <= tol && (best === null || d < best.d)) {
      const dx = bx - ax, dy = by - ay;
      const len2 = dx * dx + dy * dy;
      const t = len2 > 0 ? clamp(((x - ax) * dx + (y - ay) * dy) / len2, 0, 1) : 0;
      best = { index: i, x: ax + t * dx, y: ay + t * dy, d };
    }
  }
  return best && { index: best.index, x: best.x, y: best.y };
}

// ---------------------------------------------------------------------------------------------
// Edits: each returns new geometry and leaves its input untouched.

/** Ring with a new vertex (x, y) after ring[edgeIndex]; the new vertex is at edgeIndex + 1. */
export function insertVertex(ring, edgeIndex, x, y) {
  const out = ring.slice();
  out.splice(edgeIndex + 1, 0, [x, y]);
  return out;
}

/** Ring without vertex `index`, or null when that would leave fewer than 3 vertices. */
export function removeVertex(ring, index) {
  if (ring.length <= 3 || index < 0 || index >= ring.length) return null;
  return ring.filter((_, i) => i !== index);
}

export function moveVertex(ring, index, x, y) {
  return ring.map((p, i) => (i === index ? [x, y] : p));
}

export function translateGeometry(kind, g, dx, dy) {
  if (kind === 'box') return [g[0] + dx, g[1] + dy, g[2] + dx, g[3] + dy];
  if (kind === 'point') return [g[0] + dx, g[1] + dy];
  if (kind === 'polygon') return g.map(([x, y]) => [x + dx, y + dy]);
  return g;
}

/**
 * Translation (dx, dy) limited so that `bbox` stays inside the w x h image on each axis where it
 * fits; an axis on which the shape is already bigger than the image (or outside it) is free.
 */
export function clampTranslation(bbox, dx, dy, w, h) {
  const lim = (d, lo, hi, size) => {
    if (lo < 0 || hi > size) return d;
    return clamp(d, -lo, size - hi);
  };
  return { dx: lim(dx, bbox[0], bbox[2], w), dy: lim(dy, bbox[1], bbox[3], h) };
}

// Box handles: corners and edge midpoints, named by compass direction.
export const HANDLE_NAMES = ['nw', 'n', 'ne', 'e', 'se', 's', 'sw', 'w'];
export const HANDLE_CURSORS = {
  nw: 'nwse-resize', se: 'nwse-resize', ne: 'nesw-resize', sw: 'nesw-resize',
  n: 'ns-resize', s: 'ns-resize', e: 'ew-resize', w: 'ew-resize',
};

/** The 8 handles of a normalized box: [{name, x, y}] in image pixels. */
export function boxHandles(box) {
  const [x0, y0, x1, y1] = box;
  const mx = (x0 + x1) / 2, my = (y0 + y1) / 2;
  const at = { nw: [x0, y0], n: [mx, y0], ne: [x1, y0], e: [x1, my],
    se: [x1, y1], s: [mx, y1], sw: [x0, y1], w: [x0, my] };
  return HANDLE_NAMES.map((name) => ({ name, x: at[name][0], y: at[name][1] }));
}

/** Name of the handle of `box` within tol of (x, y) (corners first), or null. */
export function handleAt(box, x, y, tol) {
  let best = null;
  let bestD = tol;
  for (const h of boxHandles(box)) {
    // Corners win ties with edge midpoints on tiny boxes, so a box stays resizable both ways.
    const d = Math.hypot(h.x - x, h.y - y) - (h.name.length === 2 ? 1e-6 : 0);
    if (d <= bestD) {
      best = h.name;
      bestD = d;
    }
  }
  return best;
}

/** `box` with the edges under `handle` moved to (x, y), normalized (dragging past flips it). */
export function resizeBox(box, handle, x, y) {
  let [x0, y0, x1, y1] = box;
  if (handle.includes('w')) x0 = x;
  if (handle.includes('e')) x1 = x;
  if (handle.includes('n')) y0 = y;
  if (handle.includes('s')) y1 = y;
  return normalizeBox([x0, y0, x1, y1]);
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** True when click `cur` ({t, x, y}: ms and screen px) completes a double click after `prev`. */
export function isDoubleClick(prev, cur, maxMs = 400, maxDist = 6) {
  return !!prev && cur.t - prev.t <= maxMs && Math.hypot(cur.x - prev.x, cur.y - prev.y) <= maxDist;
}

/** p-th percentile (0..100) by nearest rank of a list of numbers; 0 for an empty list. */
export function percentile(values, p) {
  if (!values.length) return 0;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((clamp(p, 0, 100) / 100) * sorted.length);
  return sorted[clamp(rank - 1, 0, sorted.length - 1)];
}

/** Cheap numeric fingerprint of a geometry, so a cache notices edits without deep compares. */
export function geometryHash(g) {
  let h = 0;
  let k = 1;
  const walk = (v) => {
    if (Array.isArray(v)) {
      for (const e of v) walk(e);
    } else if (typeof v === 'number') {
      h = (h + v * k) % 1e15;
      k = (k * 31 + 7) % 1000003;
    }
  };
  walk(g && g.bbox ? [g.bbox, typeof g.rle?.counts === 'string' ? g.rle.counts.length : 0] : g);
  return h;
}
