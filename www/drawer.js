// The side drawer: what a click on a message, a node or a link opens. It shows every field the
// state holds about the thing, refreshed on each redraw, with the actions that apply to it. A
// click never changes the run by itself: changes are the drawer's buttons (each one a recorded
// action, through the handlers the page gives).

import { ROLE_NAMES, kindInfo } from "./colors.js";
import { MEMBER_NAMES, esc, localTime } from "./ring.js";

/** Readable names of a message's fields (MessageState.fields). */
const FIELD_NAMES = {
  term: "term", candidate: "candidate", last_log: "last log (index/term)", pre_vote: "pre-vote",
  transfer: "leadership transfer", granted: "granted", commit: "known committed (index/term)",
  leader: "leader", prev_log_index: "prev log index", prev_log_term: "prev log term",
  entries: "entries", leader_commit: "leader commit", read_seq: "read round", sent_clock: "leader clock at send",
  success: "success", match_index: "match index", conflict: "conflict (index/term)",
  last_included: "snapshot up to (index/term)", offset: "offset", bytes: "bytes", done: "last chunk",
};

/** The delays (ms) a message's drawer offers: a little, and past an election timeout. */
const DELAYS = [50, 500];

/** A link direction's presets: its new loss and latency (ms) from its own and the global ones. */
const LINK_PRESETS = {
  link_lossy: (l) => ({ ...l, loss: 0.3 }),
  link_slow: (l) => ({ ...l, latency_min: 200, latency_max: 400 }),
  link_reset: (_, net) => net,
};

