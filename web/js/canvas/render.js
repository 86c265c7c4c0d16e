// Drawing one frame of the labeling canvas (Canvas 2D).
//
// Image-space content (image, shapes, previews) is drawn under a transform built from the view,
// with line widths divided by the scale so outlines stay a constant number of screen pixels.
// Handles and labels are drawn in screen space. Nothing here changes state.

import { boxHandles, imageToView } from './geometry.js';
import { drawSegmentImage, drawSegmentMarkers } from './segment.js';
import { NEUTRAL, rgba } from './shapes.js';

const LABEL_FONT = '12px system-ui, -apple-system, "Segoe UI", sans-serif';
/** Labels only when at most this many shapes are big enough on screen to carry one. */
const MAX_LABELS = 150;
const MIN_LABEL_SIZE = 28; // CSS px: a shape smaller than this on screen gets no label
const STYLE = {
  accepted: { fill: 0.22, stroke: 0.95, width: 1.5, dash: null },
  pending: { fill: 0.08, stroke: 0.8, width: 1.5, dash: [6, 4] },
};
const POINT_RADIUS = 4.5;
/** From this many shapes on, unselected shapes are drawn through a cached bitmap layer. */
export const LAYER_MIN_SHAPES = 300;
/** A layer that rebuilds faster than this (ms) is rebuilt on every zoom step, never shown stale. */
const CHEAP_BUILD_MS = 8;

/**
 * Draw state `s` into `ctx` (a canvas of s.cssW x s.cssH CSS px at s.dpr device px each).
 * s: {dpr, cssW, cssH, view, image, imgW, imgH, loading, error, shapes, visible, selectedId,
 *     selectedVertex, hoverId, drawing, ghost, activeColor, segment (SegmentPrompt or null),
 *     layer (ShapeLayer), zooming (bool: the scale changed a moment ago)}. Returns {stale}: true when the shapes layer is due for
 *     a rebuild once the zoom settles.
 */
export function drawFrame(ctx, s) {
  const { dpr, view } = s;
  const k = view.scale;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.globalAlpha = 1;
  ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  const toImage = () => ctx.setTransform(dpr * k, 0, 0, dpr * k, dpr * view.tx, dpr * view.ty);
  toImage();
  drawImage(ctx, s);
  let stale = false;
  if (s.visible) {
    stale = drawShapes(ctx, s);
    toImage();
    const hover = s.hoverId != null && s.hoverId !== s.selectedId ? s.shapes.byId.get(s.hoverId) : null;
    if (hover) drawOutline(ctx, s, hover, s.shapes.colorOf(hover.classId), 3);
    const sel = s.selectedId != null ? s.shapes.byId.get(s.selectedId) : null;
    if (sel) drawSelected(ctx, s, sel);
  }
  if (s.ghost) drawGhost(ctx, s);
  if (s.drawing) drawPreview(ctx, s);
  if (s.segment) drawSegmentImage(ctx, s.segment, view, s.activeColor || NEUTRAL);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.setLineDash([]);
  ctx.globalAlpha = 1;
  if (s.visible) {
    const sel = s.selectedId != null ? s.shapes.byId.get(s.selectedId) : null;
    drawLabels(ctx, s, sel);
    if (sel) drawHandles(ctx, s, sel);
  }
  if (s.drawing && s.drawing.kind === 'polygon') drawPolygonVertices(ctx, s);
  if (s.segment) drawSegmentMarkers(ctx, s.segment, view);
  drawMessage(ctx, s);
  return { stale };
}

/**
 * The unselected shapes: straight onto the canvas when there are few, else through the bitmap
 * layer. Returns true when it drew without an up-to-date layer because a zoom is in progress
 * (s.zooming), so the layer is due for a rebuild once the zoom settles.
 */
