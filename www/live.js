// Live mode: the page attached to a real 3-node kvserver cluster that `playground
// --dev-cluster` started and owns (docs/playground.md, "Live mode"). Only there does
// /playground.json say `dev_cluster: true` and GET /dev/cluster answer; elsewhere the Live
// button stays hidden and nothing here runs.
//
// What it shows comes from one same-origin event stream, GET /dev/events: the processes and
// links (`cluster`), each node's own status from its /debug/events (`status`: role, term,
// leader, commit/applied, last log, snapshot, and a leader's per-peer next/match), and
// `down` when a node's stream ended. Requests from the console go through /dev/api (the
// playground follows the redirects to the leader), and so does a leadership transfer (the
// membership control that fits a fixed set of proxied processes); kill/restart and cut/heal
// are the playground's /dev routes. The simulator is left as it was, paused and hidden, and comes
// back untouched when live mode is switched off.

import { Ring, esc } from "./ring.js";
import { ROLE_NAMES } from "./colors.js";

/** The page's client id for its writes (with `seq`, a write's name: a retry applies once). */
const CLIENT_ID = `page-${Math.random().toString(36).slice(2, 10)}`;

export class Live {
  /**
   * @param {{toggle: HTMLButtonElement, view: HTMLElement, onEnter: () => void,
   *          onLeave: () => void, toast: (msg: string, kind?: string) => void}} opts
   *   onEnter/onLeave: the page pauses and hides the simulator / shows it again.
   */
  constructor(opts) {
    this.o = opts;
    /** Live mode is on. */
    this.active = false;
    /** The processes and links (GET /dev/cluster's shape), once known. */
    this.cluster = null;
    /** Node id -> its last status event (null: its stream is down). */
    this.status = new Map();
    /** Events received so far. */
    this.events = 0;
    /** Changes seen (role, term, leader, process), newest last. */
    this.changes = [];
    /** The console's requests, newest last: {id, op, key, value, to, status, answer, node}. */
    this.ops = [];
    this.seq = 0;
    this.selected = null;
    this.source = null;
    this.ring = null;
    this.built = false;
  }

  /**
   * Shows the Live button if this playground runs a dev cluster: /playground.json says so (a
   * plain playground answers it too, so no page logs a failed request).
   */
  async probe() {
    try {
      const about = await fetch("/playground.json").then((r) => (r.ok ? r.json() : {}));
      if (!about.dev_cluster) return false;
      const r = await fetch("/dev/cluster");
      if (!r.ok) return false;
      this.cluster = await r.json();
    } catch {
      return false;
    }
    this.o.toggle.hidden = false;
    this.o.toggle.onclick = () => (this.active ? this.leave() : this.enter());
    return true;
  }

  enter() {
    if (!this.built) this.build();
    this.active = true;
    this.o.onEnter();
    document.body.classList.add("live-mode");
    this.o.view.hidden = false;
    this.o.toggle.classList.add("active");
    this.o.toggle.textContent = "◉ Live";
    this.connect();
    this.draw();
  }

  leave() {
    this.active = false;
    this.source?.close();
    this.source = null;
    document.body.classList.remove("live-mode");
    this.o.view.hidden = true;
    this.o.toggle.classList.remove("active");
    this.o.toggle.textContent = "Live";
    this.o.onLeave();
  }

  /** Opens the stream; the browser reconnects it by itself should the playground restart. */
  connect() {
    this.source?.close();
    const src = new EventSource("/dev/events");
    this.source = src;
    src.addEventListener("cluster", (ev) => this.onCluster(JSON.parse(ev.data)));
    src.addEventListener("status", (ev) => this.onStatus(JSON.parse(ev.data)));
    src.addEventListener("down", (ev) => this.onDown(JSON.parse(ev.data).id));
  }

  onCluster(c) {
    const before = new Map((this.cluster?.nodes ?? []).map((n) => [n.id, n.alive]));
    for (const n of c.nodes) {
      const was = before.get(n.id);
      if (was != null && was !== n.alive) this.note(`${n.id} ${n.alive ? `started again (pid ${n.pid})` : "killed"}`);
    }
    this.cluster = c;
    this.events++;
    this.draw();
  }

  onStatus(s) {
    const prev = this.status.get(s.id);
    if (prev && prev.role !== s.role) this.note(`${s.id} is ${ROLE_NAMES[s.role] ?? s.role} in term ${s.term}`);
    else if (!prev && s.role === "leader") this.note(`${s.id} leads term ${s.term}`);
    this.status.set(s.id, s);
    this.events++;
    this.draw();
  }

