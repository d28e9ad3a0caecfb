// The page: loads the wasm package, wires the controls, runs the animation loop.

import init, * as wasm from "./pkg/raftkv_web.js";
import { Runner, SimCrash } from "./runner.js";
import { Ring } from "./ring.js";
import { Members } from "./members.js";
import { drawKv, drawLogs, drawOps, drawTrace } from "./panels.js";
import { encodeRun, decodeRun } from "./share.js";
import { SCENARIOS } from "./scenarios.js";
import { ROLE_COLORS, ROLE_NAMES, KIND_FAMILIES } from "./colors.js";

const $ = (sel) => document.querySelector(sel);

const ui = {
  play: $("#play"), step: $("#step"), speed: $("#speed"), speedLabel: $("#speed-label"),
  nodes: $("#nodes"), seed: $("#seed"), reset: $("#reset"), scenario: $("#scenario"),
  share: $("#share"), helpBtn: $("#help-btn"), help: $("#help"), banner: $("#banner"), toast: $("#toast"),
  logs: $("#logs"), kv: $("#kv"), ops: $("#ops"), trace: $("#trace"), verdict: $("#verdict"),
  statusline: $("#statusline"), legend: $("#legend"),
  form: $("#client-form"), op: $("#op"), key: $("#op-key"), value: $("#op-value"),
  expected: $("#op-expected"), mode: $("#op-mode"), opNode: $("#op-node"),
  clickMode: $("#click-mode"), addNode: $("#add-node"), jointBadge: $("#joint-badge"),
  members: $("#members"), configLine: $("#config-line"), jumpMs: $("#jump-ms"),
};

let runner = null;
let ring = null;
let members = null;
let playing = false;
let speed = 1 / 20;
let lastFrame = null;
let lastPanels = { at: 0, key: "" };

/** For tests and the curious: the live objects. */
window.raftkv = { get runner() { return runner; }, get playing() { return playing; }, setPlaying, reset: (s) => startRun(s) };

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
  if (!playing) updateHash();
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
  if (!runner?.pg) return;
  safely(() => history.replaceState(null, "", `#${encodeRun(runner.runSpec())}`));
}

function startRun(spec, { play = spec.t == null } = {}) {
  safely(() => {
    ui.banner.hidden = true;
    ui.nodes.value = String(spec.nodes);
    ui.seed.value = spec.seed;
    runner.reset(spec);
    relayout(runner.guard((pg) => pg.node_ids()));
    lastPanels.key = "";
    updateHash();
    draw(true);
  });
  setPlaying(play);
}

function act(name, ...args) {
  const r = safely(() => runner.act(name, ...args));
  updateHash();
  draw(true);
  return r;
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
  kill: (n) => `click to ${n.alive ? "kill" : "restart"}`,
  transfer: (n) => `click to hand ${n.id} the leadership`,
  add_learner: (n) => `click to add ${n.id} as a learner`,
  promote: (n) => `click to promote ${n.id}`,
  remove: (n) => `click to remove ${n.id}`,
  replace: (n) => `click to replace ${n.id} by a new node`,
};

function onNode(id) {
  const mode = ui.clickMode.value;
  if (mode === "kill") {
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
  ui.speed.oninput = setSpeedFromSlider;
  ui.reset.onclick = () => startRun(currentSettings());
  ui.nodes.onchange = () => startRun(currentSettings());
  ui.seed.onchange = () => startRun(currentSettings());
  ui.scenario.onchange = () => {
    const name = ui.scenario.value;
    ui.scenario.value = "";
    if (!name) return;
    const msg = safely(() => SCENARIOS[name](runner, ui.seed.value.trim() || "1"));
    safely(() => relayout(runner.guard((pg) => pg.node_ids())));
    ui.nodes.value = String(runner.spec.nodes);
    ui.seed.value = runner.spec.seed;
    setPlaying(false);
    updateHash();
    draw(true);
    if (msg) toast(`${msg}  Press space to play.`, "info", 12000);
  };
  ui.share.onclick = async () => {
    updateHash();
    try {
      await navigator.clipboard.writeText(location.href);
      toast("Link copied: it replays this run up to this moment.");
    } catch {
      toast("The address bar holds the link to this run.");
    }
  };
  ui.helpBtn.onclick = () => ui.help.showModal();
  ui.addNode.onclick = () => addNode();
  ui.clickMode.onchange = () => {
    const mode = ui.clickMode.value;
    ring.clickHint = CLICK_HINTS[mode];
    ring.svg.dataset.clickMode = mode;
  };
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
    if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ui.help.open && ev.key !== "?") return;
    switch (ev.key) {
      case " ": ev.preventDefault(); setPlaying(!playing); break;
      case "s": ui.step.click(); break;
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
    if (spec && encodeRun(spec) !== encodeRun(runner.runSpec())) startRun(spec, { play: false });
  });
}

