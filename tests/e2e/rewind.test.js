// Rewind (issue 17, item 3): the timeline under the ring goes back by building the run again
// from its seed and actions, and forward by replaying them; a step back is one event; an action
// taken while rewound starts a branch, and Share captures the branch exactly.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as h from "./harness.js";

const env = h.environment();
before(() => env.start());
after(() => env.stop());

/** Runs the paused page's simulation `ms` further (the same call the frame loop makes). */
const advance = (p, ms) => p.evaluate((x) => {
  const r = window.raftkv.runner;
  r.advanceTo(r.now() + x);
}, ms);

/** Drags the timeline to `t` (clamped to its range) and lets go, as a person would. */
const scrub = (p, t) => p.evaluate((x) => {
  const s = document.querySelector("#scrub");
  s.value = String(x);
  s.dispatchEvent(new Event("input", { bubbles: true }));
  s.dispatchEvent(new Event("change", { bubbles: true }));
}, t);

/** Drags the timeline to its end. */
const scrubToEnd = (p) => p.evaluate(() => {
  const s = document.querySelector("#scrub");
  s.value = s.max;
  s.dispatchEvent(new Event("input", { bubbles: true }));
  s.dispatchEvent(new Event("change", { bubbles: true }));
});

const furthest = (p) => p.evaluate(() => ({ ...window.raftkv.runner.furthest }));
const note = (p) => p.evaluate(() => {
  const n = document.querySelector("#rewind-note");
  return { shown: !n.hidden, kind: n.dataset.kind, text: n.textContent };
});
const leaderOf = (st) => h.leaders(st)[0];

/** Sends a put from the client form (to the leader). */
async function put(p, key, value) {
  await p.fill("#op-key", key);
  await p.fill("#op-value", value);
  await p.click("#client-form button[type=submit]");
}

/**
 * A paused run with actions at several times (a put, a kill of the leader, another put), that
 * ends on single steps, so its last point is one a run to a time does not reach. Returns the
 * state at 1000 ms (before the kill) and at the end.
 */
async function recordedRun(p) {
  await advance(p, 900);
  await put(p, "x", "1");
  await advance(p, 100);
  const at1000 = await h.state(p);
  assert.equal(at1000.now, 1000);
  await advance(p, 1500);
  const l = leaderOf(await h.state(p));
  assert.ok(l, "a leader by 2.5 s");
  await p.keyboard.press("k"); // kill the leader
  await advance(p, 1000);
  await put(p, "y", "2");
  await advance(p, 1500);
  for (let i = 0; i < 5; i++) await p.click("#step");
  const end = await h.state(p);
  assert.equal(end.nodes.find((n) => n.id === l).alive, false);
  return { at1000, end, killed: l };
}

