// A bitmap cache of the shapes layer (every shape except the selection), for many shapes.
//
// Without a GPU, Chromium rasterizes Canvas 2D in software: filling and stroking thousands of
// polygons costs tens of ms per frame. The layer is rendered once for the current scale over the
// viewport plus a margin, and each frame while panning is a single blit. During a zoom the old
// bitmap is drawn scaled (a moment of softness), or the vectors directly where it falls short,
// and it is rebuilt once the zoom settles; when rebuilding is cheap it is rebuilt at once.

import { containsRect, intersectRect, viewportRect } from './geometry.js';

/** Largest bitmap the layer may use, in device pixels (4 bytes each). */
const MAX_LAYER_PX = 16e6;
/** Share of the viewport added on each side, so pans and zooming out stay inside the bitmap. */
const MARGIN = 1;
/** CSS px drawn around the shapes' extent (stroke width, point radius). */
const PAD_PX = 12;

export class ShapeLayer {
  constructor() {
    this.canvas = document.createElement('canvas');
    this.canvas.width = 1;
    this.canvas.height = 1;
    this.ctx = this.canvas.getContext('2d');
    this.source = null;
    this.dpr = 0;
    this.k = 0;
    this.region = null;
    this.w = 0;
    this.h = 0;
    this.fx = 0;
    this.fy = 0;
    /** Cost of a build with its first blit (ms): a decaying maximum, so one cheap build after
     * expensive ones does not make the next expensive build run in the middle of a gesture. */
    this.buildMs = 0;
  }

  /** True when the bitmap shows `source` (the draw groups) at this pixel ratio. */
  has(source, dpr) {
    return this.source === source && this.dpr === dpr;
  }

  /** True when the bitmap holds every shape visible through the viewport. */
  covers(view, cssW, cssH, extent) {
    if (!this.region) return false;
    const need = intersectRect(viewportRect(view, cssW, cssH), extent);
    return !need || containsRect(this.region, need);
  }

  /**
   * Render `source` with draw(ctx) (given an image-space transform) for `view`. `extent` is the
   * bounding box of all shapes in image pixels: the bitmap never covers more than that.
   */
  build(source, draw, view, dpr, cssW, cssH, extent) {
    const k = view.scale;
    const vr = viewportRect(view, cssW, cssH);
    let f = MARGIN;
    while (f > 0 && cssW * (1 + 2 * f) * cssH * (1 + 2 * f) * dpr * dpr > MAX_LAYER_PX) f -= 0.1;
    f = Math.max(f, 0);
    const mw = (vr[2] - vr[0]) * f;
    const mh = (vr[3] - vr[1]) * f;
    const pad = PAD_PX / k;
    const region = intersectRect([vr[0] - mw, vr[1] - mh, vr[2] + mw, vr[3] + mh],
      [extent[0] - pad, extent[1] - pad, extent[2] + pad, extent[3] + pad]);
    this.source = source;
    this.dpr = dpr;
    this.k = k;
    if (!region) {
      // Nothing visible: an empty region that still covers the (empty) need.
      this.region = [vr[0], vr[1], vr[0], vr[1]];
      this.w = this.h = 0;
      return;
    }
    // Place the bitmap so that blitting it at an integer offset is exact for the current view.
    const ox = dpr * (region[0] * k + view.tx);
    const oy = dpr * (region[1] * k + view.ty);
    this.fx = ox - Math.floor(ox);
    this.fy = oy - Math.floor(oy);
    const w = Math.ceil((region[2] - region[0]) * k * dpr + this.fx) + 1;
    const h = Math.ceil((region[3] - region[1]) * k * dpr + this.fy) + 1;
    const c = this.canvas;
    if (w > c.width || h > c.height || w * h * 4 < c.width * c.height) {
      c.width = w;
      c.height = h;
    }
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, c.width, c.height);
    ctx.setTransform(dpr * k, 0, 0, dpr * k, this.fx - dpr * k * region[0], this.fy - dpr * k * region[1]);
    draw(ctx);
    this.region = region;
    this.w = w;
    this.h = h;
  }

  /** Draw the bitmap into `ctx` for `view` (scaled if the view's scale is not the bitmap's). */
  blit(ctx, view, dpr) {
    if (!this.w || !this.h) return;
    const k = view.scale;
    const r = k / this.k;
    const ix = this.region[0] - this.fx / (dpr * this.k);
    const iy = this.region[1] - this.fy / (dpr * this.k);
    const dx = dpr * (ix * k + view.tx);
    const dy = dpr * (iy * k + view.ty);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (r === 1) {
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.canvas, 0, 0, this.w, this.h, Math.round(dx), Math.round(dy), this.w, this.h);
    } else {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(this.canvas, 0, 0, this.w, this.h, dx, dy, this.w * r, this.h * r);
    }
  }

  destroy() {
    this.source = null;
    this.canvas.width = 0;
    this.canvas.height = 0;
  }
}
