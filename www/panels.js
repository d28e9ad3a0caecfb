// The side panels: each node's log (aligned by index, coloured by term, commit point marked,
// with the leader's next ▲ / match ● index per follower and the entries in flight ◌), the
// key/value table per node, the client's operations, and the event trace (appended to, never
// rebuilt: its cost does not grow with the run; filtered by kind, one commit across nodes on one
// line).

import { ROLE_COLORS, termColor } from "./colors.js";
import { esc } from "./ring.js";
import { setHtml } from "./dom.js";

/** How many log columns fit. */
const LOG_COLS = 22;

/**
 * @param {import("./types.js").PlaygroundState} st
 * @param {{follow?: number|null}} opts  the log index of the op followed, highlighted
 */
export function drawLogs(root, st, { follow = null } = {}) {
  const maxIdx = Math.max(0, ...st.nodes.map((n) => n.last_log_index));
  // The last column is the slot after the longest log: where a caught-up follower's next index is.
  const first = Math.max(1, maxIdx + 2 - LOG_COLS);
  const leader = st.nodes.find((n) => n.alive && n.role === "leader");
  const prog = new Map((leader?.progress ?? []).map((p) => [p.id, p]));
  // Entries carried by AppendEntries in flight, per receiver.
  const flying = new Map();
  for (const m of st.messages) {
    if (!m.entries || m.dropped) continue;
    const set = flying.get(m.to) ?? new Set();
    for (let i = m.entries[0]; i <= m.entries[1]; i++) set.add(i);
    flying.set(m.to, set);
  }
  let html = `<div class="logrow head"><span class="who"></span>`;
  for (let i = first; i < first + LOG_COLS; i++) html += `<span class="idx">${i}</span>`;
  html += `</div>`;
  for (const n of st.nodes) {
    const byIdx = new Map(n.log.map((e) => [e.index, e]));
    const role = n.alive ? n.role : "dead";
    const mark = { learner: "ᴸ", joining: "⁺", removed: "⁻" }[n.member] ?? "";
    const p = n !== leader ? prog.get(n.id) : null;
    const fl = flying.get(n.id);
    html += `<div class="logrow${n.alive ? "" : " dead"} m-${esc(n.member ?? "voter")}" data-node="${esc(n.id)}"><span class="who" title="${esc(n.member ?? "")}${p ? ` · leader's view: next ${p.next_index}, match ${p.match_index} (${esc(p.state)})` : ""}"><i style="background:${ROLE_COLORS[role]}"></i>${esc(n.id)}${mark}</span>`;
    for (let i = first; i < first + LOG_COLS; i++) {
      const e = byIdx.get(i);
      let extra = i === n.commit_index ? " commit" : "";
      if (p && i === p.next_index) extra += " next";
      if (p && i === p.match_index) extra += " match";
      if (fl?.has(i)) extra += " inflight";
      if (follow != null && i === follow) extra += " follow";
      const attrs = `data-i="${i}"`;
      if (e) {
        const cls = `entry${i > n.commit_index ? " uncommitted" : ""}${extra}`;
        html += `<span class="${cls}" ${attrs} style="--c:${termColor(e.term)}" title="#${e.index} term ${e.term}: ${esc(e.summary)}${i <= n.commit_index ? " (committed)" : ""}${fl?.has(i) ? " · on its way in an AppendEntries" : ""}">${e.term}</span>`;
      } else if (i <= n.snapshot_index) {
        html += `<span class="entry snap${extra}" ${attrs} title="#${i}: in the snapshot (up to ${n.snapshot_index})">s</span>`;
      } else {
        html += `<span class="slot${extra}" ${attrs}${fl?.has(i) ? ` title="#${i}: on its way in an AppendEntries"` : ""}></span>`;
      }
    }
    html += `</div>`;
  }
  setHtml(root, html);
}

