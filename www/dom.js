// Writes to the page that happen only when what they write changed. The ring is drawn every
// frame while a run plays and the panels several times a second, mostly to the same content;
// Chromium invalidates an element's layout on every attribute, text or innerHTML write, equal or
// not, so each write is compared with the last one made through these (kept on the element).

/** Sets attribute `name` (removes it for null or undefined). */
export function setAttr(e, name, value) {
  const v = value == null ? null : String(value);
  const memo = (e._attrs ??= {});
  if (memo[name] === v) return;
  memo[name] = v;
  if (v == null) e.removeAttribute(name);
  else e.setAttribute(name, v);
}

/** Sets the element's text. */
export function setText(e, text) {
  if (e._text === text) return;
  e._text = text;
  e.textContent = text;
}

/** Replaces the element's content with `html`. */
export function setHtml(e, html) {
  if (e._html === html) return;
  e._html = html;
  e.innerHTML = html;
}