function drawShapes(ctx, s) {
  // The selection is drawn again on top anyway; it leaves the groups only while its geometry is
  // overridden (dragged), so that a click to select never rebuilds the groups or the layer.
  const sel = s.selectedId;
  const groups = s.shapes.groups(sel != null && s.shapes.overrides.has(sel) ? sel : null);
  const layer = s.layer;
  if (!layer || s.shapes.items.length < LAYER_MIN_SHAPES) {
    drawGroups(ctx, s, groups);
    return false;
  }
  if (!groups.extent) return false;
  const { view, dpr, cssW, cssH } = s;
  const covered = layer.has(groups, dpr) && layer.covers(view, cssW, cssH, groups.extent);
  if (covered && layer.k === view.scale) {
    layer.blit(ctx, view, dpr);
    return false;
  }
  if (s.zooming && layer.buildMs > CHEAP_BUILD_MS) {
    // Mid-zoom, an expensive rebuild per wheel step would stutter: show the old bitmap scaled
    // while it still holds everything in view, else draw the vectors directly.
    if (covered) layer.blit(ctx, view, dpr);
    else drawGroups(ctx, s, groups);
    return true;
  }
  const t0 = performance.now();
  layer.build(groups, (lctx) => drawGroups(lctx, s, groups), view, dpr, cssW, cssH, groups.extent);
  layer.blit(ctx, view, dpr); // also forces the layer's deferred drawing to rasterize
  layer.buildMs = Math.max(performance.now() - t0, layer.buildMs * 0.7);
  return false;
}

function drawImage(ctx, s) {
  if (!(s.imgW > 0 && s.imgH > 0)) return;
  const k = s.view.scale;
  if (s.image) {
    // Past 1:1 the labeler wants to see the actual pixels, not a blur.
    ctx.imageSmoothingEnabled = k < 1;
    ctx.imageSmoothingQuality = 'medium';
    ctx.globalAlpha = s.loading ? 0.35 : 1;
    ctx.drawImage(s.image, 0, 0, s.imgW, s.imgH);
    ctx.globalAlpha = 1;
  } else {
    ctx.fillStyle = 'rgba(128,128,128,0.18)';
    ctx.fillRect(0, 0, s.imgW, s.imgH);
  }
  ctx.lineWidth = 1 / k;
  ctx.strokeStyle = 'rgba(128,128,128,0.6)';
  ctx.strokeRect(0, 0, s.imgW, s.imgH);
}

function drawGroups(ctx, s, groups) {
  const k = s.view.scale;
  // Crowded scenes get hairlines: thinner reads better there, and software rasterizers draw
  // 1-device-pixel strokes several times faster than wider ones.
  const thin = s.shapes.items.length >= LAYER_MIN_SHAPES ? 1 / s.dpr : 0;
  ctx.imageSmoothingEnabled = false;
  for (const g of groups) {
    const st = STYLE[g.status];
    for (const item of g.masks) drawMask(ctx, s, item, 1);
    if (g.paths) {
      ctx.fillStyle = rgba(g.color, st.fill);
      ctx.fill(g.path);
      ctx.strokeStyle = rgba(g.color, st.stroke);
      ctx.lineWidth = (thin || st.width) / k;
      ctx.setLineDash(st.dash ? st.dash.map((d) => d / k) : []);
      ctx.stroke(g.path);
    }
    if (g.points.length) {
      const p = new Path2D();
      const r = POINT_RADIUS / k;
      for (const it of g.points) {
        p.moveTo(it.geometry[0] + r, it.geometry[1]);
        p.arc(it.geometry[0], it.geometry[1], r, 0, 2 * Math.PI);
      }
      ctx.fillStyle = rgba(g.color, g.status === 'pending' ? 0.45 : 1);
      ctx.fill(p);
      ctx.strokeStyle = 'rgba(255,255,255,0.9)';
      ctx.lineWidth = 1.5 / k;
      ctx.setLineDash(st.dash ? st.dash.map((d) => d / (2 * k)) : []);
      ctx.stroke(p);
    }
  }
  ctx.setLineDash([]);
}

function drawMask(ctx, s, item, alpha) {
  const m = s.shapes.mask(item);
  if (!m || !m.canvas) return;
  ctx.globalAlpha = alpha;
  ctx.drawImage(m.canvas, m.x, m.y);
  ctx.globalAlpha = 1;
}

function drawOutline(ctx, s, item, color, widthPx) {
  const k = s.view.scale;
  ctx.setLineDash([]);
  ctx.lineWidth = widthPx / k;
  ctx.strokeStyle = color;
  if (item.kind === 'point') {
    ctx.beginPath();
    ctx.arc(item.geometry[0], item.geometry[1], (POINT_RADIUS + 2) / k, 0, 2 * Math.PI);
    ctx.stroke();
  } else if (item.kind === 'mask') {
    const b = item.bbox;
    ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
  } else {
    ctx.stroke(s.shapes.path(item));
  }
}

