// The cluster drawn as a ring (SVG): nodes coloured by role with their term and election-timer
// arc, a line per link (one side per direction, red and dashed when cut), and messages moving
// from sender to receiver, placed by interpolating between their send and delivery times.
// Membership: learners hollow and dashed with an "L" badge, joining nodes dotted with "+",
// removed nodes greyed with "−"; in a joint configuration each voter carries "old", "new" or
// "old+new" and the outgoing-only ones a dashed amber halo; a transfer's target a green halo
// and a dashed arrow from the leader.
// Roles carry a letter and an outline besides their colour (F plain, PC dotted, C dashed, L a
// double ring). A candidate is ringed by one dot per vote reply it received (✓ granted, ✗
// denied), every node says whom it voted for in its term, and replies carry ✓/✗. A one-way
// cut is drawn with an arrow and a label ("n3 ⇸ n4"). Messages are hit-testable above the
// links: a click on one opens it (the page's drawer) and never reaches the link under it.

import { ROLE_COLORS, ROLE_LETTERS, kindInfo } from "./colors.js";
import { setAttr, setHtml, setText } from "./dom.js";

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
   * @param {{onNode: (id: string) => void, onLink: (a: string, b: string, oneWay: string|null) => void,
   *          onMessage: (id: number) => void, onMenu: (what: {node?: string, a?: string, b?: string}, ev: MouseEvent) => void}} handlers
   *   onLink gets the pair and, for a shift-click, the sender of the single direction to toggle.
   */
  constructor(svg, handlers) {
    this.svg = svg;
    this.handlers = handlers;
    // The page's ring names its layers by id; another ring (live mode's) by data-layer.
    const layer = (id, name) => svg.querySelector(`#${id}, [data-layer="${name}"]`);
    this.linksG = layer("links", "links");
    this.msgsG = layer("msgs", "msgs");
    this.nodesG = layer("nodes-layer", "nodes");
    this.clock = layer("clock", "clock");
    this.clockSub = layer("clock-sub", "clock-sub");
    this.ids = [];
    /** (node) => the line the tooltip ends with: what a click does now. */
    this.clickHint = (n) => `click to ${n.alive ? "kill" : "restart"}`;
    /** The op the person follows: its log index and the entries in flight are highlighted. */
    this.followIndex = null;
    /** The message and node shown in the drawer, highlighted. */
    this.selected = { msg: null, node: null };
    // Messages are redrawn every frame, so a click on one is taken at pointerdown (the element
    // may be gone by pointerup); it stops there and never reaches a link below.
    this.msgsG.addEventListener("pointerdown", (ev) => {
      const m = ev.target.closest("[data-msg]");
      if (!m) return;
      ev.stopPropagation();
      ev.preventDefault();
      this.handlers.onMessage(Number(m.dataset.msg));
    });
    this.msgsG.addEventListener("click", (ev) => ev.stopPropagation());
  }

  /** Whether the ring is laid out for exactly these node ids. */
  hasLayout(ids) {
    return ids.length === this.ids.length && ids.every((id, i) => id === this.ids[i]);
  }

  /** Builds the static elements for these node ids. */
  layout(ids) {
    this.ids = ids;
    this.cutKey = null;
    this.linksG.replaceChildren();
    this.nodesG.replaceChildren();
    // Messages in flight keep their element from frame to frame (keyed by id, moved by a
    // transform); transfers and drops, few and short-lived, are one group rebuilt when it changes.
    this.flyG = el("g", {});
    this.fxG = el("g", {});
    this.msgsG.replaceChildren(this.flyG, this.fxG);
    /** @type {Map<number, SVGGElement>} */
    this.msgEls = new Map();
    const n = ids.length;
    this.nodeR = n <= 5 ? 32 : n <= 7 ? 28 : 24;
    this.pos = new Map(ids.map((id, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
      return [id, { x: R * Math.cos(a), y: R * Math.sin(a) }];
    }));
    this.dirLines = new Map();
    this.cutLabels = new Map();
    this.pairs = [];
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const a = ids[i], b = ids[j];
        this.pairs.push([a, b]);
        const g = el("g", { class: "link", "data-a": a, "data-b": b }, this.linksG);
        const pa = this.pos.get(a), pb = this.pos.get(b);
        el("line", { class: "hit", x1: pa.x, y1: pa.y, x2: pb.x, y2: pb.y }, g);
        for (const [f, t] of [[a, b], [b, a]]) {
          const s = this.segment(f, t, 0);
          const line = el("line", { class: "dir", x1: s.x1, y1: s.y1, x2: s.x2, y2: s.y2 }, g);
          el("title", {}, line).textContent = `${f} → ${t}`;
          this.dirLines.set(`${f}>${t}`, line);
        }
        el("title", {}, g).textContent = `${a} ↔ ${b}: click to cut or heal; shift-click: only the direction leaving the nearer node; right-click: details`;
        const mx = (pa.x + pb.x) / 2, my = (pa.y + pb.y) / 2;
        const label = el("text", { class: "cutlabel", x: (mx * 0.9).toFixed(1), y: (my * 0.9 + 4).toFixed(1), "text-anchor": "middle" }, g);
        this.cutLabels.set(`${a}|${b}`, label);
        g.addEventListener("contextmenu", (ev) => { ev.preventDefault(); this.handlers.onMenu?.({ a, b }, ev); });
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
      const halo = el("circle", { class: "halo", r: r + 13 }, g);
      const cross = el("path", { class: "cross", d: `M${-r * 0.55},${-r * 0.55} L${r * 0.55},${r * 0.55} M${r * 0.55},${-r * 0.55} L${-r * 0.55},${r * 0.55}` }, g);
      const top = p.y < -R * 0.9;
      const info = el("text", { class: "info", x: 0, y: top ? -(r + 15) : r + 24, "text-anchor": "middle" }, g);
      const vote = el("text", { class: "vote", x: 0, y: top ? -(r + 28) : r + 37, "text-anchor": "middle" }, g);
      const ring2 = el("circle", { class: "ring2", r: r + 3.5 }, g);
      const votes = el("g", { class: "votes" }, g);
      const badge = el("g", { class: "badge", transform: `translate(${(r * 0.78).toFixed(1)} ${(-r * 0.78).toFixed(1)})` }, g);
      const badgeBox = el("rect", { rx: 8, ry: 8, height: 16, y: -8 }, badge);
      const badgeText = el("text", { y: 4, "text-anchor": "middle" }, badge);
      const title = el("title", {}, g);
      g.addEventListener("click", () => this.handlers.onNode(id));
      g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") this.handlers.onNode(id); });
      g.addEventListener("contextmenu", (ev) => { ev.preventDefault(); this.handlers.onMenu?.({ node: id }, ev); });
      this.nodeEls.set(id, { g, arc, body, term, cross, halo, info, vote, ring2, votes, votesKey: "", title, badge, badgeBox, badgeText, badgeKey: null, C });
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
    // The links change only when a cut does: most frames skip them.
    const cutKey = st.links.map((l) => (l.cut ? "1" : "0")).join("");
    if (cutKey !== this.cutKey) { this.cutKey = cutKey; this.drawLinks(st); }
    this.drawNodesAndMessages(st, t);
  }

  /** The links: cut ones red and dashed, a one-way cut with its arrow and label. */
  drawLinks(st) {
    const cut = new Set();
    for (const l of st.links) {
      const line = this.dirLines.get(`${l.from}>${l.to}`);
      if (line) line.classList.toggle("cut", l.cut);
      if (l.cut) cut.add(`${l.from}>${l.to}`);
    }
    for (const [a, b] of this.pairs) {
      const ab = cut.has(`${a}>${b}`), ba = cut.has(`${b}>${a}`);
      const oneWay = ab !== ba;
      // A one-way cut points its arrow the way messages no longer go.
      const lab = this.dirLines.get(`${a}>${b}`), lba = this.dirLines.get(`${b}>${a}`);
      if (lab) setAttr(lab, "marker-end", oneWay && ab ? "url(#arrow)" : null);
      if (lba) setAttr(lba, "marker-end", oneWay && ba ? "url(#arrow)" : null);
      const label = this.cutLabels.get(`${a}|${b}`);
      if (label) setText(label, oneWay ? (ab ? `${a} ⇸ ${b}` : `${b} ⇸ ${a}`) : "");
    }
  }

  /** The nodes, and the messages in flight as seen at `t`. */
  drawNodesAndMessages(st, t) {
    const joint = !!st.membership?.joint;
    const targets = new Map();
    for (const n of st.nodes) {
      const e = this.nodeEls.get(n.id);
      if (!e) continue;
      const role = n.alive ? n.role : "dead";
      const member = n.member ?? "voter";
      setAttr(e.g, "data-role", role);
      setAttr(e.g, "data-member", member);
      e.g.classList.toggle("dead", !n.alive);
      e.g.classList.toggle("learner", member === "learner");
      e.g.classList.toggle("joining", member === "joining");
      e.g.classList.toggle("removed", member === "removed");
      e.g.classList.toggle("outgoing", member === "outgoing");
      setAttr(e.body, "fill", ROLE_COLORS[role] ?? "#888");
      setAttr(e.g, "style", `--c: ${ROLE_COLORS[role] ?? "#888"}`);
      setText(e.term, `${ROLE_LETTERS[role] ?? ""} · t${n.term}`);
      e.ring2.classList.toggle("on", role === "leader");
      setText(e.vote, n.alive ? (n.voted_for ? `voted ${n.voted_for} (t${n.term})` : `no vote in t${n.term}`) : "");
      e.g.classList.toggle("selected", this.selected.node === n.id);
      // One dot per vote reply a (pre-)candidate received, around it: ✓ granted, ✗ denied.
      const votes = n.alive && (n.role === "candidate" || n.role === "pre_candidate") ? (n.votes ?? []) : [];
      const vk = votes.map((v) => `${v.from}${v.granted ? "+" : "-"}`).join();
      if (vk !== e.votesKey) {
        e.votesKey = vk;
        let vh = "";
        votes.forEach((v, k) => {
          const ang = -Math.PI / 2 + (k + 0.5) * (2 * Math.PI / Math.max(8, votes.length));
          const x = (this.nodeR + 13) * Math.cos(ang), y = (this.nodeR + 13) * Math.sin(ang);
          vh += `<g class="vdot ${v.granted ? "granted" : "denied"}" transform="translate(${x.toFixed(1)} ${y.toFixed(1)})"><circle r="6"></circle>` +
            `<text y="3.5" text-anchor="middle">${v.granted ? "✓" : "✗"}</text><title>${esc(v.from)} ${v.granted ? "granted" : "denied"} its vote</title></g>`;
        });
        e.votes.innerHTML = vh;
      }
      // The node's times are on its own clock: read it at `t`.
      const local = localTime(n, st.now, t);
      const span = n.timer_deadline - n.timer_start;
      let frac = 0;
      if (n.alive && span > 0) frac = Math.min(1, Math.max(0, (n.timer_deadline - local) / span));
      setAttr(e.arc, "stroke-dasharray", `${(frac * e.C).toFixed(1)} ${e.C.toFixed(1)}`);
      e.arc.classList.toggle("leader", n.role === "leader");
      const lease = n.alive && n.lease_until != null && n.lease_until > local ? ` · lease ${Math.ceil(n.lease_until - local)}` : "";
      const drift = n.drift_ppm ? ` · ⏱${n.drift_ppm > 0 ? "+" : "−"}${fmtPct(Math.abs(n.drift_ppm))}` : "";
      setText(e.info, n.alive ? `log ${n.last_log_index} · commit ${n.commit_index}${lease}${drift}` : `crashed${drift}`);
      const badge = memberBadge(member, n.id, st.membership);
      if (badge !== e.badgeKey) {
        e.badgeKey = badge;
        e.badge.style.display = badge ? "" : "none";
        e.badgeText.textContent = badge ?? "";
        const w = Math.max(16, 6.5 * (badge?.length ?? 0) + 8);
        e.badgeBox.setAttribute("width", w);
        e.badgeBox.setAttribute("x", -w / 2);
        e.badge.setAttribute("class", `badge b-${(badge ?? "").replace(/[^a-zA-Z]/g, "") || "x"}`);
      }
      e.halo.classList.toggle("out", joint && member === "outgoing");
      if (n.alive && n.role === "leader" && n.transfer_to) targets.set(n.transfer_to, n.id);
      // The clock in the tooltip moves in steps of 100 ms: written every frame, the tooltip
      // alone would re-lay-out every node.
      setText(e.title, `${n.id}: ${n.alive ? n.role : "crashed"} (${MEMBER_NAMES[member] ?? member}), term ${n.term}, voted for ${n.voted_for ?? "–"}, ` +
        `leader ${n.leader_id ?? "–"}\nlog ${n.last_log_index}, commit ${n.commit_index}, applied ${n.last_applied}, ` +
        `snapshot ${n.snapshot_index}\nits configuration: ${n.config || "none yet"}` +
        `\nclock ${(Math.floor(local / 100) * 100).toLocaleString("en-US")} ms (${n.drift_ppm ? `${n.drift_ppm > 0 ? "+" : ""}${n.drift_ppm} ppm` : "no drift"})` +
        `${n.transfer_to ? `\nhanding leadership to ${n.transfer_to}` : ""}\n${this.clickHint(n)}`);
    }
    for (const [id, e] of this.nodeEls) e.halo.classList.toggle("target", targets.has(id));
    let html = "";
    for (const [to, from] of targets) {
      if (!this.pos.has(to) || !this.pos.has(from)) continue;
      const s = this.segment(from, to, 6);
      const mx = (s.x1 + s.x2) / 2, my = (s.y1 + s.y2) / 2;
      // Bow the arrow towards the centre so it does not hide the link.
      const cx = mx * 0.75, cy = my * 0.75;
      html += `<path class="transfer" d="M${s.x1.toFixed(1)} ${s.y1.toFixed(1)}Q${cx.toFixed(1)} ${cy.toFixed(1)} ${s.x2.toFixed(1)} ${s.y2.toFixed(1)}" marker-end="url(#arrow-transfer)">` +
        `<title>${esc(from)} is handing its leadership to ${esc(to)}</title></path>`;
    }
    const live = new Set();
    for (const m of st.messages) {
      if (!this.pos.has(m.from) || !this.pos.has(m.to)) continue;
      const span = Math.max(1e-9, m.deliver_at - m.sent_at);
      const p = Math.min(1, Math.max(0, (t - m.sent_at) / span));
      const s = this.segment(m.from, m.to, 0);
      const x = s.x1 + (s.x2 - s.x1) * p, y = s.y1 + (s.y2 - s.y1) * p;
      const follow = this.followIndex != null && m.entries && m.entries[0] <= this.followIndex && this.followIndex <= m.entries[1];
      let g = this.msgEls.get(m.id);
      if (!g) {
        g = el("g", { "data-msg": m.id, "data-kind": m.kind }, this.flyG);
        this.msgEls.set(m.id, g);
      }
      live.add(m.id);
      // Drawn at the origin and moved by the group's transform: a frame writes one attribute
      // per message unless what it shows changed (dropped by hand, say).
      setHtml(g, messageShape(m));
      setAttr(g, "class", `msg k-${m.kind}${m.dropped ? " dropped" : ""}${follow ? " follow" : ""}${this.selected.msg === m.id ? " selected" : ""}`);
      setAttr(g, "transform", `translate(${x.toFixed(1)} ${y.toFixed(1)})`);
      setAttr(g, "opacity", m.dropped ? Math.max(0.15, 1 - p * 1.4).toFixed(2) : null);
    }
    for (const [id, g] of this.msgEls) {
      if (!live.has(id)) { g.remove(); this.msgEls.delete(id); }
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
    setHtml(this.fxG, html);
    setText(this.clock, `${Math.floor(t).toLocaleString("en-US")} ms`);
    setText(this.clockSub, `${st.events.toLocaleString("en-US")} events · ${st.messages.length} in flight`);
  }
}