function drawLegend() {
  const roles = Object.entries(ROLE_COLORS).map(([r, c]) =>
    `<span><i class="dot" style="background:${c}"></i>${ROLE_NAMES[r]}</span>`).join("");
  const kinds = Object.values(KIND_FAMILIES).map((k) =>
    `<span><i class="dot" style="background:${k.color}"></i>${k.name}</span>`).join("");
  ui.legend.innerHTML = `<div>${roles}</div><div>${kinds}` +
    `<span><i class="dot hollow"></i>reply</span><span><i class="dot drop"></i>will be dropped</span><span><i class="xmark">✕</i>dropped</span>` +
    `<span><i class="bar cutbar"></i>cut link</span><span><i class="bar arcbar"></i>election timer</span></div>` +
    `<div><span><i class="dot learner"></i>learner (L)</span><span><i class="dot joining"></i>joining (+)</span>` +
    `<span><i class="dot removed"></i>removed (−)</span><span><i class="pill old">old</i><i class="pill new">new</i>joint halves</span>` +
    `<span><i class="dot target"></i>transfer target</span></div>`;
}

// ---- drawing ----

function draw(force = false) {
  if (!runner?.pg || runner.crashed) return;
  safely(() => {
    const st = runner.state();
    const ids = st.nodes.map((n) => n.id);
    if (!ring.hasLayout(ids)) { relayout(ids); force = true; }
    const t = runner.now() + runner.frac;
    ring.draw(st, t);
    const now = performance.now();
    const key = `${st.events}/${st.ops.length}/${st.nodes.map((n) => n.alive).join()}`;
    if (force || (key !== lastPanels.key && now - lastPanels.at > 120)) {
      lastPanels = { at: now, key };
      drawLogs(ui.logs, st);
      drawKv(ui.kv, st);
      drawOps(ui.ops, st);
      drawTrace(ui.trace, ui.verdict, st);
      members.draw(st, t);
      ui.jointBadge.hidden = !st.membership.joint;
      const l = st.nodes.find((n) => n.alive && n.role === "leader");
      const alive = st.nodes.filter((n) => n.alive).length;
      ui.statusline.innerHTML = `<span>seed <b>${st.seed}</b></span><span>leader <b>${l ? `${l.id} (term ${l.term})` : "none"}</b></span>` +
        `<span>alive <b>${alive}/${st.nodes.length}</b></span><span>voters <b>${st.membership.voters.length}${st.membership.joint ? ` (joint with ${st.membership.outgoing.length})` : ""}</b></span>` +
        `${st.membership.learners.length ? `<span>learners <b>${st.membership.learners.length}</b></span>` : ""}<span>cut links <b>${st.links.filter((x) => x.cut).length}</b></span>` +
        `<span>loss <b>${Math.round(st.net.loss * 100)}%</b></span><span>latency <b>${st.net.latency_min}–${st.net.latency_max} ms</b></span>`;
    }
  });
}

function frame(ts) {
  const dt = lastFrame == null ? 0 : Math.min(100, ts - lastFrame);
  lastFrame = ts;
  if (playing && runner?.pg && !runner.crashed) safely(() => runner.advanceBy(dt * speed));
  draw();
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
  ring = new Ring($("#ring"), { onNode, onLink });
  members = new Members(ui.members, ui.configLine, {
    onChange: changeNode,
    onDrift: (id, pct) => {
      if (!Number.isFinite(pct)) { toast("The drift is a number of %, e.g. 5 or -2.5.", "error"); return; }
      act("set_clock_drift", id, Math.round(pct * 1e4));
    },
    onJump: (id) => act("jump_clock", id, Math.round(Number(ui.jumpMs.value))),
  });
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
  document.body.dataset.ready = "1";
  requestAnimationFrame(frame);
}

main();