function drawSelected(ctx, s, item) {
  const k = s.view.scale;
  const color = s.shapes.colorOf(item.classId);
  const st = STYLE[item.status];
  if (item.kind === 'mask') {
    drawMask(ctx, s, item, 1);
    drawMask(ctx, s, item, 0.4); // stronger, like a selected shape's fill
    ctx.setLineDash([5 / k, 4 / k]);
    const b = item.bbox;
    ctx.lineWidth = 1.5 / k;
    ctx.strokeStyle = 'rgba(255,255,255,0.9)';
    ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    ctx.setLineDash([]);
    return;
  }
  if (item.kind === 'point') {
    ctx.beginPath();
    ctx.arc(item.geometry[0], item.geometry[1], (POINT_RADIUS + 1.5) / k, 0, 2 * Math.PI);
    ctx.fillStyle = color;
    ctx.fill();
    ctx.lineWidth = 2.5 / k;
    ctx.strokeStyle = '#ffffff';
    ctx.stroke();
    return;
  }
  const path = s.shapes.path(item);
  ctx.fillStyle = rgba(color, Math.max(st.fill, 0.3));
  ctx.fill(path);
  // A white halo under the class color keeps the selection visible on any background.
  ctx.setLineDash([]);
  ctx.lineWidth = 4 / k;
  ctx.strokeStyle = 'rgba(255,255,255,0.85)';
  ctx.stroke(path);
  ctx.lineWidth = 2 / k;
  ctx.strokeStyle = color;
  ctx.setLineDash(st.dash ? st.dash.map((d) => d / k) : []);
  ctx.stroke(path);
  ctx.setLineDash([]);
}

function drawGhost(ctx, s) {
  const { kind, geometry } = s.ghost;
  const k = s.view.scale;
  const color = s.activeColor || NEUTRAL;
  ctx.setLineDash([4 / k, 3 / k]);
  ctx.lineWidth = 1.5 / k;
  ctx.strokeStyle = color;
  ctx.fillStyle = rgba(color, 0.15);
  ctx.beginPath();
  if (kind === 'box') ctx.rect(geometry[0], geometry[1], geometry[2] - geometry[0], geometry[3] - geometry[1]);
  else if (kind === 'polygon') geometry.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  else if (kind === 'point') ctx.arc(geometry[0], geometry[1], POINT_RADIUS / k, 0, 2 * Math.PI);
  ctx.closePath();
  ctx.fill();
  ctx.stroke();
  ctx.setLineDash([]);
}

function drawPreview(ctx, s) {
  const d = s.drawing;
  const k = s.view.scale;
  const color = s.activeColor || NEUTRAL;
  ctx.setLineDash([]);
  if (d.kind === 'box') {
    const [x0, y0, x1, y1] = d.box;
    ctx.fillStyle = rgba(color, 0.15);
    ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
    ctx.lineWidth = 3 / k;
    ctx.strokeStyle = 'rgba(255,255,255,0.7)';
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.lineWidth = 1.5 / k;
    ctx.strokeStyle = color;
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    return;
  }
  const pts = d.points;
  if (!pts.length) return;
  ctx.beginPath();
  pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  if (d.cursor) ctx.lineTo(d.cursor.x, d.cursor.y);
  if (pts.length >= 2) {
    ctx.fillStyle = rgba(color, 0.12);
    ctx.fill();
  }
  ctx.lineWidth = 3 / k;
  ctx.strokeStyle = 'rgba(255,255,255,0.6)';
  ctx.stroke();
  ctx.lineWidth = 1.5 / k;
  ctx.strokeStyle = color;
  ctx.stroke();
  if (d.cursor && pts.length >= 2) {
    // The closing segment, so the labeler sees the polygon that Enter would make.
    ctx.beginPath();
    ctx.moveTo(d.cursor.x, d.cursor.y);
    ctx.lineTo(pts[0][0], pts[0][1]);
    ctx.setLineDash([4 / k, 4 / k]);
    ctx.stroke();
    ctx.setLineDash([]);
  }
}

function drawPolygonVertices(ctx, s) {
  const d = s.drawing;
  const color = s.activeColor || NEUTRAL;
  d.points.forEach(([x, y], i) => {
    const p = imageToView(s.view, x, y);
    const first = i === 0;
    const r = first && d.snap ? 7 : first ? 5 : 3.5;
    ctx.beginPath();
    ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
    ctx.fillStyle = first ? '#ffffff' : color;
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = first ? color : '#ffffff';
    ctx.stroke();
  });
}