/** @param {import("./types.js").PlaygroundState} st */
export function drawKv(root, st) {
  const keys = [...new Set(st.nodes.flatMap((n) => Object.keys(n.kv ?? {})))].sort();
  const leader = st.nodes.find((n) => n.alive && n.role === "leader");
  if (!keys.length) {
    setHtml(root, `<p class="empty">No keys yet. Send a put from the client.</p>`);
    return;
  }
  // Keys down, nodes across; the first column sticks and the table scrolls sideways, so every
  // node's column is reachable at any width.
  let html = `<table><thead><tr><th class="key">key</th>`;
  for (const n of st.nodes) html += `<th class="${n.alive ? "" : "dead"}${n === leader ? " lead" : ""}" data-node="${esc(n.id)}">${esc(n.id)}</th>`;
  html += `</tr></thead><tbody>`;
  for (const k of keys) {
    html += `<tr><td class="key">${esc(k)}</td>`;
    for (const n of st.nodes) {
      const v = n.kv?.[k];
      const lv = leader?.kv?.[k];
      const differs = leader && n !== leader && v !== lv;
      html += `<td class="${n.alive ? "" : "dead"}${differs ? " differs" : ""}" data-node="${esc(n.id)}" data-key="${esc(k)}" title="${esc(n.id)}: ${esc(k)} = ${v === undefined ? "(none)" : esc(v)}">${v === undefined ? "·" : esc(v)}</td>`;
    }
    html += `</tr>`;
  }
  setHtml(root, html + `</tbody></table>`);
}

/**
 * @param {import("./types.js").PlaygroundState} st
 * @param {number|null} follow  the op followed, highlighted
 */
export function drawOps(root, st, follow = null) {
  const ops = st.ops.slice(-40).reverse();
  if (!ops.length) {
    setHtml(root, `<li class="empty">Requests and replies appear here. Click one to follow it.</li>`);
    return;
  }
  setHtml(root, ops.map((o) => {
    let req = `${o.op} ${o.key}`;
    if (o.op === "cas") req += ` ${o.expected === "" ? "∅" : o.expected} → ${o.value}`;
    else if (o.value !== undefined && o.value !== null) req += ` = ${o.value}`;
    if (o.mode) req += ` (${o.mode})`;
    const took = o.completed_at != null ? `${o.completed_at - o.invoked_at} ms` : "";
    return `<li class="op ${o.status}${o.id === follow ? " follow" : ""}" data-op="${o.id}" title="${esc(req)}${o.index != null ? ` · log index ${o.index}` : ""} · click to follow"><span class="opid">#${o.id}</span>` +
      `<span class="req">${esc(req)}</span><span class="via" title="${o.target ? `sent to ${esc(o.target)}; ` : ""}served by ${esc(o.node ?? "–")}">${o.target ? `→${esc(o.target)} ` : ""}${o.node ? "@" + esc(o.node) : ""}</span>` +
      `<span class="rep">${o.status === "pending" ? "…" : esc(o.result ?? o.status)}</span><span class="took">${took}</span></li>`;
  }).join(""));
}

/** How many lines the Events panel keeps. */
const TRACE_SHOWN = 120;

/** The kinds of Events lines, each behind a filter: what a node did, messages, the client. */
export const LINE_KINDS = ["state", "message", "client"];

/** What the Events panel shows by default: messages are many, so they are off. */
export const SHOW_DEFAULT = { state: true, message: false, client: true };

const COMMIT = /^commits up to #(\d+)$/;

function traceItem(l) {
  const li = document.createElement("li");
  li.dataset.seq = String(l.seq);
  li.dataset.kind = l.kind ?? "state";
  let who = l.node ?? (l.text.startsWith("op #") ? "client" : "net"), text = l.text;
  // A message line starts with its link ("n1→n2 append_entries ..."): that is its who.
  if (l.kind === "message") [who, text] = [l.text.slice(0, l.text.indexOf(" ")), l.text.slice(l.text.indexOf(" ") + 1)];
  li.innerHTML = `<span class="at">${l.at}</span><span class="who">${esc(who)}</span><span class="txt">${esc(text)}</span>`;
  return li;
}

/**
 * One commit across nodes is one line: "n1, n3, n2 commit up to #5", at the first node's time,
 * its title telling each node's. `data-seqs` lists the trace lines it stands for.
 */