export class Drawer {
  /**
   * @param {HTMLElement} root
   * @param {{act: (name: string, ...args: any[]) => any, sendHere: (id: string) => void,
   *          timeoutNow: (id: string) => void, isolateToggle: (id: string) => void,
   *          onClose: () => void}} handlers
   */
  constructor(root, handlers) {
    this.root = root;
    this.h = handlers;
    /** What is shown: {kind: "node"|"msg"|"link", id, ...} or null. */
    this.sel = null;
    /** The last state of a shown message, kept once it landed. */
    this.lastMsg = null;
    root.addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-do]");
      if (!b) return;
      this.run(b.dataset.do, b.dataset.arg);
    });
  }

  get open() { return !!this.sel; }

  show(sel) {
    this.sel = sel;
    this.lastMsg = null;
    this.root.hidden = false;
    this.root.dataset.kind = sel.kind;
    document.body.classList.add("drawer-open");
  }

  close() {
    this.sel = null;
    this.root.hidden = true;
    this.root.innerHTML = "";
    document.body.classList.remove("drawer-open");
    this.h.onClose();
  }

  run(what, arg) {
    const s = this.sel;
    if (what === "close") { this.close(); return; }
    if (!s) return;
    if (s.kind === "node") {
      if (what === "kill" || what === "restart") this.h.act(what, s.id);
      else if (what === "isolate") this.h.isolateToggle(s.id);
      else if (what === "timeout") this.h.timeoutNow(s.id);
      else if (what === "send") this.h.sendHere(s.id);
    } else if (s.kind === "msg") {
      if (what === "drop") this.h.act("drop_message", s.id);
      else if (what === "duplicate") this.h.act("duplicate_message", s.id);
      else if (what === "delay") this.h.act("delay_message", s.id, Number(arg));
    } else if (s.kind === "link") {
      const [a, b] = [s.a, s.b];
      if (what === "cut" || what === "heal") {
        const [f, t] = arg === "ab" ? [a, b] : [b, a];
        this.h.act(what, f, t);
      } else if (what === "cut_both" || what === "heal_both") this.h.act(what, a, b);
      else if (what in LINK_PRESETS) {
        // One direction's loss and latency: a preset, or back to the global setting.
        const [f, t] = arg === "ab" ? [a, b] : [b, a];
        const cur = this.st?.links.find((x) => x.from === f && x.to === t);
        if (!cur) return;
        const p = LINK_PRESETS[what](cur, this.st.net);
        this.h.act("set_link", f, t, p.loss, p.latency_min, p.latency_max);
      }
    }
  }

  /** Redraws the open drawer from `st` at simulated time `t`. */
  draw(st, t) {
    const s = this.sel;
    if (!s) return;
    this.st = st;
    let html = "";
    if (s.kind === "node") html = this.nodeHtml(st, t, s.id);
    else if (s.kind === "msg") html = this.msgHtml(st, s.id);
    else if (s.kind === "link") html = this.linkHtml(st, s.a, s.b);
    this.root.innerHTML = `<button class="close" data-do="close" title="Close (Esc)" aria-label="Close">✕</button>${html}`;
  }

  nodeHtml(st, t, id) {
    const n = st.nodes.find((x) => x.id === id);
    if (!n) return `<h3>${esc(id)}</h3><p class="empty">No such node in this run.</p>`;
    const local = localTime(n, st.now, t);
    const left = n.timer_deadline - local;
    const isolated = st.links.filter((l) => l.from === id || l.to === id).every((l) => l.cut);
    const role = n.alive ? ROLE_NAMES[n.role] : "crashed";
    const timer = !n.alive ? "–" : n.role === "leader"
      ? `check-quorum in ${Math.max(0, Math.ceil(left))} ms`
      : `${left > 0 ? `fires in ${Math.ceil(left)} ms` : "firing"} (at ${n.timer_deadline} on its clock)`;
    const rows = [
      ["role", `${role}${n.alive ? "" : ` (was ${ROLE_NAMES[n.role]})`}`],
      ["place", MEMBER_NAMES[n.member] ?? n.member],
      ["term", n.term], ["voted for", n.voted_for ?? "–"], ["leader", n.leader_id ?? "–"],
      ["election timer", timer],
      ["log (last index)", n.last_log_index], ["commit index", n.commit_index],
      ["applied", n.last_applied], ["snapshot up to", n.snapshot_index],
      ["clock", `${Math.floor(local)} ms${n.drift_ppm ? ` (${n.drift_ppm > 0 ? "+" : ""}${n.drift_ppm} ppm)` : ""}`],
      ["configuration", n.config || "none yet"],
    ];
    if (n.transfer_to) rows.push(["handing over to", n.transfer_to]);
    let html = `<h3><i class="dot" style="background:var(--r-${n.alive ? n.role : "dead"})"></i>${esc(id)} <small>${esc(role)}</small></h3>`;
    html += `<table class="fields" data-node="${esc(id)}">${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td data-f="${esc(k)}">${esc(v)}</td></tr>`).join("")}</table>`;
    if (n.progress?.length) {
      html += `<h4>Replication (what ${esc(id)} knows of each peer)</h4><table class="progress"><thead><tr><th>peer</th><th>next</th><th>match</th><th>state</th></tr></thead><tbody>` +
        n.progress.filter((p) => p.id !== id).map((p) => `<tr data-peer="${esc(p.id)}"><td>${esc(p.id)}${p.voter ? "" : " (learner)"}</td><td>${p.next_index}</td><td>${p.match_index}</td><td>${esc(p.state)}</td></tr>`).join("") +
        `</tbody></table>`;
    }
    if (n.votes?.length) {
      html += `<h4>Votes received this ${n.role === "pre_candidate" ? "pre-vote" : "term"}</h4><p class="votes">` +
        n.votes.map((v) => `<span class="${v.granted ? "good" : "bad"}">${v.granted ? "✓" : "✗"} ${esc(v.from)}</span>`).join(" ") + `</p>`;
    }
    const canTimeout = n.alive && n.role !== "leader";
    html += `<div class="actions">` +
      `<button data-do="${n.alive ? "kill" : "restart"}">${n.alive ? "Kill" : "Restart"}</button>` +
      `<button data-do="isolate" title="${isolated ? "Heal every link to and from it" : "Cut every link to and from it"}">${isolated ? "Heal its links" : "Isolate"}</button>` +
      `<button data-do="timeout" ${canTimeout ? "" : "disabled"} title="Its election timer fires now (a jump of its clock to the deadline)">Time out now</button>` +
      `<button data-do="send" title="Send the client form's request to ${esc(id)}">Send request here</button></div>`;
    return html;
  }

  msgHtml(st, id) {
    const live = st.messages.find((m) => m.id === id);
    if (live) this.lastMsg = live;
    const m = live ?? this.lastMsg;
    if (!m) return `<h3>message #${id}</h3><p class="empty">No longer in flight.</p>`;
    const k = kindInfo(m.kind);
    const status = live ? (m.dropped ? "in flight, will be dropped" : "in flight") : "landed or dropped (no longer in flight)";
    const rows = [["kind", m.kind], ["from → to", `${m.from} → ${m.to}`], ["status", status],
      ...m.fields.map(([f, v]) => [FIELD_NAMES[f] ?? f, v]),
      ["sent at", `${m.sent_at} ms`], ["delivery at", `${m.deliver_at} ms`]];
    let html = `<h3><i class="dot" style="background:${k.color}"></i>${esc(k.name)}${k.response ? " reply" : ""} <small>#${m.id}</small></h3>`;
    html += `<table class="fields" data-msg="${m.id}">${rows.map(([f, v]) => `<tr><th>${esc(f)}</th><td>${esc(v)}</td></tr>`).join("")}</table>`;
    const on = live && !m.dropped ? "" : "disabled";
    html += `<div class="actions"><button data-do="drop" ${on} title="The network loses this message">Drop it</button>` +
      `<button data-do="duplicate" ${on} title="The network delivers it twice: a copy arrives 5 ms after it">Duplicate</button>` +
      DELAYS.map((ms) => `<button data-do="delay" data-arg="${ms}" ${on} title="It arrives ${ms} ms later than it would">Delay +${ms} ms</button>`).join("") +
      `</div>`;
    return html;
  }

  linkHtml(st, a, b) {
    const l = (f, t) => st.links.find((x) => x.from === f && x.to === t);
    const ab = l(a, b), ba = l(b, a);
    if (!ab || !ba) return `<h3>${esc(a)} ↔ ${esc(b)}</h3><p class="empty">No such link.</p>`;
    const row = (x, dir) => `<tr><th>${esc(x.from)} → ${esc(x.to)}</th><td>${x.cut ? `<b class="bad">cut (${esc(x.from)} ⇸ ${esc(x.to)})</b>` : "up"}</td>` +
      `<td>${x.delivered} delivered, ${x.dropped} dropped</td><td data-f="quality">loss ${Math.round(x.loss * 100)}%, ${x.latency_min}–${x.latency_max} ms</td>` +
      `<td><button data-do="${x.cut ? "heal" : "cut"}" data-arg="${dir}">${x.cut ? "Heal" : "Cut"} this way</button>` +
      `<button data-do="link_lossy" data-arg="${dir}" title="This direction loses 30% of its messages">Lossy</button>` +
      `<button data-do="link_slow" data-arg="${dir}" title="This direction takes 200–400 ms">Slow</button>` +
      `<button data-do="link_reset" data-arg="${dir}" title="Back to the global loss and latency">Like the rest</button></td></tr>`;
    const any = ab.cut || ba.cut;
    return `<h3>${esc(a)} ↔ ${esc(b)} <small>link</small></h3><table class="fields link">${row(ab, "ab")}${row(ba, "ba")}</table>` +
      `<div class="actions"><button data-do="${any ? "heal_both" : "cut_both"}">${any ? "Heal both ways" : "Cut both ways"}</button></div>`;
  }
}
