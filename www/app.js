// The page: loads the wasm package, wires the controls, runs the animation loop.

import init, * as wasm from "./pkg/raftkv_web.js";
import { Runner, SimCrash } from "./runner.js";
import { Ring } from "./ring.js";
import { Members } from "./members.js";
import { drawKv, drawLogs, drawOps, drawTrace, drawVerdict, SHOW_DEFAULT } from "./panels.js";
import { setHtml, setText } from "./dom.js";
import { Drawer } from "./drawer.js";
import { Filters } from "./filters.js";
import { encodeRun, decodeRun } from "./share.js";
import { SCENARIOS } from "./scenarios.js";
import { startLive } from "./live.js";
import { ROLE_COLORS, ROLE_NAMES, ROLE_LETTERS, KIND_FAMILIES } from "./colors.js";

const $ = (sel) => document.querySelector(sel);

const ui = {
  play: $("#play"), step: $("#step"), stepBack: $("#step-back"),
  scrub: $("#scrub"), scrubLabel: $("#scrub-label"), scrubMarks: $("#scrub-marks"), timeline: $("#timeline"),
  rewindNote: $("#rewind-note"), speed: $("#speed"), speedLabel: $("#speed-label"),
  nodes: $("#nodes"), seed: $("#seed"), reset: $("#reset"), scenario: $("#scenario"),
  share: $("#share"), helpBtn: $("#help-btn"), help: $("#help"), banner: $("#banner"), toast: $("#toast"),
  logs: $("#logs"), kv: $("#kv"), ops: $("#ops"), trace: $("#trace"), verdict: $("#verdict"),
  statusline: $("#statusline"), legend: $("#legend"),
  form: $("#client-form"), op: $("#op"), key: $("#op-key"), value: $("#op-value"),
  expected: $("#op-expected"), mode: $("#op-mode"), opNode: $("#op-node"),
  clickMode: $("#click-mode"), addNode: $("#add-node"), jointBadge: $("#joint-badge"),
  members: $("#members"), configLine: $("#config-line"), jumpMs: $("#jump-ms"),
  drawer: $("#drawer"), lastEvent: $("#last-event"), menu: $("#menu"),
  loss: $("#net-loss"), lossLabel: $("#net-loss-label"), latMin: $("#net-lat-min"), latMax: $("#net-lat-max"),
};

let runner = null;
let ring = null;
let members = null;
let playing = false;
let speed = 1 / 20;
let lastFrame = null;
let lastPanels = { at: 0, key: "" };
let drawer = null;
/** The message filters' form and list (www/filters.js). */
let filters = null;
/** What the last redraw drew: the run's version and the drawing time. The page redraws only
 * when one of them changed (or `dirty` says the page itself changed), so a paused, unchanged
 * page costs nothing. */
let drawn = { version: -1, t: -1 };
let dirty = true;
/** Redraws so far (for tests: none while paused and unchanged). */
let draws = 0;
/** The op the person follows (its log entry and messages highlighted), or null. */
let followOp = null;
/** Which kinds of lines Events shows (the filter's checkboxes). */
const traceShow = { ...SHOW_DEFAULT };
/** Where the timeline was dragged to and not yet gone (applied once per frame), or null. */
let scrubTo = null;
/** The last branch taken ({at, dropped, until}, see Runner.onBranch), told until the next rewind. */
let branch = null;
/** Live mode (www/live.js): the real cluster of `playground --dev-cluster`, when there is one. */
let live = null;

/** For tests and the curious: the live objects. */
window.raftkv = {
  get runner() { return runner; }, get playing() { return playing; }, setPlaying, reset: (s) => startRun(s),
  get draws() { return draws; }, get branch() { return branch; }, get drawer() { return drawer?.sel ?? null; }, get followOp() { return followOp; },
  get live() { return live; },
  /** Whether something is still to be drawn (a panel redraw held back, say): tests wait for false. */
  get dirty() { return dirty; },
};