test("scrubbing back then forward gives exactly the state of never having rewound", async () => {
  const p = await env.page("#n=5&seed=11&t=0");
  const { at1000, end, killed } = await recordedRun(p);
  assert.deepEqual(await furthest(p), { t: end.now, ev: end.events });
  assert.equal(await p.getAttribute("#scrub", "max"), String(end.now));
  assert.equal(await p.locator("#scrub-marks option").count(), 3, "a tick per recorded action");
  assert.equal((await note(p)).shown, false, "no notice before rewinding");

  // Back to 1000 ms: the same state the run had then, the kill and the second put not yet made.
  await scrub(p, 1000);
  const back = await h.state(p);
  assert.deepEqual(back, at1000, "rewound to 1000 ms = the run at 1000 ms");
  assert.ok(back.nodes.find((n) => n.id === killed).alive);
  assert.equal(await p.evaluate(() => window.raftkv.runner.pending.length), 2, "the kill and a put ahead");
  const n = await note(p);
  assert.equal(n.kind, "rewound");
  assert.match(n.text, /^Rewound to 1000 ms of \d+ ms .*2 actions ahead.*starts a branch/);
  assert.equal(await p.inputValue("#scrub"), "1000");
  assert.match(await p.textContent("#scrub-label"), new RegExp(`^1000 / ${end.now} ms$`));

  // Forward in two drags (the kill replays on the way), the last one to the end.
  await scrub(p, 3000);
  const mid = await h.state(p);
  assert.equal(mid.now, 3000);
  assert.equal(mid.nodes.find((n) => n.id === killed).alive, false, "the kill replayed");
  await scrubToEnd(p);
  assert.deepEqual(await h.state(p), end, "forward to the end = never rewound");
  assert.equal((await note(p)).shown, false);
  assert.deepEqual(await furthest(p), { t: end.now, ev: end.events }, "the furthest point kept");

  // A drag in progress (input events only, no change yet): the frame loop goes there.
  await p.evaluate(() => {
    const s = document.querySelector("#scrub");
    for (const x of [2600, 2200, 1500]) {
      s.value = String(x);
      s.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });
  await h.waitFor(p, (s) => s.now === 1500, null, "the run at the dragged-to 1500 ms");
  assert.equal((await note(p)).kind, "rewound");

  // Back near the start and forward again: the same end state.
  await scrub(p, 200);
  assert.equal((await h.state(p)).now, 200);
  await scrubToEnd(p);
  assert.deepEqual(await h.state(p), end);
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("a step back then a step gives the same state, across an action", async () => {
  const p = await env.page("#n=5&seed=3&t=0");
  await advance(p, 1200);
  const seen = [await h.state(p)];
  const stepForward = async () => { await p.click("#step"); seen.push(await h.state(p)); };
  await stepForward();
  await stepForward();
  await put(p, "a", "1"); // an action between two events
  seen.push(await h.state(p));
  assert.equal(seen.at(-1).ops.length, 1);
  await stepForward();
  await stepForward();
  const last = seen.length - 1;

  // Back one event at a time, by the key, shift+S and the button: each lands on the state the
  // run had there (the put undone only when going back past the event before it).
  const backs = [() => p.keyboard.press("ArrowLeft"), () => p.keyboard.press("Shift+S"), () => p.click("#step-back")];
  // From the end: event 4 undone, then 3 (the put stays: it came before event 3), then 2 (the
  // put goes with it: it came after event 2).
  const want = [last - 1, last - 2, last - 4];
  for (let k = 0; k < want.length; k++) {
    await backs[k]();
    const st = await h.state(p);
    assert.deepEqual(st, seen[want[k]], `step back ${k + 1}`);
    assert.equal(await p.textContent("#last-event"), st.last_event ? `last event: ${st.last_event}` : "");
  }
  assert.equal((await note(p)).kind, "rewound");
  // Forward again one step at a time: the event, the put (a recorded action is a step), the rest.
  for (const k of [last - 3, last - 2, last - 1, last]) {
    await p.click("#step");
    assert.deepEqual(await h.state(p), seen[k], `step forward to state ${k}`);
  }
  assert.equal((await note(p)).shown, false, "back at the furthest point");
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("an action while rewound starts a branch; its Share link replays the branch exactly; the old future is gone", async () => {
  const p = await env.page("#n=5&seed=11&t=0");
  const { killed } = await recordedRun(p);
  await scrub(p, 1800);
  assert.equal((await note(p)).kind, "rewound");

  await put(p, "z", "3"); // the branch
  const n = await note(p);
  assert.equal(n.kind, "branch");
  assert.match(n.text, /^Branched at 1800 ms: the recorded future up to \d+ ms and its 2 actions is dropped/);
  const spec = await p.evaluate(() => window.raftkv.runner.runSpec());
  assert.deepEqual(spec.actions.map((a) => [a.t, a.name, a.args[0]]), [[900, "put", "x"], [1800, "put", "z"]]);
  assert.deepEqual(await furthest(p), { t: 1800, ev: spec.ev });
  assert.equal(await p.getAttribute("#scrub", "max"), "1800", "the timeline ends at the branch");

  // On in the branch, ending on single steps; then Share.
  await advance(p, 900);
  for (let i = 0; i < 3; i++) await p.click("#step");
  await p.click("#share");
  const link = p.url();
  const here = await h.state(p);
  assert.match(link, new RegExp(`&t=${here.now}@${here.events}&`), "the link holds the exact point");
  assert.ok(!/kill/.test(link) && !/:y:/.test(link), `the old future is not in the link: ${link}`);

  const other = await env.page(link.slice(link.indexOf("#")));
  const there = await h.state(other);
  const per = (st) => st.nodes.map((x) => ({ id: x.id, term: x.term, commit: x.commit_index, log: x.log, role: x.role }));
  assert.deepEqual(per(there), per(here), "the same terms, logs, commit indices and roles");
  assert.deepEqual(there.trace, here.trace, "the same trace");
  assert.deepEqual(there, here, "the whole state");
  assert.ok(there.nodes.find((x) => x.id === killed).alive, "the branch never killed the leader");
  await other.close();

  // The old future is gone from the original page too: going on, the kill and y never come.
  await advance(p, 3000);
  const later = await h.state(p);
  assert.ok(later.nodes.every((x) => x.alive), "nobody killed");
  assert.ok(!later.ops.some((o) => o.key === "y"), "no put of y");
  assert.ok(later.nodes.some((x) => x.kv.z === "3"), "the branch's put landed");
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("an action while a link still replays drops the link's actions ahead, and says so", async () => {
  // A link without a time plays from zero, its actions replaying as the clock reaches them.
  const p = await env.page("#n=5&seed=11&a=5000@1:set_loss:0.5,6000@1:heal_all");
  await h.setPlaying(p, false);
  assert.equal(await p.evaluate(() => window.raftkv.runner.pending.length), 2);
  await p.keyboard.press("h"); // heal all: an action of its own, now
  const n = await note(p);
  assert.equal(n.kind, "branch");
  assert.match(n.text, /^Branched at \d+ ms: the link's 2 recorded actions still ahead are dropped\./);
  assert.equal(await p.evaluate(() => window.raftkv.runner.pending.length), 0);
  await advance(p, 7000);
  assert.equal((await h.state(p)).net.loss, 0, "the dropped set_loss never came");
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("links stop at their exact point; links without an event count still load", async () => {
  // A run stepped to where a message is due at the very millisecond the clock shows: a link
  // with the time alone would deliver it, only the event count says it is still in flight.
  const p = await env.page("#n=5&seed=5&t=0");
  await advance(p, 1500);
  let here = await h.state(p);
  for (let i = 0; i < 500 && !here.messages.some((m) => m.deliver_at === here.now && !m.dropped); i++) {
    await p.click("#step");
    here = await h.state(p);
  }
  assert.ok(here.messages.some((m) => m.deliver_at === here.now && !m.dropped), "a delivery due now, not yet run");
  await p.click("#share");
  assert.deepEqual(await h.state(p), here);
  const other = await env.page(p.url().slice(p.url().indexOf("#")));
  assert.deepEqual(await h.state(other), here);
  await other.close();
  await p.close();

  const old = await env.page("#n=5&seed=5&t=1500");
  assert.equal((await h.state(old)).now, 1500, "an old link runs to its time");
  await old.close();
  const bad = await env.page("#n=5&seed=5&t=12x");
  assert.match(await bad.textContent("#toast"), /Ignoring the link: bad time in link: 12x/);
  await bad.close();
  assert.deepEqual(env.errors, []);
});

test("rewinding 2 simulated minutes of 9 nodes is quick", async () => {
  const p = await env.page("#n=9&seed=2&t=0");
  const r = await p.evaluate(() => {
    const run = window.raftkv.runner;
    // Actions to replay on the way: a lossy network from the start, a write once led.
    run.act("set_loss", 0.02);
    run.advanceTo(5_000);
    run.act("put", "k", "v", "");
    run.advanceTo(120_000);
    const events = run.events();
    const t0 = performance.now();
    run.stepBack();
    const back = performance.now() - t0;
    const t1 = performance.now();
    run.rewindTo(60_000);
    const half = performance.now() - t1;
    return { events, back, half, now: run.now(), ev: run.events() };
  });
  console.log(`# 9 nodes, 120 s (${r.events} events): step back ${r.back.toFixed(0)} ms, rewind to 60 s ${r.half.toFixed(0)} ms`);
  assert.equal(r.now, 60_000);
  assert.ok(r.events > 10_000, `${r.events} events`);
  // A loose bound: it catches a rebuild gone quadratic, not a slow machine.
  assert.ok(r.back < 20_000, `step back took ${r.back} ms`);
  await p.close();
  assert.deepEqual(env.errors, []);
});