/** A message's shape, verdict mark and tooltip, drawn at the origin. */
function messageShape(m) {
  const k = kindInfo(m.kind);
  const fill = k.response ? "#10151c" : k.color;
  const common = `fill="${fill}" stroke="${m.dropped ? "#ef5b5b" : k.color}"`;
  // A transparent disc widens the target: a message is small and moves.
  let h = `<circle class="hit" r="10"></circle>`;
  if (m.kind === "timeout_now") {
    // The leader's hand-over: a large diamond of its own colour.
    const d = 9;
    h += `<path class="timeout-now" d="M0 ${-d}l${d} ${d}l${-d} ${d}l${-d} ${-d}z" ${common}></path>`;
  } else if (m.kind.startsWith("pre_vote")) {
    // Pre-votes are squares, votes discs: told apart without their colours.
    h += `<rect x="-5.5" y="-5.5" width="11" height="11" rx="1.5" ${common}></rect>`;
  } else {
    const heartbeat = m.kind === "append_entries" && !m.entries;
    h += `<circle r="${heartbeat ? 4.5 : 6.5}" ${common}></circle>`;
  }
  if (m.granted != null) h += `<text class="verdict ${m.granted ? "yes" : "no"}" x="8" y="-6">${m.granted ? "✓" : "✗"}</text>`;
  return h + `<title>#${m.id} ${esc(m.from)} → ${esc(m.to)}: ${esc(m.summary)}${m.dropped ? " (will be dropped)" : ""} · click to inspect</title>`;
}

/** What a node's place in the configuration is called (NodeState.member). */
export const MEMBER_NAMES = {
  voter: "voter", incoming: "voter of the new configuration only", outgoing: "voter of the old configuration only",
  learner: "learner", joining: "joining, not a member yet", removed: "removed",
};

/** The badge a node carries: L, +, −, or in a joint configuration old / new / old+new. */
function memberBadge(member, id, m) {
  if (member === "learner") return "L";
  if (member === "joining") return "+";
  if (member === "removed") return "−";
  if (!m?.joint) return null;
  if (member === "incoming") return "new";
  if (member === "outgoing") return "old";
  return "old+new";
}

/** Node `n`'s clock at simulated time `t`, from its reading `n.clock` at `now`. */
export function localTime(n, now, t) {
  if (n.clock == null) return t;
  return n.clock + (t - now) * (1 + (n.drift_ppm ?? 0) / 1e6);
}

/** A drift in ppm as a short percentage: 50000 -> "5%", 2500 -> "0.25%". */
export function fmtPct(ppm) {
  const p = ppm / 1e4;
  return `${Number(p.toFixed(p >= 10 ? 0 : p >= 1 ? 1 : 2))}%`;
}

export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