// ---- messages to the person ----

function showCrash(msg) {
  setPlaying(false);
  ui.banner.hidden = false;
  ui.banner.innerHTML = "";
  const b = document.createElement("strong");
  b.textContent = "The simulator crashed. ";
  const m = document.createElement("code");
  m.textContent = msg;
  const btn = document.createElement("button");
  btn.textContent = "Reset";
  btn.onclick = () => startRun(currentSettings());
  ui.banner.append(b, m, " ", btn);
}

let toastTimer = null;
function toast(msg, kind = "info", ms = 5000) {
  ui.toast.hidden = false;
  ui.toast.className = `toast ${kind}`;
  ui.toast.textContent = msg;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { ui.toast.hidden = true; }, ms);
}

/** Runs `f`; a crash shows the banner, any other error a toast. Never lets an error escape. */
function safely(f) {
  try {
    return f();
  } catch (e) {
    if (e instanceof SimCrash) showCrash(e.message);
    else {
      // The simulator's refusals (an Error with a readable message) are for the person; a
      // fault in the page's own code is logged as one too.
      if (e instanceof TypeError || e instanceof ReferenceError || e instanceof RangeError) console.error(e);
      else console.warn(e?.message ?? e);
      toast(e?.message ?? String(e), "error");
    }
    return undefined;
  }
}

// ---- controls ----

function setPlaying(p) {
  playing = p && !runner?.crashed;
  ui.play.textContent = playing ? "❚❚ Pause" : "▶ Play";
  ui.play.classList.toggle("active", playing);
  // Paused, the page draws once more: what playing drew coarsely (the timeline) exactly.
  if (!playing) { updateHash(); dirty = true; }
}

function setSpeedFromSlider() {
  const v = Number(ui.speed.value);
  speed = Math.pow(10, -v);
  const inv = 1 / speed;
  ui.speedLabel.textContent = inv < 1.05 ? "1x" : `1/${inv < 10 ? inv.toFixed(1).replace(/\.0$/, "") : Math.round(inv)}x`;
}

function currentSettings() {
  return { nodes: Number(ui.nodes.value), seed: ui.seed.value.trim() || "1", snap: 0, t: null, actions: [] };
}

function updateHash() {
  if (!runner?.live) return;
  safely(() => history.replaceState(null, "", `#${encodeRun(runner.runSpec())}`));
}

/**
 * Starts run `spec`. When it is refused (options out of range, say), the old run keeps going
 * and the fields show its settings again; returns whether the new run started.
 */
function startRun(spec, { play = spec.t == null } = {}) {
  const wasPlaying = playing;
  const ok = safely(() => {
    runner.reset(spec);
    ui.banner.hidden = true;
    relayout(runner.guard((pg) => pg.node_ids()));
    return true;
  }) === true;
  ui.nodes.value = String(runner.spec.nodes);
  ui.seed.value = runner.spec.seed;
  lastPanels.key = "";
  followOp = null;
  if (ok) branch = null;
  updateHash();
  draw(true);
  setPlaying(ok ? play : wasPlaying);
  return ok;
}

// ---- rewind ----

/**
 * Goes to simulated time `t` on the timeline: back is a rebuild and a replay (Runner.rewindTo),
 * forward is running on; the end of the timeline is exactly the furthest point reached.
 */
function scrubToTime(t) {
  safely(() => {
    const f = runner.furthest;
    if (t >= f.t) runner.rewindTo(f.t, f.ev);
    else runner.rewindTo(t);
  });
  branch = null; // told until the next move on the timeline
  dirty = true;
}

/** Goes back one event (Runner.stepBack). */
function stepBack() {
  setPlaying(false);
  scrubTo = null;
  branch = null;
  safely(() => runner.stepBack());
  updateHash();
  draw(true);
}

