// LabelCanvas: the image-labeling canvas of the page (public API of web/js/canvas/).
//
// Coordinates are image pixels as displayed (floats, origin top-left). The view maps them to the
// canvas element: client = image * scale + t (CSS px relative to the element). Events are
// CustomEvents with the payload in .detail:
//   'create' {kind, geometry}   a finished new shape (box, polygon or point)
//   'change' {id, geometry}     a move / resize / vertex edit, once, when the mouse is released
//   'select' {id | null}        the user selected something else (not sent for select() calls)
//   'cursor' {x, y, inside}     image coords under the mouse; x = y = null when it leaves
//   'view'   {scale}            the zoom changed
//   'segment' {points, box}     the segment tool's prompt changed (a click, a box, an undo, a
//                               clear); points are [x, y, 1 | 0] (positive | negative)
// Shapes the user edits keep showing their edited geometry until the next setShapes().

import { clampView, fitView, imageToView, removeVertex, viewToImage, zoomAt,
  zoomLimits } from './geometry.js';
import { imageKey, loadImage } from './image.js';
import { PointerInput } from './interact.js';
import { ShapeLayer } from './layer.js';
import { drawFrame } from './render.js';
import { SegmentPrompt } from './segment.js';
import { FrameStats } from './stats.js';
import { NEUTRAL, ShapeSet } from './shapes.js';

export const TOOLS = ['select', 'box', 'polygon', 'point', 'segment'];
const FIT_MARGIN = 20;
/** How long a just-created shape shows as a ghost if the page never sends it back. */
const GHOST_MS = 5000;
/** A zoom counts as in progress until the scale has been still this long (ms). */
const SETTLE_MS = 150;

export class LabelCanvas extends EventTarget {
  /** @param {HTMLElement} host element to fill; give it a size with CSS */
  constructor(host) {
    super();
    if (!(host instanceof HTMLElement)) throw new TypeError('LabelCanvas needs a host element.');
    this._host = host;
    const canvas = document.createElement('canvas');
    canvas.className = 'label-canvas';
    Object.assign(canvas.style, { display: 'block', width: '100%', height: '100%',
      touchAction: 'none', outline: 'none', userSelect: 'none' });
    host.appendChild(canvas);
    this._canvas = canvas;
    this._ctx = canvas.getContext('2d');
    this._shapes = new ShapeSet();
    this._layer = new ShapeLayer();
    this._lastScaleChange = 0;
    this._settleTimer = 0;
    this._view = { scale: 1, tx: 0, ty: 0 };
    this._fitted = true;
    this._image = null;
    this._imgW = 0;
    this._imgH = 0;
    this._imageKey = null;
    this._loading = false;
    this._error = null;
    this._loadToken = 0;
    this._tool = 'select';
    this._activeClass = null;
    this._visible = true;
    this._selectedId = null;
    this._selectedVertex = null;
    this._hoverId = null;
    this._drawing = null;
    this._seg = new SegmentPrompt();
    this._ghost = null;
    this._ghostTimer = 0;
    this._cssW = 0;
    this._cssH = 0;
    this._dpr = 1;
    this._raf = 0;
    this._stats = new FrameStats();
    this._input = new PointerInput(this);
    this._resizeObserver = new ResizeObserver(() => this._resize());
    this._resizeObserver.observe(host);
    this._resize();
  }

  // ----- image and data -----------------------------------------------------------------------