  onDown(id) {
    if (this.status.get(id) !== null) this.note(`${id}: its event stream ended`);
    this.status.set(id, null);
    this.events++;
    this.draw();
  }

  note(text) {
    this.changes.push({ at: new Date().toLocaleTimeString(), text });
    if (this.changes.length > 200) this.changes.shift();
  }

  /** The nodes as the ring draws them (the simulator's node shape, what is known of it). */
  nodes() {
    return (this.cluster?.nodes ?? []).map((p) => {
      const s = this.status.get(p.id);
      const alive = p.alive && !!s && !s.stopped;
      return {
        id: p.id, alive, process: p.alive, pid: p.pid, addr: p.addr,
        role: s?.role ?? "follower", term: s?.term ?? 0, voted_for: s?.voted_for ?? null,
        leader_id: s?.leader_id ?? null, commit_index: s?.commit_index ?? 0,
        last_applied: s?.last_applied ?? 0, last_log_index: s?.last_log_index ?? 0,
        snapshot_index: s?.snapshot_index ?? 0, progress: s?.progress ?? [],
        config: (s?.voters ?? []).join(", "), member: "voter",
        timer_start: 0, timer_deadline: 0, clock: null,
      };
    });
  }

  /** The node that leads the highest term among the running ones, or null. */
  leader() {
    const ls = this.nodes().filter((n) => n.alive && n.role === "leader");
    return ls.sort((a, b) => b.term - a.term)[0] ?? null;
  }

  // ---- the view ----

