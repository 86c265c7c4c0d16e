// Mouse, wheel and Space handling for the labeling canvas: turns input into drawing, selection,
// edits and view changes on the LabelCanvas that owns it (through its underscore methods).
//
// Gestures are tracked by pointer id with pointer capture, so a drag that leaves the canvas
// still ends cleanly. Edits show live (as overrides) and are reported once, on release.

import {
  HANDLE_CURSORS, boxFromPoints, clampPoint, clampTranslation, handleAt, hitTest, imageToView,
  insertVertex, isDoubleClick, moveVertex, nearestEdge, nearestVertex, panView, resizeBox,
  translateGeometry, viewToImage, wheelZoomFactor,
} from './geometry.js';

/** Screen px a press must travel before it counts as a drag (smaller is a click). */
export const DRAG_PX = 3;
/** Screen px around an outline, point or handle that still hits it. */
export const HIT_PX = 5;
export const HANDLE_PX = 7;
/** Screen px around the first polygon vertex where a click closes the polygon. */
export const SNAP_PX = 8;

function isEditable(t) {
  return !!t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName || ''));
}

export class PointerInput {
  /** @param {import('./index.js').LabelCanvas} owner */
  constructor(owner) {
    this.c = owner;
    this.el = owner._canvas;
    this.drag = null;
    this.lastClick = null;
    this.space = false;
    this.over = false;
    this.cursor = '';
    this.hoverCursor = '';
    const on = (target, type, fn, opts) => {
      target.addEventListener(type, fn, opts);
      this._off.push(() => target.removeEventListener(type, fn, opts));
    };
    this._off = [];
    on(this.el, 'pointerdown', (e) => this.down(e));
    on(this.el, 'pointermove', (e) => this.move(e));
    on(this.el, 'pointerup', (e) => this.up(e));
    on(this.el, 'pointercancel', () => this.abort());
    on(this.el, 'pointerenter', () => { this.over = true; });
    on(this.el, 'pointerleave', () => this.leave());
    on(this.el, 'wheel', (e) => this.wheel(e), { passive: false });
    on(this.el, 'contextmenu', (e) => e.preventDefault());
    // Middle button: stop the browser's autoscroll; pointer events alone cannot.
    on(this.el, 'mousedown', (e) => { if (e.button === 1) e.preventDefault(); });
    on(window, 'keydown', (e) => this.key(e, true));
    on(window, 'keyup', (e) => this.key(e, false));
    on(window, 'blur', () => { this.space = false; this.updateCursor(); });
  }

  destroy() {
    for (const off of this._off) off();
    this._off = [];
  }