  /**
   * Show the image at `url` (width x height image pixels; the bitmap is stretched to that size).
   * Resolves true once shown, false if a later setImage() superseded it; rejects if it cannot
   * load. The old image stays, dimmed, while the new one loads. A new image (another path or
   * size) is fitted to the view; the same image with other query parameters keeps the view.
   * setImage(null) clears the canvas.
   */
  setImage(spec) {
    const token = ++this._loadToken;
    if (spec == null) {
      this.cancelDrawing();
      this._clearGhost();
      Object.assign(this, { _image: null, _imgW: 0, _imgH: 0, _imageKey: null, _loading: false,
        _error: null });
      this._requestDraw();
      return Promise.resolve(true);
    }
    const { url, width, height } = spec;
    if (typeof url !== 'string' || !url) return Promise.reject(new TypeError(`setImage: bad url ${String(url)}`));
    if (!(width > 0 && height > 0)) {
      return Promise.reject(new TypeError(`setImage: width and height must be positive, got ${width} x ${height}`));
    }
    const key = imageKey(url);
    const isNew = key !== this._imageKey || width !== this._imgW || height !== this._imgH;
    if (isNew) {
      // Work in progress belongs to the picture it was drawn on.
      this.cancelDrawing();
      this._clearGhost();
    }
    this._loading = true;
    this._error = null;
    this._requestDraw();
    const show = (img) => {
      Object.assign(this, { _image: img, _imgW: width, _imgH: height, _imageKey: key,
        _loading: false, _error: img ? null : 'This image could not be displayed.' });
      if (isNew) this._fit();
      this._requestDraw();
    };
    return loadImage(url).then((img) => {
      if (token !== this._loadToken) return false;
      show(img);
      return true;
    }, (err) => {
      if (token !== this._loadToken) return false;
      show(null);
      throw err;
    });
  }

  /** Replace the shapes (shape records). Keeps the selection if its id is still there. */
  setShapes(shapes) {
    this._shapes.setShapes(shapes);
    this._clearGhost();
    if (this._hoverId != null && !this._shapes.byId.has(this._hoverId)) this._hoverId = null;
    if (this._selectedId != null && !this._shapes.byId.has(this._selectedId)) {
      this._selectedId = null;
      this._selectedVertex = null;
      this._emit('select', { id: null });
    }
    const sel = this._selectedItem();
    if (sel && (sel.kind !== 'polygon' || this._selectedVertex >= sel.geometry.length)) {
      this._selectedVertex = null;
    }
    if (this._input.drag && this._input.drag.id != null && !this._shapes.byId.has(this._input.drag.id)) {
      this._input.abort();
    }
    this._requestDraw();
  }

  /** Classes [{id, name, color: '#rrggbb'}]; shapes of unknown classes draw gray. */
  setClasses(classes) {
    this._shapes.setClasses(classes);
    this._requestDraw();
  }

  /** The class whose color previews new shapes (null: neutral gray). */
  setActiveClass(id) {
    this._activeClass = id ?? null;
    this._requestDraw();
  }

  /** Show or hide all shapes and their labels (hidden shapes cannot be picked either). */
  setLabelsVisible(visible) {
    this._visible = !!visible;
    this._hoverId = null;
    this._requestDraw();
  }

  get labelsVisible() {
    return this._visible;
  }

  // ----- tools and selection ------------------------------------------------------------------

  setTool(name) {
    if (!TOOLS.includes(name)) throw new TypeError(`Unknown tool '${name}'; expected one of ${TOOLS.join(', ')}.`);
    if (name === this._tool) return;
    this.cancelDrawing();
    this._tool = name;
    this._hoverId = null;
    this._input.hoverCursor = '';
    this._input.updateCursor();
    this._requestDraw();
  }

  get tool() {
    return this._tool;
  }

  /** Select shape `id` (or nothing). Does not emit 'select'. */
  select(id) {
    this._selectedId = id ?? null;
    this._selectedVertex = null;
    this._requestDraw();
  }

  get selectedId() {
    return this._selectedId;
  }

  /** Index of the selected vertex of the selected polygon, or null. */
  get selectedVertex() {
    return this._selectedVertex;
  }

  /** True while a polygon or box is being drawn. */
  get isDrawing() {
    return this._drawing != null;
  }

  /** Close the polygon being drawn (needs 3 vertices): emits 'create'. Returns whether it did. */
  finishPolygon() {
    const d = this._drawing;
    if (!d || d.kind !== 'polygon' || d.points.length < 3) return false;
    this._drawing = null;
    this._create('polygon', d.points.map(([x, y]) => [x, y]));
    return true;
  }

  /** Remove the last vertex of the polygon being drawn; returns how many are left. */
  undoLastVertex() {
    const d = this._drawing;
    if (!d || d.kind !== 'polygon') return 0;
    d.points.pop();
    if (!d.points.length) this._drawing = null;
    this._requestDraw();
    return d.points.length;
  }