  build() {
    this.built = true;
    const v = this.o.view;
    v.innerHTML = `
      <section class="stage">
        <div class="stage-tools"><span>The real cluster: click a node to select it (and send the console's requests there), a link to cut or heal it; k kills the leader.</span></div>
        <svg id="live-ring" viewBox="-300 -300 600 600" role="img" aria-label="Live cluster ring">
          <defs><marker id="live-arrow" viewBox="0 0 6 6" refX="3" refY="3" markerWidth="5" markerHeight="5" orient="auto">
            <path d="M0,0 L6,3 L0,6 z" fill="#ef5b5b"></path></marker></defs>
          <g data-layer="links"></g><g data-layer="msgs"></g><g data-layer="nodes"></g>
          <text data-layer="clock" x="0" y="-6" text-anchor="middle" class="clock">live</text>
          <text data-layer="clock-sub" x="0" y="16" text-anchor="middle" class="clock-sub"></text>
        </svg>
        <div class="statusline" id="live-statusline"></div>
      </section>
      <section class="panels live-panels">
        <div class="panel">
          <h2>Nodes <small>processes owned by the playground; status from each node's /debug/events</small></h2>
          <div class="scroll"><table id="live-nodes" class="live-table"><thead><tr>
            <th>node</th><th>process</th><th>role</th><th>term</th><th>leader</th><th>commit</th><th>applied</th>
            <th>last log</th><th>snapshot</th><th></th><th></th></tr></thead><tbody></tbody></table></div>
        </div>
        <div class="row2">
          <div class="panel">
            <h2>Replication <small>the leader's next / match per member</small></h2>
            <div class="scroll"><table id="live-progress" class="live-table"><thead><tr>
              <th>member</th><th>match</th><th>next</th><th>state</th></tr></thead><tbody></tbody></table></div>
            <h2>Links <small>both directions of a pair</small></h2>
            <div class="scroll"><table id="live-links" class="live-table"><tbody></tbody></table></div>
          </div>
          <div class="panel client">
            <h2>Client <small>real requests, through the playground</small></h2>
            <form id="live-form" autocomplete="off">
              <select id="live-op" aria-label="operation"><option>put</option><option>get</option><option>delete</option></select>
              <input id="live-key" placeholder="key" value="x" aria-label="key" size="6">
              <input id="live-value" placeholder="value" value="1" aria-label="value" size="6">
              <select id="live-to" aria-label="send to" title="The node the request goes to first (the playground follows its redirect to the leader)">
                <option value="">→ any</option></select>
              <button type="submit" class="primary">Send</button>
            </form>
            <ol id="live-ops" class="scroll"></ol>
          </div>
        </div>
        <div class="panel">
          <h2>Changes</h2>
          <ol id="live-changes" class="scroll"></ol>
        </div>
      </section>`;
    const $ = (s) => v.querySelector(s);
    this.ui = {
      svg: $("#live-ring"), statusline: $("#live-statusline"), nodes: $("#live-nodes tbody"),
      progress: $("#live-progress tbody"), links: $("#live-links tbody"), form: $("#live-form"),
      op: $("#live-op"), key: $("#live-key"), value: $("#live-value"), to: $("#live-to"),
      ops: $("#live-ops"), changes: $("#live-changes"),
    };
    this.ring = new Ring(this.ui.svg, {
      // Selecting a node also makes it where the console's requests go first.
      onNode: (id) => {
        this.selected = this.selected === id ? null : id;
        this.ui.to.value = this.selected ?? "";
        this.draw();
      },
      onLink: (a, b) => this.toggleLink(a, b),
      onMessage: () => {},
      onMenu: null,
    });
    this.ring.clickHint = (n) => `click to select ${n.id}`;
    v.addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-live]");
      if (!b) return;
      const [what, a, c] = b.dataset.live.split(" ");
      if (what === "kill" || what === "restart") this.node(what, a);
      else if (what === "link") this.toggleLink(a, c);
      else if (what === "transfer") this.transfer(a);
    });
    this.ui.op.onchange = () => { this.ui.value.hidden = this.ui.op.value !== "put"; };
    // k kills the leader, as in the simulator (whose keys are off meanwhile).
    document.addEventListener("keydown", (ev) => {
      if (!this.active || ev.key !== "k" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement) return;
      const l = this.leader();
      if (l) this.node("kill", l.id); else this.o.toast("No leader to kill right now.");
    });
    this.ui.form.onsubmit = (ev) => {
      ev.preventDefault();
      this.send(this.ui.op.value, this.ui.key.value, this.ui.value.value, this.ui.to.value);
    };
  }

  draw() {
    if (!this.active || !this.built) return;
    const nodes = this.nodes();
    const ids = nodes.map((n) => n.id);
    if (!this.ring.hasLayout(ids)) {
      this.ring.layout(ids);
      this.ui.to.replaceChildren(new Option("→ any", ""), ...ids.map((id) => new Option(`→ ${id}`, id)));
    }
    const links = (this.cluster?.links ?? []).map((l) => ({ from: l.from, to: l.to, cut: l.cut }));
    const voters = nodes[0]?.config ? nodes[0].config.split(", ") : ids;
    this.ring.selected = { msg: null, node: this.selected };
    this.ring.draw({
      nodes, links, messages: [], drops: [], events: this.events, now: 0,
      membership: { voters, outgoing: [], learners: [], joint: false },
    }, 0);
    this.ring.clock.textContent = "live";
    this.ring.clockSub.textContent = `${this.events.toLocaleString("en-US")} events`;
    const l = this.leader();
    this.ui.statusline.innerHTML = `<span>leader <b>${l ? `${esc(l.id)} (term ${l.term})` : "none"}</b></span>` +
      `<span>running <b>${nodes.filter((n) => n.process).length}/${nodes.length}</b></span>` +
      `<span>cut links <b>${links.filter((x) => x.cut).length / 2}</b></span>`;
    this.ui.nodes.innerHTML = nodes.map((n) => {
      const act = n.process ? `kill ${n.id}` : `restart ${n.id}`;
      return `<tr data-id="${esc(n.id)}" data-role="${n.alive ? n.role : "dead"}" class="${this.selected === n.id ? "selected" : ""}">` +
        `<td><b>${esc(n.id)}</b> <small>${esc(n.addr)}</small></td>` +
        `<td title="${n.process ? "running" : "not running"}">${n.process ? `pid ${n.pid}` : "killed"}</td><td>${n.alive ? esc(ROLE_NAMES[n.role] ?? n.role) : "–"}</td>` +
        // A node that is down says nothing: its last status would be stale.
        [n.term, n.leader_id ?? "–", n.commit_index, n.last_applied, n.last_log_index, n.snapshot_index]
          .map((x) => `<td>${n.alive ? esc(x) : "–"}</td>`).join("") +
        `<td><button data-live="${act}">${n.process ? "Kill" : "Restart"}</button></td>` +
        // A running follower can be handed the leadership (the leader sends it TimeoutNow).
        `<td>${n.alive && l && n.id !== l.id ? `<button data-live="transfer ${esc(n.id)}" title="Ask the leader to hand its leadership to ${esc(n.id)}">Make leader</button>` : ""}</td></tr>`;
    }).join("");
    this.ui.progress.innerHTML = (l?.progress ?? []).map((p) =>
      `<tr><td>${esc(p.id)}</td><td>${p.match_index}</td><td>${p.next_index}</td><td>${p.id === l.id ? "leader" : esc(p.state)}</td></tr>`).join("") ||
      `<tr><td colspan="4">no leader</td></tr>`;
    const pairs = [];
    for (let i = 0; i < ids.length; i++) for (let j = i + 1; j < ids.length; j++) pairs.push([ids[i], ids[j]]);
    this.ui.links.innerHTML = pairs.map(([a, b]) => {
      const cut = links.some((x) => x.cut && ((x.from === a && x.to === b) || (x.from === b && x.to === a)));
      return `<tr data-link="${a}-${b}"><td>${a} ↔ ${b}</td><td>${cut ? "cut" : "open"}</td>` +
        `<td><button data-live="link ${a} ${b}">${cut ? "Heal" : "Cut"}</button></td></tr>`;
    }).join("");
    this.ui.ops.innerHTML = this.ops.slice(-50).reverse().map((o) =>
      `<li data-op="${o.id}" data-status="${o.status}"><b>${esc(o.op)}</b> ${esc(o.key)}${o.op === "put" ? `=${esc(o.value)}` : ""}` +
      ` → ${esc(o.to || "any")}: <span class="ans">${esc(o.answer ?? "…")}</span>${o.node ? ` <small>(answered by ${esc(o.node)})</small>` : ""}</li>`).join("");
    this.ui.changes.innerHTML = this.changes.slice(-80).reverse().map((c) => `<li><small>${esc(c.at)}</small> ${esc(c.text)}</li>`).join("");
  }

  // ---- actions ----

  /** POSTs a dev route; a refusal is a toast. Returns the answer's JSON, or null. */
  async post(path) {
    try {
      const r = await fetch(path, { method: "POST" });
      const body = await r.json();
      if (!r.ok) { this.o.toast(body.err_msg ?? `${path}: ${r.status}`, "error"); return null; }
      this.cluster = body;
      this.draw();
      return body;
    } catch (e) {
      this.o.toast(`${path}: ${e.message}`, "error");
      return null;
    }
  }

  /** Kills or restarts node `id`. */
  node(what, id) {
    return this.post(`/dev/nodes/${encodeURIComponent(id)}/${what}`);
  }

  /** Cuts the pair's links, or heals them when either direction is cut. */
  toggleLink(a, b) {
    const cut = (this.cluster?.links ?? []).some((x) => x.cut && ((x.from === a && x.to === b) || (x.from === b && x.to === a)));
    return this.post(`/dev/links/${encodeURIComponent(a)}/${encodeURIComponent(b)}/${cut ? "heal" : "cut"}`);
  }

  /**
   * Asks the leader (through /dev/api, which follows the redirect there) to hand its leadership
   * to `to`; the answer, or the refusal, is a toast and a line in Changes.
   */
  async transfer(to) {
    try {
      const r = await fetch("/dev/api/cluster/transfer-leader", {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ to }),
      });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) {
        this.o.toast(`transfer to ${to}: ${body.err_code ?? r.status}${body.err_msg ? `: ${body.err_msg}` : ""}`, "error");
        return null;
      }
      this.note(`leadership handed to ${body.to ?? to}`);
      this.draw();
      return body;
    } catch (e) {
      this.o.toast(`transfer to ${to}: ${e.message}`, "error");
      return null;
    }
  }

  /** Sends a client request through /dev/api; the answer lands in the console's list. */
  async send(op, key, value, to) {
    if (!key) { this.o.toast("A key is required.", "error"); return null; }
    const o = { id: this.ops.length + 1, op, key, value, to, status: "pending", answer: null, node: null };
    this.ops.push(o);
    this.draw();
    const path = `/dev/api/kv/${encodeURIComponent(key)}`;
    const headers = { "content-type": "application/json" };
    if (to) headers["x-raftkv-node"] = to;
    const write = (extra) => JSON.stringify({ client_id: CLIENT_ID, seq: ++this.seq, ...extra });
    const req = op === "put" ? { method: "PUT", headers, body: write({ value }) }
      : op === "delete" ? { method: "DELETE", headers, body: write({}) }
        : { method: "GET", headers };
    try {
      const r = await fetch(op === "get" ? `${path}?consistency=readindex` : path, req);
      const body = await r.json().catch(() => ({}));
      o.node = r.headers.get("x-raftkv-node");
      o.status = body.ok ? "ok" : "error";
      o.answer = body.ok ? (op === "get" ? `"${body.value}"` : `ok${body.index != null ? ` (index ${body.index})` : ""}`)
        : `${body.err_code ?? r.status}${body.err_msg ? `: ${body.err_msg}` : ""}`;
    } catch (e) {
      o.status = "error";
      o.answer = e.message;
    }
    this.draw();
    return o;
  }
}

/** Creates the Live button's logic; the button shows only against a dev cluster. */
export function startLive(opts) {
  const live = new Live(opts);
  live.probe();
  return live;
}
