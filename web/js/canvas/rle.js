// COCO run-length encoded masks, decoded for display (pure; no DOM).
//
// The same conventions as backend/geometry/rle.py (pycocotools): an H x W mask, runs counted in
// column-major order starting with a run of zeros; `counts` is either the compressed string or a
// list of ints. The canvas only ever needs the part of a mask inside its bbox, so it decodes
// straight into that crop.

/** Counts of a compressed COCO RLE string (pycocotools' rleFrString). Throws on bad input. */
export function decodeCounts(s) {
  const out = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error('RLE counts string is truncated.');
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new Error('RLE counts contain characters outside the COCO alphabet.');
      // Arithmetic instead of bit shifts: JS shifts wrap at 32 bits.
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && (c & 0x10)) x -= 2 ** (5 * k);
    }
    if (out.length > 2) x += out[out.length - 2];
    out.push(x);
  }
  return out;
}

/**
 * The mask inside integer rectangle [x0, y0, x1, y1) of the image, as row-major bytes (1 = set).
 * `rle` is {size: [h, w], counts}. Returns {x, y, w, h, data} with the rectangle clipped to the
 * mask; w or h is 0 when nothing is left.
 */
export function maskCrop(rle, rect) {
  const [H, W] = rle.size;
  const counts = typeof rle.counts === 'string' ? decodeCounts(rle.counts) : rle.counts;
  const cx0 = Math.max(0, Math.floor(rect[0]));
  const cy0 = Math.max(0, Math.floor(rect[1]));
  const cx1 = Math.min(W, Math.ceil(rect[2]));
  const cy1 = Math.min(H, Math.ceil(rect[3]));
  const w = Math.max(0, cx1 - cx0);
  const h = Math.max(0, cy1 - cy0);
  const data = new Uint8Array(w * h);
  if (!w || !h || !H) return { x: cx0, y: cy0, w, h, data };
  let pos = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i];
    if (i % 2 === 1 && n > 0) {
      const end = pos + n; // exclusive pixel index, column-major
      for (let col = Math.floor(pos / H); col <= Math.floor((end - 1) / H); col++) {
        if (col < cx0 || col >= cx1) continue;
        const r0 = Math.max(col === Math.floor(pos / H) ? pos % H : 0, cy0);
        const r1 = Math.min(col === Math.floor((end - 1) / H) ? ((end - 1) % H) + 1 : H, cy1);
        for (let r = r0; r < r1; r++) data[(r - cy0) * w + (col - cx0)] = 1;
      }
    }
    pos += n;
  }
  return { x: cx0, y: cy0, w, h, data };
}