  /**
   * Abort a polygon or box being drawn, a drag in progress, or the segment tool's prompt.
   * Returns whether anything was.
   */
  cancelDrawing() {
    const aborted = this._input ? this._input.abort() : false;
    const had = this._drawing != null;
    this._drawing = null;
    const prompt = this._seg ? this.clearSegment() : false;
    this._requestDraw();
    return aborted || had || prompt;
  }

  // ----- segment tool -------------------------------------------------------------------------

  /** The segment prompt {points: [[x, y, 1|0]], box: [x0,y0,x1,y1] | null}, or null when empty. */
  get segmentPrompt() {
    return this._seg.empty ? null : this._seg.snapshot();
  }

  /** Rings of the mask preview being shown, or null. */
  get segmentPreview() {
    return this._seg.preview ? this._seg.preview.map((r) => r.map((p) => [...p])) : null;
  }

  /** Show rings [[[x, y], ...], ...] as the live mask preview (null: none). Ignored without a prompt. */
  setSegmentPreview(rings) {
    this._seg.preview = !this._seg.empty && Array.isArray(rings) && rings.length ? rings : null;
    this._requestDraw();
  }

  /** Forget the segment prompt and preview; emits 'segment' (empty) if there was one. */
  clearSegment() {
    const had = this._seg.clear();
    if (had) {
      this._requestDraw();
      this._emit('segment', this._seg.snapshot());
    }
    return had;
  }

  /** Remove the last click (else the box) of the segment prompt; emits 'segment'. */
  undoSegmentPoint() {
    if (!this._seg.undo()) return false;
    this._segmentChanged();
    return true;
  }

  _segmentChanged() {
    this._requestDraw();
    this._emit('segment', this._seg.snapshot());
  }

  /** Delete the selected vertex of the selected polygon (keeps 3 at least): emits 'change'. */
  deleteVertex() {
    const sel = this._selectedItem();
    if (!sel || sel.kind !== 'polygon' || this._selectedVertex == null) return false;
    const ring = removeVertex(sel.geometry, this._selectedVertex);
    if (!ring) return false;
    this._selectedVertex = null;
    this._commitChange(sel.id, ring);
    return true;
  }

  // ----- view ---------------------------------------------------------------------------------

  get view() {
    return { ...this._view };
  }

  /** Set the view directly ({scale, tx, ty}); the scale is clamped to the zoom limits. */
  setView(view) {
    const { min, max } = this._limits();
    const scale = Math.min(max, Math.max(min, Number(view.scale) || 1));
    this._setView({ scale, tx: Number(view.tx) || 0, ty: Number(view.ty) || 0 });
  }

  fit() {
    this._fit();
  }

  /** Zoom by `factor` about a page point (default: the canvas centre). */
  zoomBy(factor, clientX, clientY) {
    const r = this._canvas.getBoundingClientRect();
    const x = clientX == null ? this._cssW / 2 : clientX - r.left;
    const y = clientY == null ? this._cssH / 2 : clientY - r.top;
    this._zoomAtLocal(factor, x, y);
  }

  /** Pan by (dx, dy) CSS px. */
  panBy(dx, dy) {
    this._setView({ ...this._view, tx: this._view.tx + dx, ty: this._view.ty + dy });
  }

  /** Page (clientX/clientY) coordinates of image point (x, y). */
  imageToClient(x, y) {
    const r = this._canvas.getBoundingClientRect();
    const p = imageToView(this._view, x, y);
    return { x: p.x + r.left, y: p.y + r.top };
  }

  clientToImage(x, y) {
    const r = this._canvas.getBoundingClientRect();
    return viewToImage(this._view, x - r.left, y - r.top);
  }

  // ----- frames -------------------------------------------------------------------------------

  /** Measured draw times (ms, performance.now() around each frame) over the last frames. */
  get stats() {
    return { ...this._stats.snapshot(), shapes: this._shapes.items.length };
  }

  resetStats() {
    this._stats.reset();
  }

  /** Benchmarks: when true, frame times include rasterization (see FrameStats.measureRaster). */
  get measureRaster() {
    return this._stats.measureRaster;
  }

  set measureRaster(on) {
    this._stats.measureRaster = !!on;
  }

  /** Draw now if a frame is pending (tests and screenshots need not wait for the next frame). */
  flush() {
    if (this._raf) {
      cancelAnimationFrame(this._raf);
      this._raf = 0;
      this._draw();
    }
  }

