// The segment tool's prompt (clicks and a box) and its live mask preview, plus their drawing.
//
// The canvas only collects the prompt and shows what the page gives back: the page asks the
// backend for a mask (segment.click, or smart.select without a model) and hands the polygons to
// setPreview(). Coordinates are image pixels; a point is [x, y, label] with label 1 (positive,
// "this is the object") or 0 (negative, "not this"); the box is [x0, y0, x1, y1].

import { imageToView } from './geometry.js';
import { rgba } from './shapes.js';

const POSITIVE = '#34c77b';
const NEGATIVE = '#ef5b5b';
const MARKER_R = 7;

export class SegmentPrompt {
  constructor() {
    this.points = [];
    this.box = null;
    /** Rings of the mask preview ([[x, y], ...] each), or null. */
    this.preview = null;
    /** The box being dragged right now (not yet part of the prompt). */
    this.dragBox = null;
  }

  get empty() {
    return !this.points.length && !this.box;
  }

  /** What the page sends to the backend: copies, so later clicks never change a call in flight. */
  snapshot() {
    return { points: this.points.map((p) => [...p]), box: this.box ? [...this.box] : null };
  }

  addPoint(x, y, positive) {
    this.points.push([x, y, positive ? 1 : 0]);
  }

  setBox(box) {
    this.box = [...box];
  }

  /** Remove the last click (or, with no clicks left, the box). Returns whether anything went. */
  undo() {
    if (this.points.length) {
      this.points.pop();
    } else if (this.box) {
      this.box = null;
    } else {
      return false;
    }
    if (this.empty) this.preview = null;
    return true;
  }

  /** Forget the prompt and the preview. Returns whether there was anything. */
  clear() {
    const had = !this.empty || !!this.preview || !!this.dragBox;
    this.points = [];
    this.box = null;
    this.preview = null;
    this.dragBox = null;
    return had;
  }
}

/** Rings as a Path2D (even-odd filled, so holes stay holes). */
function ringsPath(rings) {
  const p = new Path2D();
  for (const ring of rings) {
    if (!Array.isArray(ring) || ring.length < 3) continue;
    p.moveTo(ring[0][0], ring[0][1]);
    for (let i = 1; i < ring.length; i++) p.lineTo(ring[i][0], ring[i][1]);
    p.closePath();
  }
  return p;
}

/** Image-space part: the preview mask, the box prompt and the box being dragged. */
export function drawSegmentImage(ctx, seg, view, color) {
  const k = view.scale;
  if (seg.preview && seg.preview.length) {
    const path = ringsPath(seg.preview);
    ctx.setLineDash([]);
    ctx.fillStyle = rgba(color, 0.32);
    ctx.fill(path, 'evenodd');
    ctx.lineWidth = 3.5 / k;
    ctx.strokeStyle = 'rgba(255,255,255,0.75)';
    ctx.stroke(path);
    ctx.lineWidth = 1.75 / k;
    ctx.strokeStyle = color;
    ctx.stroke(path);
  }
  for (const [box, dash] of [[seg.box, [6, 4]], [seg.dragBox, [3, 3]]]) {
    if (!box) continue;
    ctx.setLineDash(dash.map((d) => d / k));
    ctx.lineWidth = 1.5 / k;
    ctx.strokeStyle = 'rgba(255,255,255,0.9)';
    ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]);
  }
  ctx.setLineDash([]);
}

/** Screen-space part: a round marker per click, + for positive and − for negative. */
export function drawSegmentMarkers(ctx, seg, view) {
  ctx.setLineDash([]);
  for (const [x, y, label] of seg.points) {
    const p = imageToView(view, x, y);
    ctx.beginPath();
    ctx.arc(p.x, p.y, MARKER_R, 0, 2 * Math.PI);
    ctx.fillStyle = label ? POSITIVE : NEGATIVE;
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = '#ffffff';
    ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(p.x - 3.5, p.y);
    ctx.lineTo(p.x + 3.5, p.y);
    if (label) {
      ctx.moveTo(p.x, p.y - 3.5);
      ctx.lineTo(p.x, p.y + 3.5);
    }
    ctx.lineWidth = 1.75;
    ctx.stroke();
  }
}