/** The timeline under the ring: its range, position, action ticks, and the rewind notice. */
function drawTimeline() {
  const f = runner.furthest, now = runner.now();
  // Written only when changed: the timeline is drawn every frame (see dom.js). While a run
  // plays, the slider moves in steps of a thousandth of its length (its thumb cannot show
  // less): repainting the range with its ticks cost a millisecond a frame. Paused, it is exact.
  const q = playing ? Math.max(1, Math.floor(f.t / 1000)) : 1;
  const near = (a, b) => Math.abs(Number(a) - b) < q && Number(a) <= f.t;
  if (!near(ui.scrub.max, f.t)) ui.scrub.max = String(f.t);
  if (scrubTo == null && !near(ui.scrub.value, now)) ui.scrub.value = String(now);
  const rewound = runner.rewound;
  ui.timeline.classList.toggle("rewound", rewound);
  setText(ui.scrubLabel, rewound ? `${now} / ${f.t} ms` : `${now} ms`);
  // The ticks change only when the recorded actions do: a new run, an action, a branch.
  const marks = `${runner.generation}/${runner.spec.actions.length}/${runner.pending.length}`;
  if (ui.scrubMarks.dataset.marks !== marks) {
    ui.scrubMarks.dataset.marks = marks;
    const actions = [...runner.spec.actions, ...runner.pending];
    ui.scrubMarks.replaceChildren(...actions.map((a) => new Option(`${a.name} at ${a.t} ms`, String(a.t))));
  }
  let note = "", kind = "";
  if (rewound) {
    const ahead = runner.pending.length;
    kind = "rewound";
    note = `Rewound to ${now} ms of ${f.t} ms (event ${runner.events()} of ${f.ev}). Play, step or drag forward to replay ` +
      `the recorded run${ahead ? ` (${ahead} action${ahead === 1 ? "" : "s"} ahead)` : ""}; an action taken here starts a branch.`;
  } else if (branch) {
    kind = "branch";
    const b = branch;
    const acts = `${b.dropped} recorded action${b.dropped === 1 ? "" : "s"}`;
    // Rewound, the timeline ahead is dropped; at the end of a link still replaying, only its
    // actions still ahead are.
    const gone = b.until.t > b.at.t || b.until.ev > b.at.ev
      ? `the recorded future up to ${b.until.t} ms${b.dropped ? ` and its ${b.dropped} action${b.dropped === 1 ? "" : "s"}` : ""} is dropped`
      : `the link's ${acts} still ahead ${b.dropped === 1 ? "is" : "are"} dropped`;
    note = `Branched at ${b.at.t} ms: ${gone}. Share links to this branch.`;
  }
  setText(ui.rewindNote, note);
  if (ui.rewindNote.dataset.kind !== kind || ui.rewindNote.hidden !== !note) {
    ui.rewindNote.hidden = !note;
    ui.rewindNote.className = `rewind-note ${kind}`;
    ui.rewindNote.dataset.kind = kind;
  }
}

/** Takes a recorded action (see Runner.act); a refusal shows as a toast. */
function act(name, ...args) {
  const r = safely(() => runner.act(name, ...args));
  updateHash();
  draw(true);
  return r;
}

/** The node's election timer fires now: its clock jumps to the deadline (a recorded action). */
function timeoutNow(id) {
  safely(() => {
    const n = runner.state().nodes.find((x) => x.id === id);
    if (!n?.alive) throw new Error(`${id} is not running`);
    if (n.role === "leader") throw new Error(`${id} leads: it has no election timer to run out`);
    act("jump_clock", id, Math.max(1, Math.ceil(n.timer_deadline - n.clock)));
  });
}

/** Cuts every link of `id`, or heals them all when every one is cut already. */
function isolateToggle(id) {
  safely(() => {
    const st = runner.state();
    const mine = st.links.filter((l) => l.from === id || l.to === id);
    if (mine.length && mine.every((l) => l.cut)) {
      for (const n of st.nodes) if (n.id !== id) act("heal_both", id, n.id);
    } else act("isolate", id);
  });
}