function mergeCommit(li, l) {
  const c = li._commit;
  c.push(l);
  li.dataset.seqs = c.map((x) => x.seq).join();
  li.title = c.map((x) => `${x.node} at ${x.at} ms`).join(", ");
  if (c.length === 1) return;
  li.querySelector(".who").textContent = `${c.length} nodes`;
  li.querySelector(".txt").textContent = `${c.map((x) => x.node).join(", ")} commit up to #${COMMIT.exec(l.text)[1]}`;
}

/** The two line lists (each oldest first, by seq) as one, oldest first. */
function merged(a, b) {
  if (!b.length) return a;
  const out = [];
  let i = 0, j = 0;
  while (i < a.length || j < b.length) out.push(j >= b.length || (i < a.length && a[i].seq < b[j].seq) ? a[i++] : b[j++]);
  return out;
}

/**
 * The Events panel, newest first: only the lines past the last one shown are added (and the
 * oldest beyond TRACE_SHOWN removed), so a redraw costs what is new, not the whole list. A new
 * run (`generation`) or other filters (`show`: kind -> shown) start the list over. Message
 * lines come from `st.message_trace`, merged in by their number.
 * @param {import("./types.js").PlaygroundState} st
 */
export function drawTrace(root, st, generation = 0, show = SHOW_DEFAULT) {
  const key = `${generation}/${LINE_KINDS.filter((k) => show[k]).join()}`;
  const lines = merged(st.trace, show.message ? st.message_trace ?? [] : [])
    .filter((l) => show[l.kind ?? "state"]);
  const last = lines.at(-1)?.seq ?? -1;
  if (root._key !== key || (root._last ?? -1) > last) {
    root.replaceChildren();
    root.dataset.from = "0";
    root._last = -1;
    root._key = key;
    root._commits = new Map(); // commit index -> its line, for the last few indices
  }
  const fresh = lines.filter((l) => l.seq > root._last).slice(-TRACE_SHOWN);
  if (!fresh.length) return;
  const added = [];
  for (const l of fresh) {
    const m = l.node ? COMMIT.exec(l.text) : null;
    const same = m ? root._commits.get(m[1]) : null;
    if (same && !same._commit.some((x) => x.node === l.node)) {
      mergeCommit(same, l);
      continue;
    }
    const li = traceItem(l);
    if (m) {
      li._commit = [];
      mergeCommit(li, l);
      root._commits.set(m[1], li);
      if (root._commits.size > 16) root._commits.delete(root._commits.keys().next().value);
    }
    added.push(li);
  }
  const frag = document.createDocumentFragment();
  for (let k = added.length - 1; k >= 0; k--) frag.appendChild(added[k]);
  root.prepend(frag);
  root._last = last;
  while (root.childElementCount > TRACE_SHOWN) {
    // `data-from`: every line from this number on is shown (a commit line gone takes the later
    // commits it stood for with it).
    const gone = root.lastElementChild;
    const seqs = (gone.dataset.seqs ?? gone.dataset.seq).split(",").map(Number);
    root.dataset.from = String(Math.max(Number(root.dataset.from ?? 0), ...seqs.map((x) => x + 1)));
    gone.remove();
    for (const [i, li] of root._commits) if (li === gone) root._commits.delete(i);
  }
}

/** The verdict line: linearizable or not, and what was left out of the check. */
export function drawVerdict(el, st) {
  const h = st.history;
  const stale = h.stale_unchecked ? ` · ${h.stale_unchecked} stale read${h.stale_unchecked === 1 ? "" : "s"} not checked for order (${h.stale_invented ? `${h.stale_invented} invented a value` : "each returned a written value"})` : "";
  let v = "";
  if (st.violations.length) v = `<span class="bad">✗ invariant violated: ${esc(st.violations[0])}</span>`;
  else if (h.linearizable === true) v = `<span class="good">✓ history linearizable (${h.ops} ops checked)</span>${esc(stale)}`;
  else if (h.linearizable === false) v = `<span class="bad">✗ history NOT linearizable: ${esc(h.detail)}</span>${esc(stale)}`;
  else v = `<span>history: ${esc(h.detail || "not checked yet")}</span>${esc(stale)}`;
  setHtml(el, v);
}
