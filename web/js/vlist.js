// A virtualized list: fixed row height, only the rows in view (plus a margin) exist in the DOM,
// and row elements are reused. This keeps a 10,000-image folder as fast as a 10-image one.
import { h } from './dom.js';

export class VirtualList {
  /**
   * @param {HTMLElement} viewport scrolling element (gets a spacer child)
   * @param {{rowHeight: number, createRow: () => HTMLElement, renderRow: (el, index) => void}} opts
   */
  constructor(viewport, { rowHeight, createRow, renderRow, overscan = 6 }) {
    this.viewport = viewport;
    this.rowHeight = rowHeight;
    this.createRow = createRow;
    this.renderRow = renderRow;
    this.overscan = overscan;
    this.count = 0;
    this.rows = new Map(); // index -> element
    this.pool = [];
    this.spacer = h('div', { class: 'vlist-spacer' });
    viewport.appendChild(this.spacer);
    this.frame = 0;
    viewport.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(viewport);
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.update(false);
    });
  }

  /** New row count; every visible row is re-rendered. */
  setCount(count) {
    this.count = count;
    this.spacer.style.height = `${count * this.rowHeight}px`;
    this.update(true);
  }

  /** Re-render rows in view (data changed, count did not). */
  refresh() {
    this.update(true);
  }

  /** Re-render one row if it is in the DOM. */
  refreshIndex(index) {
    const el = this.rows.get(index);
    if (el) this.renderRow(el, index);
  }

  range() {
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - this.overscan);
    const last = Math.min(this.count - 1, Math.ceil((top + height) / this.rowHeight) + this.overscan);
    return [first, last];
  }

  update(all) {
    const [first, last] = this.range();
    for (const [index, el] of this.rows) {
      if (index < first || index > last) {
        this.rows.delete(index);
        el.remove();
        this.pool.push(el);
      }
    }
    for (let i = first; i <= last; i += 1) {
      let el = this.rows.get(i);
      const fresh = !el;
      if (fresh) {
        el = this.pool.pop() || this.createRow();
        this.rows.set(i, el);
        el.style.transform = `translateY(${i * this.rowHeight}px)`;
        this.viewport.appendChild(el);
      }
      if (fresh || all) this.renderRow(el, i);
    }
  }

  /** Scroll the minimum needed so row `index` is fully visible. */
  scrollIntoView(index) {
    if (index < 0 || index >= this.count) return;
    const top = index * this.rowHeight;
    const bottom = top + this.rowHeight;
    const vp = this.viewport;
    const far = bottom < vp.scrollTop - this.rowHeight || top > vp.scrollTop + vp.clientHeight + this.rowHeight;
    // A jump (search, undo elsewhere) centers the row; a step scrolls just enough.
    if (far) vp.scrollTop = top - (vp.clientHeight - this.rowHeight) / 2;
    else if (top < vp.scrollTop) vp.scrollTop = top;
    else if (bottom > vp.scrollTop + vp.clientHeight) vp.scrollTop = bottom - vp.clientHeight;
    this.update(false);
  }

  elementFor(index) {
    return this.rows.get(index) || null;
  }
}
