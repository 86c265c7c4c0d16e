// The shapes on screen: validated records, per-shape caches, and per-color draw groups.
//
// Paths are built in IMAGE coordinates once per geometry version, so panning and zooming only
// change the canvas transform. Shapes that share a color and status are merged into one Path2D
// per group, so a frame costs one fill + one stroke per group instead of one per shape.

import { geometryHash, isBox, isPoint, isRing, shapeArea, shapeBBox } from './geometry.js';
import { maskCrop } from './rle.js';

/** Color of shapes without a class (or with a class the page has not sent). */
export const NEUTRAL = '#9ca3af';

/** `c` if it is a #rrggbb color, else the neutral gray (class colors are untrusted input). */
export function sanitizeColor(c) {
  return typeof c === 'string' && /^#[0-9a-fA-F]{6}$/.test(c) ? c.toLowerCase() : NEUTRAL;
}

/** 'rgba(r,g,b,a)' of a #rrggbb color. */
export function rgba(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

function validGeometry(kind, g) {
  if (kind === 'box') return isBox(g);
  if (kind === 'point') return isPoint(g);
  if (kind === 'polygon') return isRing(g);
  if (kind === 'mask') {
    return !!g && isBox(g.bbox) && !!g.rle && Array.isArray(g.rle.size) && g.rle.size.length === 2;
  }
  return false;
}

export class ShapeSet {
  constructor() {
    /** Drawable shapes, bottom to top: {id, rec, kind, geometry, classId, status, bbox, area, key}. */
    this.items = [];
    this.byId = new Map();
    /** id -> geometry shown instead of the record's (a drag in progress, or one awaiting its echo). */
    this.overrides = new Map();
    this.classes = new Map();
    this._paths = new Map();
    this._masks = new Map();
    this._groups = null;
    this._groupsExclude = undefined;
    this.skipped = 0;
  }

  /** Replace all shapes. Rejected proposals and malformed geometry are not drawn (counted in skipped). */
  setShapes(records) {
    this.items = [];
    this.byId = new Map();
    this.overrides.clear();
    this.skipped = 0;
    for (const rec of Array.isArray(records) ? records : []) {
      if (!rec || rec.status === 'rejected' || !validGeometry(rec.kind, rec.geometry)) {
        this.skipped++;
        continue;
      }
      const item = { id: rec.id, rec, kind: rec.kind, classId: rec.class_id ?? null,
        status: rec.status === 'pending' ? 'pending' : 'accepted' };
      this._setGeometry(item, rec.geometry);
      this.items.push(item);
      this.byId.set(item.id, item);
    }
    for (const cache of [this._paths, this._masks]) {
      for (const id of cache.keys()) if (!this.byId.has(id)) cache.delete(id);
    }
    this._groups = null;
  }

  setClasses(classes) {
    this.classes = new Map();
    for (const c of Array.isArray(classes) ? classes : []) {
      if (c && c.id != null) {
        this.classes.set(c.id, { name: String(c.name ?? ''), color: sanitizeColor(c.color) });
      }
    }
    this._groups = null;
  }

  colorOf(classId) {
    const c = classId == null ? null : this.classes.get(classId);
    return c ? c.color : NEUTRAL;
  }

  nameOf(classId) {
    const c = classId == null ? null : this.classes.get(classId);
    return c ? c.name : '';
  }

  /** Show `geometry` for shape `id` until the next setShapes (or clear with null). */
  setOverride(id, geometry) {
    const item = this.byId.get(id);
    if (!item) return;
    if (geometry == null) this.overrides.delete(id);
    else this.overrides.set(id, geometry);
    this._setGeometry(item, geometry ?? item.rec.geometry);
    if (id !== this._groupsExclude) this._groups = null;
  }

  _setGeometry(item, g) {
    item.geometry = g;
    item.bbox = shapeBBox(item.kind, g);
    item.area = shapeArea(item.kind, g, item.bbox);
    item.key = `${item.rec.updated ?? ''}|${geometryHash(g)}`;
    item.maskHit = item.kind === 'mask' ? (x, y) => this._maskHit(item, x, y) : null;
  }

  /** Path2D of a box or polygon in image coordinates (cached by geometry version). */
  path(item) {
    const hit = this._paths.get(item.id);
    if (hit && hit.key === item.key) return hit.path;
    const p = new Path2D();
    const g = item.geometry;
    if (item.kind === 'box') {
      p.rect(Math.min(g[0], g[2]), Math.min(g[1], g[3]), Math.abs(g[2] - g[0]), Math.abs(g[3] - g[1]));
    } else if (item.kind === 'polygon') {
      p.moveTo(g[0][0], g[0][1]);
      for (let i = 1; i < g.length; i++) p.lineTo(g[i][0], g[i][1]);
      p.closePath();
    }
    this._paths.set(item.id, { key: item.key, path: p });
    return p;
  }

  /**
   * Decoded mask of a mask shape: {canvas, x, y, w, h, data}: the mask painted in its class
   * color, translucent inside and opaque on its outline (so it reads like the other shapes'
   * fill + stroke); null when its RLE cannot be decoded.
   */
  mask(item) {
    const color = this.colorOf(item.classId);
    const key = `${item.key}|${color}|${item.status}`;
    const hit = this._masks.get(item.id);
    if (hit && hit.key === key) return hit.value;
    let value = null;
    try {
      const crop = hit && hit.crop && hit.cropKey === item.key ? hit.crop
        : maskCrop(item.geometry.rle, item.bbox);
      value = { ...crop, canvas: null };
      if (crop.w && crop.h) value.canvas = paintMask(crop, color, item.status === 'pending' ? 70 : 100);
      this._masks.set(item.id, { key, value, crop, cropKey: item.key });
    } catch (err) {
      console.warn(`Mask of shape ${item.id} could not be decoded: ${err.message}`);
      this._masks.set(item.id, { key, value: null });
    }
    return value;
  }

  _maskHit(item, x, y) {
    const m = this.mask(item);
    if (!m || !m.w) return false;
    const c = Math.floor(x) - m.x;
    const r = Math.floor(y) - m.y;
    return c >= 0 && r >= 0 && c < m.w && r < m.h && m.data[r * m.w + c] === 1;
  }

  /**
   * Draw groups of every shape except `excludeId` (a shape being dragged is drawn on its own, so
   * its moves never rebuild the groups): [{color, status, path, points: [item], masks: [item]}], with
   * `.extent`. The same array comes back until something in it changes (callers cache on it).
   */
  groups(excludeId) {
    if (this._groups && this._groupsExclude === excludeId) return this._groups;
    const map = new Map();
    const extent = [Infinity, Infinity, -Infinity, -Infinity];
    for (const item of this.items) {
      if (item.id === excludeId) continue;
      const b = item.bbox;
      if (b[0] < extent[0]) extent[0] = b[0];
      if (b[1] < extent[1]) extent[1] = b[1];
      if (b[2] > extent[2]) extent[2] = b[2];
      if (b[3] > extent[3]) extent[3] = b[3];
      const color = this.colorOf(item.classId);
      const k = `${color}|${item.status}`;
      let g = map.get(k);
      if (!g) {
        g = { color, status: item.status, path: new Path2D(), paths: 0, points: [], masks: [] };
        map.set(k, g);
      }
      if (item.kind === 'point') g.points.push(item);
      else if (item.kind === 'mask') g.masks.push(item);
      else {
        g.path.addPath(this.path(item));
        g.paths++;
      }
    }
    // Pending proposals on top of accepted shapes, so a new proposal is never hidden.
    this._groups = [...map.values()].sort((a, b) => (a.status === b.status ? 0 : a.status === 'pending' ? 1 : -1));
    /** Bounding box of every shape in the groups (null when there are none). */
    this._groups.extent = extent[0] <= extent[2] ? extent : null;
    this._groupsExclude = excludeId;
    return this._groups;
  }
}

/** A canvas of crop.w x crop.h with the mask in `color`: alpha `fill` inside, 235 on the edge. */
function paintMask(crop, color, fill) {
  const { w, h, data } = crop;
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  const n = parseInt(color.slice(1), 16);
  const r = (n >> 16) & 255, g = (n >> 8) & 255, b = n & 255;
  const at = (x, y) => x >= 0 && y >= 0 && x < w && y < h && data[y * w + x] === 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!data[i]) continue;
      const edge = !at(x - 1, y) || !at(x + 1, y) || !at(x, y - 1) || !at(x, y + 1);
      img.data[4 * i] = r;
      img.data[4 * i + 1] = g;
      img.data[4 * i + 2] = b;
      img.data[4 * i + 3] = edge ? 235 : fill;
    }
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}
