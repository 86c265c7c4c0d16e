// The only way this page builds DOM. Strings always become text nodes (never HTML), so a
// class named `<img src=x onerror=alert(1)>` shows literally and runs nothing.

const SVG_NS = 'http://www.w3.org/2000/svg';
// Properties that must be set as DOM properties, not attributes, to take effect.
const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'tabIndex',
  'indeterminate', 'multiple', 'readOnly', 'min', 'max', 'step', 'type', 'placeholder', 'title',
  'htmlFor', 'id', 'name', 'spellcheck', 'autocomplete', 'draggable', 'loading', 'decoding', 'alt']);
const FORBIDDEN = new Set(['innerHTML', 'outerHTML', 'srcdoc', 'style']);

function setProps(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false && !PROPS.has(key)) continue;
    if (FORBIDDEN.has(key)) throw new Error(`dom.h: '${key}' is not allowed`);
    if (key === 'class') {
      const names = Array.isArray(value) ? value.filter(Boolean).join(' ') : String(value);
      if (el instanceof SVGElement) el.setAttribute('class', names); else el.className = names;
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (key === 'vars') {
      // CSS custom properties through the CSSOM: allowed by `style-src 'self'`.
      for (const [k, v] of Object.entries(value)) el.style.setProperty(k, String(v));
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (key.startsWith('on')) {
      if (typeof value !== 'function') throw new Error(`dom.h: '${key}' must be a function`);
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (PROPS.has(key) && !(el instanceof SVGElement)) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

export function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
  return el;
}

/** h('button', {class: 'btn', onclick: fn, title: 'Undo'}, 'text', otherNode) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  return append(el, children);
}

/** Same as h() for SVG elements (icons). */
export function svg(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  return append(el, children);
}

/** Replace every child of `el` with `children` (strings become text). */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** True when keyboard input belongs to a text field (shortcuts must not fire). */
export function isTyping(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  if (target instanceof HTMLInputElement) {
    return !['button', 'checkbox', 'radio', 'color', 'range', 'submit', 'reset'].includes(target.type);
  }
  return false;
}

export function formatCount(n) {
  return Number(n).toLocaleString('en-US');
}

export function plural(n, one, many = `${one}s`) {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** A class color as '#rrggbb', or gray: colors come from project files, never trusted as CSS. */
export function safeColor(color) {
  return typeof color === 'string' && /^#[0-9a-fA-F]{6}$/.test(color) ? color : '#9ca3af';
}