/** The client form's request, sent to node `id`. */
function sendHere(id) {
  ui.opNode.value = id;
  ui.form.requestSubmit();
}

/** Opens the drawer on a node, a message or a link (a message pauses the run: it would land). */
function inspect(sel) {
  if (sel.kind === "msg") setPlaying(false);
  drawer.show(sel);
  ring.selected = { msg: sel.kind === "msg" ? sel.id : null, node: sel.kind === "node" ? sel.id : null };
  hideMenu();
  draw(true);
}

function hideMenu() { ui.menu.hidden = true; }

/** The context menu of a node (its drawer's actions) or a link. */
function showMenu(what, ev) {
  const items = [];
  if (what.node) {
    const id = what.node;
    const n = safely(() => runner.state().nodes.find((x) => x.id === id));
    if (!n) return;
    items.push([`Inspect ${id}`, () => inspect({ kind: "node", id })],
      [n.alive ? "Kill" : "Restart", () => act(n.alive ? "kill" : "restart", id)],
      ["Isolate / heal its links", () => isolateToggle(id)],
      ["Time out now", () => timeoutNow(id)],
      ["Send request here", () => sendHere(id)]);
  } else {
    const { a, b } = what;
    items.push([`Inspect ${a} ↔ ${b}`, () => inspect({ kind: "link", a, b })],
      [`Cut / heal ${a} ⇸ ${b}`, () => onLink(a, b, a)], [`Cut / heal ${b} ⇸ ${a}`, () => onLink(a, b, b)],
      ["Cut / heal both ways", () => onLink(a, b, null)]);
  }
  ui.menu.replaceChildren(...items.map(([label, f]) => {
    const btn = document.createElement("button");
    btn.textContent = label;
    btn.onclick = () => { hideMenu(); f(); };
    return btn;
  }));
  ui.menu.hidden = false;
  const w = ui.menu.offsetWidth, h = ui.menu.offsetHeight;
  ui.menu.style.left = `${Math.min(ev.clientX, innerWidth - w - 4)}px`;
  ui.menu.style.top = `${Math.min(ev.clientY, innerHeight - h - 4)}px`;
}

/** Follows op `id` (or stops following): its log entry, messages and reply are highlighted. */
function follow(id) {
  followOp = followOp === id ? null : id;
  lastPanels.key = "";
  draw(true);
}

function leader() {
  return runner.state().nodes.find((n) => n.alive && n.role === "leader") ?? null;
}

/** Lays the ring, the Members rows and the console's node choice out for these node ids. */
function relayout(ids) {
  ring.layout(ids);
  members.layout(ids);
  const keep = ui.opNode.value;
  ui.opNode.replaceChildren(new Option("→ leader", ""), ...ids.map((id) => new Option(`→ ${id}`, id)));
  ui.opNode.value = ids.includes(keep) ? keep : "";
}

/** What a click on a node does in each "Click a node to" mode: the line its tooltip ends with. */
const CLICK_HINTS = {
  inspect: (n) => `click to inspect ${n.id} (right-click: actions)`,
  kill: (n) => `click to ${n.alive ? "kill" : "restart"}`,
  transfer: (n) => `click to hand ${n.id} the leadership`,
  add_learner: (n) => `click to add ${n.id} as a learner`,
  promote: (n) => `click to promote ${n.id}`,
  remove: (n) => `click to remove ${n.id}`,
  replace: (n) => `click to replace ${n.id} by a new node`,
};

function onNode(id) {
  const mode = ui.clickMode.value;
  if (mode === "inspect") {
    inspect({ kind: "node", id });
  } else if (mode === "kill") {
    safely(() => {
      const n = runner.state().nodes.find((x) => x.id === id);
      act(n.alive ? "kill" : "restart", id);
    });
  } else {
    changeNode(mode, id);
  }
}

/** A fresh node joins (no configuration of its own yet); returns its id. */
function addNode() {
  const id = act("add_node");
  if (id) toast(`${id} started with empty stores. Add it as a learner, or replace a voter by it.`);
  return id;
}

