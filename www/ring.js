// The cluster drawn as a ring (SVG): nodes coloured by role with their term and election-timer
// arc, a line per link (one side per direction, red and dashed when cut), and messages moving
// from sender to receiver, placed by interpolating between their send and delivery times.

import { ROLE_COLORS, kindInfo } from "./colors.js";

/** How long (simulated ms) the state keeps a dropped message: DROP_SHOW_MS in web/src/contract.rs. */
const DROP_SHOW_MS = 150;

const NS = "http://www.w3.org/2000/svg";
const R = 205;

function el(name, attrs = {}, parent = null) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

export class Ring {
  /**
   * @param {SVGSVGElement} svg
   * @param {{onNode: (id: string) => void, onLink: (a: string, b: string, oneWay: string|null) => void}} handlers
   *   onLink gets the pair and, for a shift-click, the sender of the single direction to toggle.
   */
  constructor(svg, handlers) {
    this.svg = svg;
    this.handlers = handlers;
    this.linksG = svg.querySelector("#links");
    this.msgsG = svg.querySelector("#msgs");
    this.nodesG = svg.querySelector("#nodes-layer");
    this.clock = svg.querySelector("#clock");
    this.clockSub = svg.querySelector("#clock-sub");
    this.ids = [];
  }

  /** Builds the static elements for these node ids. */
  layout(ids) {
    this.ids = ids;
    this.linksG.replaceChildren();
    this.nodesG.replaceChildren();
    this.msgsG.replaceChildren();
    const n = ids.length;
    this.nodeR = n <= 5 ? 32 : n <= 7 ? 28 : 24;
    this.pos = new Map(ids.map((id, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
      return [id, { x: R * Math.cos(a), y: R * Math.sin(a) }];
    }));
    this.dirLines = new Map();
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const a = ids[i], b = ids[j];
        const g = el("g", { class: "link", "data-a": a, "data-b": b }, this.linksG);
        const pa = this.pos.get(a), pb = this.pos.get(b);
        el("line", { class: "hit", x1: pa.x, y1: pa.y, x2: pb.x, y2: pb.y }, g);
        for (const [f, t] of [[a, b], [b, a]]) {
          const s = this.segment(f, t, 0);
          const line = el("line", { class: "dir", x1: s.x1, y1: s.y1, x2: s.x2, y2: s.y2 }, g);
          el("title", {}, line).textContent = `${f} → ${t}`;
          this.dirLines.set(`${f}>${t}`, line);
        }
        el("title", {}, g).textContent = `${a} ↔ ${b}: click to cut or heal; shift-click: only the direction leaving the nearer node`;
        g.addEventListener("click", (ev) => {
          let oneWay = null;
          if (ev.shiftKey) {
            const p = this.svgPoint(ev);
            const da = Math.hypot(p.x - pa.x, p.y - pa.y), db = Math.hypot(p.x - pb.x, p.y - pb.y);
            oneWay = da <= db ? a : b;
          }
          this.handlers.onLink(a, b, oneWay);
        });
      }
    }
    this.nodeEls = new Map();
    const r = this.nodeR;
    for (const id of ids) {
      const p = this.pos.get(id);
      const g = el("g", { class: "node", "data-id": id, transform: `translate(${p.x} ${p.y})`, tabindex: 0, role: "button" }, this.nodesG);
      const C = 2 * Math.PI * (r + 7);
      el("circle", { class: "timer-track", r: r + 7 }, g);
      const arc = el("circle", { class: "timer", r: r + 7, "stroke-dasharray": `0 ${C}`, transform: "rotate(-90)" }, g);
      const body = el("circle", { class: "body", r }, g);
      const name = el("text", { class: "name", y: -3, "text-anchor": "middle" }, g);
      name.textContent = id;
      const term = el("text", { class: "term", y: 13, "text-anchor": "middle" }, g);
      const cross = el("path", { class: "cross", d: `M${-r * 0.55},${-r * 0.55} L${r * 0.55},${r * 0.55} M${r * 0.55},${-r * 0.55} L${-r * 0.55},${r * 0.55}` }, g);
      const info = el("text", { class: "info", x: 0, y: p.y < -R * 0.9 ? -(r + 15) : r + 24, "text-anchor": "middle" }, g);
      const title = el("title", {}, g);
      g.addEventListener("click", () => this.handlers.onNode(id));
      g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") this.handlers.onNode(id); });
      this.nodeEls.set(id, { g, arc, body, term, cross, info, title, C });
    }
  }

  svgPoint(ev) {
    const pt = this.svg.createSVGPoint();
    pt.x = ev.clientX; pt.y = ev.clientY;
    return pt.matrixTransform(this.svg.getScreenCTM().inverse());
  }

  /** The line of direction f -> t between the two circles' edges, offset to its own side. */
  segment(f, t, pad) {
    const a = this.pos.get(f), b = this.pos.get(t);
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
    const ux = dx / len, uy = dy / len, nx = -uy * 3.5, ny = ux * 3.5;
    const s = this.nodeR + 9 + pad;
    return { x1: a.x + ux * s + nx, y1: a.y + uy * s + ny, x2: b.x - ux * s + nx, y2: b.y - uy * s + ny };
  }

  /**
   * Draws `st` as seen at simulated time `t` (fractional: between two whole milliseconds).
   * @param {import("./types.js").PlaygroundState} st
   */
  draw(st, t) {
    for (const l of st.links) {
      const line = this.dirLines.get(`${l.from}>${l.to}`);
      if (line) line.classList.toggle("cut", l.cut);
    }
    for (const n of st.nodes) {
      const e = this.nodeEls.get(n.id);
      if (!e) continue;
      const role = n.alive ? n.role : "dead";
      e.g.dataset.role = role;
      e.g.classList.toggle("dead", !n.alive);
      e.body.setAttribute("fill", ROLE_COLORS[role] ?? "#888");
      e.term.textContent = `term ${n.term}`;
      const span = n.timer_deadline - n.timer_start;
      let frac = 0;
      if (n.alive && span > 0) frac = Math.min(1, Math.max(0, (n.timer_deadline - t) / span));
      e.arc.setAttribute("stroke-dasharray", `${(frac * e.C).toFixed(1)} ${e.C.toFixed(1)}`);
      e.arc.classList.toggle("leader", n.role === "leader");
      e.info.textContent = n.alive ? `log ${n.last_log_index} · commit ${n.commit_index}` : "crashed";
      e.title.textContent = `${n.id}: ${n.alive ? n.role : "crashed"}, term ${n.term}, voted for ${n.voted_for ?? "–"}, ` +
        `leader ${n.leader_id ?? "–"}\nlog ${n.last_log_index}, commit ${n.commit_index}, applied ${n.last_applied}, ` +
        `snapshot ${n.snapshot_index}\nclick to ${n.alive ? "kill" : "restart"}`;
    }
    let html = "";
    for (const m of st.messages) {
      if (!this.pos.has(m.from) || !this.pos.has(m.to)) continue;
      const span = Math.max(1e-9, m.deliver_at - m.sent_at);
      const p = Math.min(1, Math.max(0, (t - m.sent_at) / span));
      const s = this.segment(m.from, m.to, 0);
      const x = s.x1 + (s.x2 - s.x1) * p, y = s.y1 + (s.y2 - s.y1) * p;
      const k = kindInfo(m.kind);
      const heartbeat = m.kind === "append_entries" && /\+0\b/.test(m.summary);
      const r = heartbeat ? 4.5 : 6.5;
      const op = m.dropped ? Math.max(0.15, 1 - p * 1.4) : 1;
      const fill = k.response ? "#10151c" : k.color;
      html += `<circle class="msg${m.dropped ? " dropped" : ""}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r}" ` +
        `fill="${fill}" stroke="${m.dropped ? "#ef5b5b" : k.color}" opacity="${op.toFixed(2)}"><title>${esc(m.from)} → ${esc(m.to)}: ${esc(m.summary)}${m.dropped ? " (will be dropped)" : ""}</title></circle>`;
    }
    // Dropped messages: a red cross that fades out. One dropped as it was sent (lost, or sent
    // over a cut link) never flew, so it is marked just off its sender; one that died on the
    // way or on arrival is marked at the receiver's end.
    for (const d of st.drops ?? []) {
      if (!this.pos.has(d.from) || !this.pos.has(d.to)) continue;
      const age = (t - d.at) / DROP_SHOW_MS;
      if (age < 0 || age > 1) continue;
      const s = this.segment(d.from, d.to, 0);
      const p = d.at_send ? 0.06 + 0.1 * age : 0.94;
      const x = s.x1 + (s.x2 - s.x1) * p, y = s.y1 + (s.y2 - s.y1) * p, r = 4;
      html += `<path class="drop" d="M${(x - r).toFixed(1)} ${(y - r).toFixed(1)}L${(x + r).toFixed(1)} ${(y + r).toFixed(1)}` +
        `M${(x - r).toFixed(1)} ${(y + r).toFixed(1)}L${(x + r).toFixed(1)} ${(y - r).toFixed(1)}" ` +
        `opacity="${(1 - age).toFixed(2)}"><title>${esc(d.from)} → ${esc(d.to)}: ${esc(d.kind)} dropped (${esc(d.reason)})</title></path>`;
    }
    this.msgsG.innerHTML = html;
    this.clock.textContent = `${Math.floor(t).toLocaleString("en-US")} ms`;
    this.clockSub.textContent = `${st.events.toLocaleString("en-US")} events · ${st.messages.length} in flight`;
  }
}

export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