  local(e) {
    const r = this.el.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  toImage(x, y) {
    return viewToImage(this.c._view, x, y);
  }

  toView(x, y) {
    return imageToView(this.c._view, x, y);
  }

  /** (x, y) kept inside the image (unchanged when there is no image size yet). */
  clampImage(x, y) {
    const c = this.c;
    return c._imgW > 0 && c._imgH > 0 ? clampPoint(x, y, c._imgW, c._imgH) : { x, y };
  }

  /** Show `geometry` for shape `id` while dragging (null: back to the record's). */
  liveEdit(id, geometry) {
    this.c._shapes.setOverride(id, geometry);
    this.c._requestDraw();
  }

  emitCursor(img) {
    const c = this.c;
    if (!img) c._emit('cursor', { x: null, y: null, inside: false });
    else {
      const inside = img.x >= 0 && img.y >= 0 && img.x < c._imgW && img.y < c._imgH;
      c._emit('cursor', { x: img.x, y: img.y, inside });
    }
  }

  down(e) {
    if (this.drag) return;
    const c = this.c;
    const p = this.local(e);
    const img = this.toImage(p.x, p.y);
    if (e.button === 1 || e.button === 2 || (e.button === 0 && this.space)) {
      this.begin(e, { type: 'pan', start: p, view0: c._view });
      e.preventDefault();
      return;
    }
    if (e.button !== 0) return;
    const click = { t: e.timeStamp, x: e.clientX, y: e.clientY };
    const count = isDoubleClick(this.lastClick, click) ? 2 : 1;
    this.lastClick = count === 2 ? null : click;
    if (c._tool === 'select') this.pressSelect(e, p, img, count);
    else if (c._tool === 'box') {
      const a = this.clampImage(img.x, img.y);
      c._drawing = { kind: 'box', box: [a.x, a.y, a.x, a.y] };
      this.begin(e, { type: 'box', start: p, a });
    } else if (c._tool === 'polygon') this.pressPolygon(p, img, count);
    else if (c._tool === 'point') this.begin(e, { type: 'point', start: p, img });
    else if (c._tool === 'segment') {
      // Shift or Alt marks a negative click ("not this"); a drag draws the box prompt.
      this.begin(e, { type: 'segment', start: p, img, a: this.clampImage(img.x, img.y),
        positive: !(e.shiftKey || e.altKey) });
    }
    c._requestDraw();
  }

  begin(e, drag) {
    drag.pointerId = e.pointerId;
    drag.moved = false;
    this.drag = drag;
    try {
      this.el.setPointerCapture(e.pointerId);
    } catch {
      // Synthetic events have no active pointer to capture; the drag still works inside the canvas.
    }
    this.updateCursor();
  }

  pressSelect(e, p, img, count) {
    const c = this.c;
    const k = c._view.scale;
    const sel = c._visible ? c._selectedItem() : null;
    if (sel && sel.kind === 'box') {
      const handle = handleAt(sel.bbox, img.x, img.y, HANDLE_PX / k);
      if (handle) {
        this.begin(e, { type: 'resize', start: p, id: sel.id, handle, box0: sel.bbox });
        return;
      }
    }
    if (sel && sel.kind === 'polygon') {
      const vi = nearestVertex(sel.geometry, img.x, img.y, HANDLE_PX / k);
      if (vi >= 0) {
        c._selectedVertex = vi;
        this.begin(e, { type: 'vertex', start: p, id: sel.id, index: vi, ring0: sel.geometry });
        return;
      }
      const edge = count === 2 ? nearestEdge(sel.geometry, img.x, img.y, HIT_PX / k) : null;
      if (edge) {
        c._selectedVertex = edge.index + 1;
        c._commitChange(sel.id, insertVertex(sel.geometry, edge.index, edge.x, edge.y));
        return;
      }
    }
    const hit = c._visible ? hitTest(c._shapes.items, img.x, img.y, HIT_PX / k) : null;
    c._userSelect(hit);
    c._selectedVertex = null;
    const item = hit == null ? null : c._shapes.byId.get(hit);
    if (item && item.kind !== 'mask') {
      this.begin(e, { type: 'move', start: p, id: hit, img0: img, geom0: item.geometry,
        bbox0: item.bbox, kind: item.kind });
    }
  }

  pressPolygon(p, img, count) {
    const c = this.c;
    const d = c._drawing && c._drawing.kind === 'polygon' ? c._drawing : null;
    if (d && count === 2) {
      c.finishPolygon();
      return;
    }
    if (d && d.points.length >= 3) {
      const f = this.toView(d.points[0][0], d.points[0][1]);
      if (Math.hypot(f.x - p.x, f.y - p.y) <= SNAP_PX) {
        c.finishPolygon();
        return;
      }
    }
    const pt = this.clampImage(img.x, img.y);
    const poly = d || (c._drawing = { kind: 'polygon', points: [], cursor: pt, snap: false });
    const last = poly.points[poly.points.length - 1];
    if (last) {
      const l = this.toView(last[0], last[1]);
      if (Math.hypot(l.x - p.x, l.y - p.y) < 2) return; // a repeated click on the same spot
    }
    poly.points.push([pt.x, pt.y]);
  }

  move(e) {
    const c = this.c;
    const p = this.local(e);
    const img = this.toImage(p.x, p.y);
    this.emitCursor(img);
    const d = this.drag;
    if (!d || e.pointerId !== d.pointerId) {
      this.hover(p, img);
      return;
    }
    if (!d.moved && Math.hypot(p.x - d.start.x, p.y - d.start.y) < DRAG_PX) return;
    d.moved = true;
    if (d.type === 'pan') {
      c._setView(panView(d.view0, p.x - d.start.x, p.y - d.start.y));
    } else if (d.type === 'box') {
      c._drawing.box = boxFromPoints(d.a, this.clampImage(img.x, img.y));
      c._requestDraw();
    } else if (d.type === 'segment') {
      c._seg.dragBox = boxFromPoints(d.a, this.clampImage(img.x, img.y));
      c._requestDraw();
    } else if (d.type === 'move') {
      const t = c._imgW > 0 && c._imgH > 0
        ? clampTranslation(d.bbox0, img.x - d.img0.x, img.y - d.img0.y, c._imgW, c._imgH)
        : { dx: img.x - d.img0.x, dy: img.y - d.img0.y };
      this.liveEdit(d.id, translateGeometry(d.kind, d.geom0, t.dx, t.dy));
    } else if (d.type === 'resize') {
      const q = this.clampImage(img.x, img.y);
      this.liveEdit(d.id, resizeBox(d.box0, d.handle, q.x, q.y));
    } else if (d.type === 'vertex') {
      const q = this.clampImage(img.x, img.y);
      this.liveEdit(d.id, moveVertex(d.ring0, d.index, q.x, q.y));
    }
  }

  up(e) {
    const d = this.drag;
    if (!d || e.pointerId !== d.pointerId) return;
    this.drag = null;
    const c = this.c;
    try {
      this.el.releasePointerCapture(e.pointerId);
    } catch {
      // Not captured (synthetic events).
    }
    if (d.type === 'box') {
      const b = c._drawing && c._drawing.box;
      c._drawing = null;
      if (d.moved && b && b[2] > b[0] && b[3] > b[1]) c._create('box', b);
    } else if (d.type === 'point') {
      const inside = d.img.x >= 0 && d.img.y >= 0 && d.img.x <= c._imgW && d.img.y <= c._imgH;
      if (!d.moved && inside) c._create('point', [d.img.x, d.img.y]);
    } else if (d.type === 'segment') {
      this.releaseSegment(d);
    } else if (d.type === 'move' || d.type === 'resize' || d.type === 'vertex') {
      const item = c._shapes.byId.get(d.id);
      if (d.moved && item) {
        const g = item.geometry;
        const degenerate = d.type === 'resize' && !(g[2] > g[0] && g[3] > g[1]);
        if (degenerate) this.liveEdit(d.id, null);
        else c._commitChange(d.id, g);
      }
    }
    c._requestDraw();
    const p = this.local(e);
    this.hover(p, this.toImage(p.x, p.y));
  }

  /** A segment-tool press ended: a click adds a point, a drag sets the box prompt. */
  releaseSegment(d) {
    const c = this.c;
    const seg = c._seg;
    const box = seg.dragBox;
    seg.dragBox = null;
    if (!d.moved) {
      const inside = d.img.x >= 0 && d.img.y >= 0 && d.img.x < c._imgW && d.img.y < c._imgH;
      if (!inside) return;
      seg.addPoint(d.img.x, d.img.y, d.positive);
    } else if (box && box[2] - box[0] >= 1 && box[3] - box[1] >= 1) {
      seg.setBox(box);
    } else {
      return;
    }
    c._segmentChanged();
  }

  /** Abandon the gesture in progress: live edits snap back, a box being dragged disappears. */
  abort() {
    const d = this.drag;
    if (!d) return false;
    this.drag = null;
    const c = this.c;
    if (d.type === 'box') c._drawing = null;
    if (d.type === 'segment') c._seg.dragBox = null;
    if (d.type === 'move' || d.type === 'resize' || d.type === 'vertex') this.liveEdit(d.id, null);
    if (d.type === 'pan') c._setView(d.view0);
    c._requestDraw();
    this.updateCursor();
    return true;
  }

  leave() {
    this.over = false;
    if (!this.drag) {
      this.emitCursor(null);
      if (this.c._hoverId != null) {
        this.c._hoverId = null;
        this.c._requestDraw();
      }
      const d = this.c._drawing;
      if (d && d.kind === 'polygon') {
        d.cursor = null;
        this.c._requestDraw();
      }
    }
  }

  hover(p, img) {
    const c = this.c;
    const d = c._drawing;
    if (d && d.kind === 'polygon') {
      d.cursor = this.clampImage(img.x, img.y);
      const f = d.points.length >= 3 ? this.toView(d.points[0][0], d.points[0][1]) : null;
      d.snap = !!f && Math.hypot(f.x - p.x, f.y - p.y) <= SNAP_PX;
      c._requestDraw();
    }
    let hoverId = null;
    this.hoverCursor = '';
    if (c._tool === 'select' && c._visible) {
      const k = c._view.scale;
      const sel = c._selectedItem();
      if (sel && sel.kind === 'box') {
        const h = handleAt(sel.bbox, img.x, img.y, HANDLE_PX / k);
        if (h) this.hoverCursor = HANDLE_CURSORS[h];
      } else if (sel && sel.kind === 'polygon' && nearestVertex(sel.geometry, img.x, img.y, HANDLE_PX / k) >= 0) {
        this.hoverCursor = 'pointer';
      }
      if (!this.hoverCursor) {
        hoverId = hitTest(c._shapes.items, img.x, img.y, HIT_PX / k);
        if (hoverId != null) {
          const item = c._shapes.byId.get(hoverId);
          this.hoverCursor = hoverId === c._selectedId && item.kind !== 'mask' ? 'move' : 'pointer';
        }
      }
    }
    if (hoverId !== c._hoverId) {
      c._hoverId = hoverId;
      c._requestDraw();
    }
    this.updateCursor();
  }

  updateCursor() {
    const d = this.drag;
    let cursor;
    if (d && d.type === 'pan') cursor = 'grabbing';
    else if (this.space && !d) cursor = 'grab';
    else if (d && d.type === 'resize') cursor = HANDLE_CURSORS[d.handle];
    else if (d && (d.type === 'move' || d.type === 'vertex')) cursor = 'move';
    else if (this.c._tool !== 'select') cursor = 'crosshair';
    else cursor = this.hoverCursor || 'default';
    if (cursor !== this.cursor) {
      this.cursor = cursor;
      this.el.style.cursor = cursor;
    }
  }

  wheel(e) {
    e.preventDefault();
    const c = this.c;
    const p = this.local(e);
    // A sideways trackpad swipe (or shift+wheel) pans; everything else zooms at the cursor.
    if (!e.ctrlKey && Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      const px = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
      c._setView(panView(c._view, -e.deltaX * px, 0));
      return;
    }
    c._zoomAtLocal(wheelZoomFactor(e.deltaY, e.deltaMode, e.ctrlKey), p.x, p.y);
  }

  key(e, down) {
    if (e.code !== 'Space' || isEditable(e.target)) return;
    if (down && !e.repeat) this.space = true;
    if (!down) this.space = false;
    // Keep Space from scrolling the page or pressing a focused button while it means "pan".
    if (this.over || this.drag) e.preventDefault();
    this.updateCursor();
  }
}