/**
 * Asks the leader for a membership change or a transfer involving node `id`: transfer,
 * add_learner, promote, remove, or replace (by a joining node, or a fresh one). A refusal
 * shows as a toast.
 */
function changeNode(what, id) {
  let r;
  if (what === "transfer") {
    r = act("transfer_leader", id);
    if (r) toast(`${r} hands its leadership to ${id}: it sends TimeoutNow once ${id} has its whole log.`);
  } else if (what === "replace") {
    const spare = safely(() => runner.state().nodes.find((n) => n.alive && n.member === "joining" && n.id !== id));
    const fresh = spare?.id ?? act("add_node");
    if (!fresh) return;
    r = act("replace", id, fresh);
    if (r != null) toast(`Replacing ${id} by ${fresh} through a joint configuration (entry ${r}): watch the old and new voter sets.`);
  } else {
    r = act(what, id);
    const done = { add_learner: `${id} becomes a learner`, promote: `${id} becomes a voter`, remove: `${id} leaves` };
    if (r != null) toast(`${done[what] ?? what} once entry ${r} commits.`);
  }
}

function onLink(a, b, oneWay) {
  safely(() => {
    const links = runner.state().links;
    const cut = (f, t) => links.find((l) => l.from === f && l.to === t)?.cut;
    if (oneWay) {
      const other = oneWay === a ? b : a;
      act(cut(oneWay, other) ? "heal" : "cut", oneWay, other);
    } else {
      act(cut(a, b) || cut(b, a) ? "heal_both" : "cut_both", a, b);
    }
  });
}

