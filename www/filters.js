// Message filters (issue 17, item 4): "drop every RequestVote from n2". A filter drops every
// node-to-node message of one kind from a node (or any) to a node (or any) until cleared; the
// page lists the active ones, each with a Clear button. Setting and clearing are recorded
// actions (filter, unfilter), so Share and rewind replay them.

import { esc } from "./ring.js";

/** The kinds a filter can name (core's RAFT_KINDS). */
export const FILTER_KINDS = [
  "request_vote", "request_vote_response", "pre_vote", "pre_vote_response", "append_entries",
  "append_entries_response", "install_snapshot", "install_snapshot_response", "timeout_now",
];

export class Filters {
  /**
   * @param {HTMLFormElement} form  the form that sets one (select.kind, input.from, input.to)
   * @param {HTMLElement} list      where the active ones are listed
   * @param {(name: string, ...args: string[]) => void} act  a recorded action
   */
  constructor(form, list, act) {
    this.list = list;
    this.shown = null;
    const kind = form.querySelector("select");
    kind.innerHTML = FILTER_KINDS.map((k) => `<option>${k}</option>`).join("");
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      act("filter", kind.value, form.elements.from.value.trim(), form.elements.to.value.trim());
    });
    list.addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-kind]");
      if (b) act("unfilter", b.dataset.kind, b.dataset.from, b.dataset.to);
    });
  }

  /** Lists the filters of `st.net.filters`, when they changed. */
  draw(st) {
    const fs = st.net.filters;
    const key = JSON.stringify(fs);
    if (key === this.shown) return;
    this.shown = key;
    this.list.hidden = !fs.length;
    this.list.innerHTML = fs.map((f) =>
      `<li data-filter="${esc(`${f.kind} ${f.from ?? "*"} ${f.to ?? "*"}`)}">drop ${esc(f.kind)} ${esc(f.from ?? "any")} → ${esc(f.to ?? "any")} ` +
      `<button type="button" data-kind="${esc(f.kind)}" data-from="${esc(f.from ?? "")}" data-to="${esc(f.to ?? "")}" title="Stop dropping these">Clear</button></li>`).join("");
  }
}
