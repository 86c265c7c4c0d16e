// Frame timing for the canvas benchmark: real draw times, measured with performance.now().

import { percentile } from './geometry.js';

/** Frames kept for the percentiles. */
const WINDOW = 240;

export class FrameStats {
  constructor() {
    /**
     * When true, each frame copies one pixel out of the canvas, which forces Chromium's
     * deferred Canvas 2D drawing to rasterize inside the timed region (benchmarks only).
     */
    this.measureRaster = false;
    this._probe = null;
    this.reset();
  }

  reset() {
    this.frames = 0;
    this.lastMs = 0;
    this.times = [];
  }

  /** Time draw() (and with measureRaster, the rasterization of `canvas`); returns draw()'s value. */
  time(canvas, draw) {
    const t0 = performance.now();
    const out = draw(t0);
    if (this.measureRaster) {
      if (!this._probe) {
        this._probe = document.createElement('canvas').getContext('2d', { willReadFrequently: true });
      }
      this._probe.drawImage(canvas, 0, 0, 1, 1, 0, 0, 1, 1);
      this._probe.getImageData(0, 0, 1, 1);
    }
    const dt = performance.now() - t0;
    this.frames++;
    this.lastMs = dt;
    this.times.push(dt);
    if (this.times.length > WINDOW) this.times.shift();
    return out;
  }

  /** {frames, lastFrameMs, p50FrameMs, p95FrameMs} over the last frames. */
  snapshot() {
    return { frames: this.frames, lastFrameMs: this.lastMs,
      p50FrameMs: percentile(this.times, 50), p95FrameMs: percentile(this.times, 95) };
  }
}