function wire() {
  ui.play.onclick = () => setPlaying(!playing);
  ui.step.onclick = () => { setPlaying(false); safely(() => runner.step()); updateHash(); draw(true); };
  ui.stepBack.onclick = () => stepBack();
  // Dragging asks for a time; the frame loop goes there (only the latest of a drag's many
  // positions is replayed).
  ui.scrub.oninput = () => { setPlaying(false); scrubTo = Number(ui.scrub.value); };
  ui.scrub.onchange = () => {
    if (scrubTo != null) { scrubToTime(scrubTo); scrubTo = null; }
    ui.scrub.blur();
    updateHash();
    draw(true);
  };
  ui.speed.oninput = setSpeedFromSlider;
  ui.speed.onchange = () => ui.speed.blur();
  ui.reset.onclick = () => startRun(currentSettings());
  // After a field is used, focus leaves it, so the keys (space, s, ...) work at once.
  ui.nodes.onchange = () => { ui.nodes.blur(); startRun(currentSettings()); };
  ui.seed.onchange = () => { ui.seed.blur(); startRun(currentSettings()); };
  ui.scenario.onchange = () => {
    const name = ui.scenario.value;
    ui.scenario.value = "";
    ui.scenario.blur();
    if (!name) return;
    const before = runner.live ? runner.runSpec() : null;
    const msg = safely(() => SCENARIOS[name](runner, ui.seed.value.trim() || "1"));
    if (msg === undefined && before && !runner.crashed) safely(() => runner.reset(before));
    safely(() => relayout(runner.guard((pg) => pg.node_ids())));
    ui.nodes.value = String(runner.spec.nodes);
    ui.seed.value = runner.spec.seed;
    setPlaying(false);
    updateHash();
    draw(true);
    if (msg) toast(`${msg}  Press space to play.`, "info", 12000);
  };
  ui.share.onclick = async () => {
    if (!runner?.live) {
      toast("There is no live run to share: press Reset to start one.", "error");
      return;
    }
    updateHash();
    try {
      await navigator.clipboard.writeText(location.href);
      toast("Link copied: it replays this run up to this moment.");
    } catch {
      toast("The address bar holds the link to this run.");
    }
  };
  ui.helpBtn.onclick = () => ui.help.showModal();
  for (const box of document.querySelectorAll("#trace-filter input")) {
    box.checked = traceShow[box.dataset.kind];
    box.onchange = () => {
      traceShow[box.dataset.kind] = box.checked;
      box.blur();
      lastPanels.key = "";
      draw(true);
    };
  }
  ui.addNode.onclick = () => addNode();
  ui.clickMode.onchange = () => {
    const mode = ui.clickMode.value;
    ring.clickHint = CLICK_HINTS[mode];
    ring.svg.dataset.clickMode = mode;
    ui.clickMode.blur();
    dirty = true;
  };
  ui.ops.addEventListener("click", (ev) => {
    const li = ev.target.closest("li[data-op]");
    if (li) follow(Number(li.dataset.op));
  });
  ui.loss.oninput = () => { ui.lossLabel.textContent = `${ui.loss.value}%`; };
  ui.loss.onchange = () => { ui.loss.blur(); act("set_loss", Number(ui.loss.value) / 100); };
  const dup = $("#net-dup"), dupLabel = $("#net-dup-label");
  dup.oninput = () => { dupLabel.textContent = `${dup.value}%`; };
  dup.onchange = () => { dup.blur(); act("set_duplicate", Number(dup.value) / 100); };
  const setLatency = () => {
    const lo = Number(ui.latMin.value), hi = Number(ui.latMax.value);
    act("set_latency", lo, Math.max(lo, hi));
  };
  $("#partition-form").onsubmit = (ev) => {
    ev.preventDefault();
    const groups = $("#partition").value.trim();
    if (!groups) { toast("Name the groups, e.g. n1,n2 | n3,n4,n5.", "error"); return; }
    act("partition", groups);
    $("#partition").blur();
  };
  $("#heal-all").onclick = () => act("heal_all");
  ui.latMin.onchange = setLatency;
  ui.latMax.onchange = setLatency;
  document.addEventListener("pointerdown", (ev) => { if (!ui.menu.hidden && !ui.menu.contains(ev.target)) hideMenu(); });
  ui.op.onchange = () => {
    const op = ui.op.value;
    ui.value.hidden = op === "get" || op === "delete";
    ui.expected.hidden = op !== "cas";
    ui.mode.hidden = op !== "get";
  };
  ui.form.onsubmit = (ev) => {
    ev.preventDefault();
    const op = ui.op.value, key = ui.key.value;
    if (!key) { toast("A key is required.", "error"); return; }
    const to = ui.opNode.value;
    if (op === "put") act("put", key, ui.value.value, to);
    else if (op === "get") act("get", key, ui.mode.value, to);
    else if (op === "delete") act("delete", key, to);
    else act("cas", key, ui.expected.value, ui.value.value, to);
  };
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") { hideMenu(); if (drawer.open) drawer.close(); }
    if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    // The simulator's keys do nothing to the real cluster.
    if (live?.active && ev.key !== "?") return;
    if (ui.help.open && ev.key !== "?") return;
    switch (ev.key) {
      case " ": ev.preventDefault(); setPlaying(!playing); break;
      case "s": case "ArrowRight": ui.step.click(); break;
      case "S": case "ArrowLeft": ev.preventDefault(); stepBack(); break;
      case "r": startRun(currentSettings()); break;
      case "k": {
        const l = safely(leader);
        if (l) act("kill", l.id); else toast("No leader to kill right now.");
        break;
      }
      case "h": act("heal_all"); break;
      case "?": if (ui.help.open) ui.help.close(); else ui.help.showModal(); break;
      default: return;
    }
  });
  window.addEventListener("hashchange", () => {
    const spec = safely(() => decodeRun(location.hash));
    if (spec && (!runner.live || encodeRun(spec) !== encodeRun(runner.runSpec()))) startRun(spec, { play: false });
  });
}