function drawHandles(ctx, s, item) {
  const color = s.shapes.colorOf(item.classId);
  ctx.lineWidth = 1.5;
  if (item.kind === 'box') {
    for (const h of boxHandles(item.bbox)) {
      const p = imageToView(s.view, h.x, h.y);
      ctx.fillStyle = '#ffffff';
      ctx.strokeStyle = color;
      ctx.fillRect(p.x - 4, p.y - 4, 8, 8);
      ctx.strokeRect(p.x - 4, p.y - 4, 8, 8);
    }
  } else if (item.kind === 'polygon') {
    item.geometry.forEach(([x, y], i) => {
      const p = imageToView(s.view, x, y);
      const on = i === s.selectedVertex;
      ctx.beginPath();
      ctx.arc(p.x, p.y, on ? 6 : 4, 0, 2 * Math.PI);
      ctx.fillStyle = on ? color : '#ffffff';
      ctx.fill();
      ctx.strokeStyle = on ? '#ffffff' : color;
      ctx.stroke();
    });
  }
}

const textWidths = new Map();
function textWidth(ctx, text) {
  let w = textWidths.get(text);
  if (w === undefined) {
    if (textWidths.size > 2000) textWidths.clear();
    w = ctx.measureText(text).width;
    textWidths.set(text, w);
  }
  return w;
}

function labelText(s, item) {
  let text = s.shapes.nameOf(item.classId);
  const rec = item.rec;
  if (!text && item.status === 'pending' && typeof rec.prompt === 'string') text = rec.prompt.slice(0, 40);
  if (item.status === 'pending' && typeof rec.score === 'number') text = `${text} ${rec.score.toFixed(2)}`.trim();
  return text;
}

/** Class names over the shapes big enough on screen, unless too many to read (then only `sel`'s). */
function drawLabels(ctx, s, sel) {
  const v = s.view;
  let picked = [];
  for (const item of s.shapes.items) {
    const b = item.bbox;
    const x0 = b[0] * v.scale + v.tx, y0 = b[1] * v.scale + v.ty;
    const x1 = b[2] * v.scale + v.tx, y1 = b[3] * v.scale + v.ty;
    if (x1 < 0 || y1 < 0 || x0 > s.cssW || y0 > s.cssH) continue;
    if (item !== sel && item.kind !== 'point' && x1 - x0 < MIN_LABEL_SIZE && y1 - y0 < MIN_LABEL_SIZE) continue;
    picked.push([item, x0, y0]);
    if (picked.length > MAX_LABELS) {
      picked = sel ? [[sel, sel.bbox[0] * v.scale + v.tx, sel.bbox[1] * v.scale + v.ty]] : [];
      break;
    }
  }
  ctx.font = LABEL_FONT;
  ctx.textBaseline = 'middle';
  for (const [item, x0, y0] of picked) {
    const text = labelText(s, item);
    if (!text) continue;
    const color = s.shapes.colorOf(item.classId);
    const w = textWidth(ctx, text) + 8;
    const h = 16;
    const x = Math.max(0, Math.min(x0, s.cssW - w));
    const y = y0 - h - 1 >= 0 ? y0 - h - 1 : y0 + 1;
    ctx.globalAlpha = item.status === 'pending' ? 0.75 : 0.9;
    ctx.fillStyle = color;
    ctx.fillRect(x, y, w, h);
    ctx.globalAlpha = 1;
    ctx.fillStyle = isLight(color) ? '#111111' : '#ffffff';
    ctx.fillText(text, x + 4, y + h / 2 + 0.5);
  }
}

function isLight(hex) {
  const n = parseInt(hex.slice(1), 16);
  return 0.299 * ((n >> 16) & 255) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255) > 150;
}

function drawMessage(ctx, s) {
  const text = s.error || (s.loading ? 'Loading…' : '');
  if (!text) return;
  ctx.font = LABEL_FONT;
  ctx.textBaseline = 'middle';
  const w = ctx.measureText(text).width + 20;
  const x = (s.cssW - w) / 2;
  const y = s.cssH / 2 - 14;
  ctx.fillStyle = 'rgba(0,0,0,0.65)';
  ctx.fillRect(x, y, w, 28);
  ctx.fillStyle = '#ffffff';
  ctx.fillText(text, x + 10, y + 14.5);
}
