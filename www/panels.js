// The side panels: each node's log (aligned by index, coloured by term, commit point marked),
// the key/value table per node, the client's operations, and the event trace.

import { ROLE_COLORS, termColor } from "./colors.js";
import { esc } from "./ring.js";

/** How many log columns fit. */
const LOG_COLS = 22;

/** @param {import("./types.js").PlaygroundState} st */
export function drawLogs(root, st) {
  const maxIdx = Math.max(0, ...st.nodes.map((n) => n.last_log_index));
  const first = Math.max(1, maxIdx - LOG_COLS + 1);
  let html = `<div class="logrow head"><span class="who"></span>`;
  for (let i = first; i < first + LOG_COLS; i++) html += `<span class="idx">${i}</span>`;
  html += `</div>`;
  for (const n of st.nodes) {
    const byIdx = new Map(n.log.map((e) => [e.index, e]));
    const role = n.alive ? n.role : "dead";
    const mark = { learner: "ᴸ", joining: "⁺", removed: "⁻" }[n.member] ?? "";
    html += `<div class="logrow${n.alive ? "" : " dead"} m-${esc(n.member ?? "voter")}"><span class="who" title="${esc(n.member ?? "")}"><i style="background:${ROLE_COLORS[role]}"></i>${esc(n.id)}${mark}</span>`;
    for (let i = first; i < first + LOG_COLS; i++) {
      const e = byIdx.get(i);
      const commitMark = i === n.commit_index ? " commit" : "";
      if (e) {
        const cls = `entry${i > n.commit_index ? " uncommitted" : ""}${commitMark}`;
        html += `<span class="${cls}" style="--c:${termColor(e.term)}" title="#${e.index} term ${e.term}: ${esc(e.summary)}${i <= n.commit_index ? " (committed)" : ""}">${e.term}</span>`;
      } else if (i <= n.snapshot_index) {
        html += `<span class="entry snap${commitMark}" title="#${i}: in the snapshot (up to ${n.snapshot_index})">s</span>`;
      } else {
        html += `<span class="slot${commitMark}"></span>`;
      }
    }
    html += `</div>`;
  }
  root.innerHTML = html;
}

/** @param {import("./types.js").PlaygroundState} st */
export function drawKv(root, st) {
  const keys = [...new Set(st.nodes.flatMap((n) => Object.keys(n.kv ?? {})))].sort();
  const leader = st.nodes.find((n) => n.alive && n.role === "leader");
  if (!keys.length) {
    root.innerHTML = `<p class="empty">No keys yet. Send a put from the client.</p>`;
    return;
  }
  let html = `<table><thead><tr><th>key</th>`;
  for (const n of st.nodes) html += `<th class="${n.alive ? "" : "dead"}${n === leader ? " lead" : ""}">${esc(n.id)}</th>`;
  html += `</tr></thead><tbody>`;
  for (const k of keys) {
    html += `<tr><td class="key">${esc(k)}</td>`;
    for (const n of st.nodes) {
      const v = n.kv?.[k];
      const lv = leader?.kv?.[k];
      const differs = leader && n !== leader && v !== lv;
      html += `<td class="${n.alive ? "" : "dead"}${differs ? " differs" : ""}" data-node="${esc(n.id)}" data-key="${esc(k)}">${v === undefined ? "·" : esc(v)}</td>`;
    }
    html += `</tr>`;
  }
  root.innerHTML = html + `</tbody></table>`;
}

/** @param {import("./types.js").PlaygroundState} st */
export function drawOps(root, st) {
  const ops = st.ops.slice(-40).reverse();
  if (!ops.length) {
    root.innerHTML = `<li class="empty">Requests and replies appear here.</li>`;
    return;
  }
  root.innerHTML = ops.map((o) => {
    let req = `${o.op} ${o.key}`;
    if (o.op === "cas") req += ` ${o.expected === "" ? "∅" : o.expected} → ${o.value}`;
    else if (o.value !== undefined && o.value !== null) req += ` = ${o.value}`;
    if (o.mode) req += ` (${o.mode})`;
    const took = o.completed_at != null ? `${o.completed_at - o.invoked_at} ms` : "";
    return `<li class="op ${o.status}" data-op="${o.id}"><span class="opid">#${o.id}</span>` +
      `<span class="req">${esc(req)}</span><span class="via" title="${o.target ? `sent to ${esc(o.target)}; ` : ""}served by ${esc(o.node ?? "–")}">${o.target ? `→${esc(o.target)} ` : ""}${o.node ? "@" + esc(o.node) : ""}</span>` +
      `<span class="rep">${o.status === "pending" ? "…" : esc(o.result ?? o.status)}</span><span class="took">${took}</span></li>`;
  }).join("");
}

/** @param {import("./types.js").PlaygroundState} st */
export function drawTrace(root, verdictEl, st) {
  const lines = st.trace.slice(-120).reverse();
  root.innerHTML = lines.map((l) =>
    `<li><span class="at">${l.at}</span><span class="who">${esc(l.node ?? (l.text.startsWith("op #") ? "client" : "net"))}</span><span class="txt">${esc(l.text)}</span></li>`).join("");
  const h = st.history;
  let v = "";
  if (st.violations.length) v = `<span class="bad">✗ invariant violated: ${esc(st.violations[0])}</span>`;
  else if (h.linearizable === true) v = `<span class="good">✓ history linearizable (${h.ops} ops)</span>`;
  else if (h.linearizable === false) v = `<span class="bad">✗ history NOT linearizable: ${esc(h.detail)}</span>`;
  else v = `<span>history: ${esc(h.detail || "not checked yet")}</span>`;
  verdictEl.innerHTML = v;
}