function drawLegend() {
  const roles = Object.entries(ROLE_COLORS).map(([r, c]) =>
    `<span><i class="dot role r-${r}" style="background:${c}"></i><b class="letter">${ROLE_LETTERS[r]}</b>${ROLE_NAMES[r]}</span>`).join("");
  const kinds = Object.values(KIND_FAMILIES).map((k) =>
    `<span><i class="dot" style="background:${k.color}"></i>${k.name}</span>`).join("");
  ui.legend.innerHTML = `<div>${roles}</div><div>${kinds}` +
    `<span><i class="dot square"></i>pre-vote (square)</span><span><i class="dot hollow"></i>reply (✓/✗)</span>` +
    `<span><i class="vdot-legend">✓</i>vote received</span>` +
    `<span><i class="dot drop"></i>will be dropped</span><span><i class="xmark">✕</i>dropped</span>` +
    `<span><i class="bar cutbar"></i>cut link</span><span><i class="bar arcbar"></i>election timer</span></div>` +
    `<div><span><i class="dot learner"></i>learner (L)</span><span><i class="dot joining"></i>joining (+)</span>` +
    `<span><i class="dot removed"></i>removed (−)</span><span><i class="pill old">old</i><i class="pill new">new</i>joint halves</span>` +
    `<span><i class="dot target"></i>transfer target</span></div>`;
}

// ---- drawing ----

function draw(force = false) {
  if (!runner?.live) return;
  safely(() => {
    const st = runner.state();
    const ids = st.nodes.map((n) => n.id);
    if (!ring.hasLayout(ids)) { relayout(ids); force = true; }
    const t = runner.now() + runner.frac;
    drawn = { version: runner.version, t };
    dirty = false;
    draws++;
    const op = followOp != null ? st.ops.find((o) => o.id === followOp) : null;
    ring.followIndex = op ? followIndex(st, op) : null;
    ring.draw(st, t);
    if (drawer.open) drawer.draw(st, t);
    setText(ui.lastEvent, st.last_event ? `last event: ${st.last_event}` : "");
    drawTimeline();
    const now = performance.now();
    const key = `${st.events}/${st.ops.length}/${st.nodes.map((n) => n.alive).join()}`;
    const panelsDue = force || key !== lastPanels.key;
    // Panels redraw at most every 120 ms; one held back keeps the page dirty, so it is drawn
    // on a later frame even when the run stays paused.
    if (panelsDue && !force && now - lastPanels.at <= 120) dirty = true;
    else if (panelsDue) {
      lastPanels = { at: now, key };
      drawLogs(ui.logs, st, { follow: ring.followIndex });
      drawKv(ui.kv, st);
      drawOps(ui.ops, st, followOp);
      drawTrace(ui.trace, st, runner.generation, traceShow);
      drawVerdict(ui.verdict, st);
      members.draw(st, t);
      ui.jointBadge.hidden = !st.membership.joint;
      const l = st.nodes.find((n) => n.alive && n.role === "leader");
      const alive = st.nodes.filter((n) => n.alive).length;
      const seed = runner.spec.seed === st.seed ? st.seed : `“${runner.spec.seed}” (= ${st.seed})`;
      setHtml(ui.statusline, `<span>seed <b>${esc(seed)}</b></span><span>leader <b>${l ? `${l.id} (term ${l.term})` : "none"}</b></span>` +
        `<span>alive <b>${alive}/${st.nodes.length}</b></span><span>voters <b>${st.membership.voters.length}${st.membership.joint ? ` (joint with ${st.membership.outgoing.length})` : ""}</b></span>` +
        `${st.membership.learners.length ? `<span>learners <b>${st.membership.learners.length}</b></span>` : ""}<span>cut links <b>${st.links.filter((x) => x.cut).length}</b></span>`);
      // The network fields follow the run only when its settings changed, so a field being
      // edited keeps what is typed.
      filters.draw(st);
      const net = `${st.net.loss}/${st.net.latency_min}/${st.net.latency_max}`;
      if (net !== ui.loss.dataset.shown) {
        ui.loss.dataset.shown = net;
        ui.loss.value = String(Math.round(st.net.loss * 100));
        ui.lossLabel.textContent = `${ui.loss.value}%`;
        ui.latMin.value = String(st.net.latency_min);
        ui.latMax.value = String(st.net.latency_max);
      }
      const dup = document.querySelector("#net-dup");
      if (String(st.net.duplicate) !== dup.dataset.shown) {
        dup.dataset.shown = String(st.net.duplicate);
        dup.value = String(Math.round(st.net.duplicate * 100));
        document.querySelector("#net-dup-label").textContent = `${dup.value}%`;
      }
    }
  });
}