  destroy() {
    this._loadToken++;
    this._input.destroy();
    this._resizeObserver.disconnect();
    if (this._raf) cancelAnimationFrame(this._raf);
    this._raf = 0;
    this._clearGhost();
    clearTimeout(this._settleTimer);
    this._layer.destroy();
    this._canvas.remove();
  }

  // ----- internals (used by interact.js) ------------------------------------------------------

  _emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  _selectedItem() {
    return this._selectedId == null ? null : this._shapes.byId.get(this._selectedId) || null;
  }

  _userSelect(id) {
    if (id === this._selectedId) return;
    this._selectedId = id;
    this._selectedVertex = null;
    this._requestDraw();
    this._emit('select', { id });
  }

  _commitChange(id, geometry) {
    this._shapes.setOverride(id, geometry);
    this._requestDraw();
    this._emit('change', { id, geometry });
  }

  _create(kind, geometry) {
    this._clearGhost();
    this._ghost = { kind, geometry };
    this._ghostTimer = setTimeout(() => {
      this._ghost = null;
      this._requestDraw();
    }, GHOST_MS);
    this._requestDraw();
    this._emit('create', { kind, geometry });
  }

  _clearGhost() {
    clearTimeout(this._ghostTimer);
    this._ghost = null;
  }

  _limits() {
    return zoomLimits(fitView(this._imgW, this._imgH, this._cssW, this._cssH, FIT_MARGIN).scale);
  }

  _fit() {
    this._setView(fitView(this._imgW, this._imgH, this._cssW, this._cssH, FIT_MARGIN));
    this._fitted = true;
  }

  _zoomAtLocal(factor, x, y) {
    this._setView(zoomAt(this._view, factor, x, y, this._limits()));
  }

  _setView(next) {
    const view = clampView(next, this._imgW, this._imgH, this._cssW, this._cssH);
    const scaleChanged = view.scale !== this._view.scale;
    this._view = view;
    this._fitted = false;
    if (scaleChanged) this._lastScaleChange = performance.now();
    this._requestDraw();
    if (scaleChanged) this._emit('view', { scale: view.scale });
  }

  _resize() {
    const r = this._host.getBoundingClientRect();
    const w = Math.max(0, Math.round(r.width));
    const h = Math.max(0, Math.round(r.height));
    const dpr = window.devicePixelRatio || 1;
    if (w === this._cssW && h === this._cssH && dpr === this._dpr) return;
    const dw = w - this._cssW, dh = h - this._cssH;
    this._cssW = w;
    this._cssH = h;
    this._dpr = dpr;
    this._canvas.width = Math.max(1, Math.round(w * dpr));
    this._canvas.height = Math.max(1, Math.round(h * dpr));
    // A fitted image stays fitted; otherwise the middle of the view stays in the middle.
    if (this._fitted) this._fit();
    else this._setView({ ...this._view, tx: this._view.tx + dw / 2, ty: this._view.ty + dh / 2 });
    this._draw();
  }

  _requestDraw() {
    if (!this._raf) this._raf = requestAnimationFrame(() => {
      this._raf = 0;
      this._draw();
    });
  }

  _draw() {
    if ((window.devicePixelRatio || 1) !== this._dpr) {
      this._resize(); // moved to a screen with another pixel ratio; _resize draws
      return;
    }
    const activeColor = this._activeClass == null ? NEUTRAL : this._shapes.colorOf(this._activeClass);
    const { stale } = this._stats.time(this._canvas, (t0) => drawFrame(this._ctx, {
      dpr: this._dpr, cssW: this._cssW, cssH: this._cssH, view: this._view,
      image: this._image, imgW: this._imgW, imgH: this._imgH, loading: this._loading,
      error: this._error, shapes: this._shapes, visible: this._visible,
      selectedId: this._selectedId, selectedVertex: this._selectedVertex,
      hoverId: this._hoverId, drawing: this._drawing, ghost: this._ghost, activeColor,
      segment: this._tool === 'segment' ? this._seg : null,
      layer: this._layer, zooming: t0 - this._lastScaleChange < SETTLE_MS,
    }));
    if (stale) {
      clearTimeout(this._settleTimer);
      this._settleTimer = setTimeout(() => this._requestDraw(), SETTLE_MS);
    }
  }
}