/**
 * The log index of the op followed: its own once answered (a write's commit index); while it
 * is pending, the last entry of the leader's log that carries the same command, if any.
 */
function followIndex(st, op) {
  if (op.op === "get") return null;
  if (op.index != null && op.status !== "pending") return op.index;
  const l = st.nodes.find((n) => n.alive && n.role === "leader");
  const want = op.op === "put" ? `put ${op.key}=${op.value}` : op.op === "delete" ? `delete ${op.key}` : null;
  if (!l || !want) return null;
  const e = [...l.log].reverse().find((x) => x.summary === want);
  return e ? e.index : null;
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function frame(ts) {
  const dt = lastFrame == null ? 0 : Math.min(100, ts - lastFrame);
  lastFrame = ts;
  if (scrubTo != null && runner?.live) {
    scrubToTime(scrubTo);
    scrubTo = null;
  }
  if (playing && runner?.live) safely(() => runner.advanceBy(dt * speed));
  // Paused and unchanged: nothing to draw.
  if (runner?.live && (dirty || runner.version !== drawn.version || runner.now() + runner.frac !== drawn.t)) draw();
  requestAnimationFrame(frame);
}

async function main() {
  try {
    await init();
  } catch (e) {
    showCrash(`could not load the wasm package (www/pkg): ${e?.message ?? e}`);
    return;
  }
  runner = new Runner(wasm);
  runner.onBranch = (b) => { branch = b; dirty = true; };
  ring = new Ring($("#ring"), { onNode, onLink, onMessage: (id) => inspect({ kind: "msg", id }), onMenu: showMenu });
  drawer = new Drawer(ui.drawer, {
    act, sendHere, timeoutNow, isolateToggle,
    onClose: () => { ring.selected = { msg: null, node: null }; dirty = true; },
  });
  filters = new Filters($("#filter-form"), $("#filters"), act);
  members = new Members(ui.members, ui.configLine, {
    onChange: changeNode,
    onDrift: (id, pct) => {
      if (!Number.isFinite(pct)) { toast("The drift is a number of %, e.g. 5 or -2.5.", "error"); return; }
      act("set_clock_drift", id, Math.round(pct * 1e4));
    },
    onJump: (id) => act("jump_clock", id, Math.round(Number(ui.jumpMs.value))),
  });
  ring.clickHint = CLICK_HINTS[ui.clickMode.value];
  ring.svg.dataset.clickMode = ui.clickMode.value;
  // The header wraps on narrow screens: the layout below (and the drawer) follows its height.
  const bar = document.querySelector("header.bar");
  const barHeight = () => document.documentElement.style.setProperty("--bar-h", `${bar.offsetHeight}px`);
  new ResizeObserver(barHeight).observe(bar);
  barHeight();
  drawLegend();
  setSpeedFromSlider();
  wire();
  let spec = null;
  try {
    spec = decodeRun(location.hash);
  } catch (e) {
    toast(`Ignoring the link: ${e.message}`, "error");
  }
  startRun(spec ?? currentSettings(), { play: !spec || spec.t == null });
  // Paused while away, so the simulator comes back where it was.
  live = startLive({
    toggle: $("#live-toggle"), view: $("#live"), toast,
    onEnter: () => { setPlaying(false); if (drawer.open) drawer.close(); },
    onLeave: () => { dirty = true; },
  });
  document.body.dataset.ready = "1";
  requestAnimationFrame(frame);
}

main();
