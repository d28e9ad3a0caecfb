// The playground stays usable whatever it is given (issue 17, item 6): any text is a seed, a
// refused run leaves the old one going, Share refuses a dead run; a paused page does not
// redraw, Events appends; after a preset the keys work; roles read without colour; the verdict
// says which reads it left out, and the client picks the node it sends to.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as h from "./harness.js";

const env = h.environment();
before(() => env.start());
after(() => env.stop());

/** 64-bit FNV-1a of the UTF-8 text, blanks trimmed: the page's seed of a non-decimal text. */
function fnv1a64(text) {
  let x = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(text.trim())) {
    x ^= BigInt(b);
    x = (x * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return x.toString();
}

/** Waits `n` animation frames inside the page (a count of frames, not a time). */
const frames = (p, n) => p.evaluate((k) => new Promise((res) => {
  const f = () => (--k <= 0 ? res() : requestAnimationFrame(f));
  requestAnimationFrame(f);
}), n);

test("any text is a seed: the run starts, replays from its link, and the page keeps working", async () => {
  const p = await env.page("#n=3&seed=1");
  for (const seed of ["hello world", "-5", "0x10", "18446744073709551616"]) {
    await p.fill("#seed", seed);
    await p.press("#seed", "Enter");
    const st = await h.waitFor(p, (s, want) => s.seed === want, fnv1a64(seed), `the run of seed ${seed}`);
    assert.equal(await p.evaluate(() => window.raftkv.runner.live), true);
    assert.equal(await p.inputValue("#seed"), seed, "the field keeps the text");
    assert.notEqual(await p.evaluate(() => document.activeElement?.id), "seed", "focus left the field");
    // The page works: a node opens, the run is shareable, a step runs.
    await p.click(`#ring .node[data-id="n1"]`);
    assert.equal((await p.evaluate(() => window.raftkv.drawer))?.id, "n1");
    await h.setPlaying(p, false);
    await p.click("#share");
    const link = p.url();
    assert.ok(link.includes(`seed=${encodeURIComponent(seed)}`), link);
    const other = await env.page(link.slice(link.indexOf("#")));
    const here = await h.state(p), there = await h.state(other);
    assert.equal(there.seed, here.seed);
    assert.deepEqual(there.trace, here.trace, `seed ${seed} replays from its link`);
    await other.close();
    await p.click("#step");
    assert.ok((await h.state(p)).events > here.events, "a step runs");
    await p.keyboard.press("Escape");
  }
  assert.equal(await p.locator("#toast.error:visible").count(), 0, "no error toast");
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("a refused run leaves the old one going, and Share refuses a dead run", async () => {
  const p = await env.page("#n=5&seed=7");
  await h.waitFor(p, (s) => s.now > 100, null, "the run going");
  const before = await h.state(p);
  const ok = await p.evaluate(() => window.raftkv.reset({ nodes: 12, seed: "3", snap: 0, t: null, actions: [] }));
  assert.equal(ok, false, "12 nodes refused");
  await p.waitForSelector("#toast.error:visible");
  assert.match(await p.textContent("#toast"), /nodes must be 3..=9/);
  const after = await h.waitFor(p, (s, t) => s.now > t + 100, before.now, "the old run still going");
  assert.equal(after.seed, "7");
  assert.equal(after.nodes.length, 5);
  assert.equal(await p.inputValue("#seed"), "7");
  assert.equal(await p.inputValue("#nodes"), "5");
  // A crashed simulator: Share says so instead of copying a stale link.
  const hash = await p.evaluate(() => location.hash);
  await p.evaluate(() => { window.raftkv.runner.crashed = "simulated crash for the test"; });
  await p.click("#share");
  assert.match(await p.textContent("#toast"), /no live run to share/);
  assert.equal(await p.evaluate(() => location.hash), hash, "the link is not rewritten");
  await p.close();
  env.errors.length = 0; // the refused run's error is the point of this test
});

test("a paused, unchanged page does not redraw; Events appends instead of rebuilding", async () => {
  const p = await env.page("#n=5&seed=2");
  await h.setSpeed(p, 0);
  await h.setPlaying(p, true);
  await h.waitFor(p, (s) => s.trace.length > 10, null, "some events");
  await h.setPlaying(p, false);
  await h.drawn(p);
  const d0 = await p.evaluate(() => window.raftkv.draws);
  await frames(p, 30);
  assert.equal(await p.evaluate(() => window.raftkv.draws), d0, "no redraw in 30 paused frames");
  // A step changes the run: one redraw.
  await p.click("#step");
  await frames(p, 2);
  assert.ok(await p.evaluate(() => window.raftkv.draws) > d0);
  // The oldest line shown stays the same element while new lines arrive on top.
  await p.evaluate(() => { window.__mark = document.querySelector("#trace li:last-child"); window.__mark.dataset.mark = "1"; });
  const seq0 = Number(await p.getAttribute("#trace li:first-child", "data-seq"));
  await h.setPlaying(p, true);
  for (const v of ["1", "2"]) await p.evaluate((x) => window.raftkv.runner.act("put", "k", x, ""), v);
  await h.waitFor(p, (s, k) => s.trace.at(-1).seq > k + 3, seq0, "new lines");
  await h.setPlaying(p, false);
  await h.drawn(p);
  const kept = await p.evaluate(() => document.querySelector("#trace").contains(window.__mark) || document.querySelectorAll("#trace li").length >= 120);
  assert.ok(kept, "an old line was kept, not rebuilt");
  const seqs = await p.$$eval("#trace li", (ls) => ls.map((l) => Number(l.dataset.seq)));
  assert.ok(seqs[0] > seq0, "new lines on top");
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] < seqs[i - 1], "newest first");
  // Every line of the state's trace since the oldest shown is there once: on a line of its own,
  // or in a commit line that stands for several nodes' commits (data-seqs).
  // (data-from: the panel shows every line from there on; older ones went past its length.)
  const all = await p.$$eval("#trace li", (ls) => ls.flatMap((l) => (l.dataset.seqs ?? l.dataset.seq).split(",").map(Number)));
  const from = Number(await p.getAttribute("#trace", "data-from"));
  const st = await h.state(p);
  const lo = Math.max(from, st.trace[0].seq);
  const want = st.trace.map((l) => l.seq).filter((x) => x >= lo);
  assert.deepEqual(all.filter((x) => x >= lo).sort((a, b) => a - b), want, "none missing or doubled");
  assert.equal(new Set(all).size, all.length, "none doubled");
  assert.ok(all.includes(st.trace.at(-1).seq), "the newest line is shown");
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("after a preset the keys work at once: space plays", async () => {
  const p = await env.page("#n=5&seed=3");
  await h.pickScenario(p, "leader-crash");
  assert.notEqual(await p.evaluate(() => document.activeElement?.id), "scenario", "focus left the select");
  await p.keyboard.press(" ");
  assert.equal(await p.evaluate(() => window.raftkv.playing), true, "space played");
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("roles carry a letter and an outline besides their colour", async () => {
  const p = await env.page("#n=5&seed=7");
  await h.setSpeed(p, 0);
  await h.setPlaying(p, true);
  await h.waitFor(p, (s) => s.nodes.some((n) => n.role === "leader"), null, "a leader");
  await h.setPlaying(p, false);
  await frames(p, 2);
  const st = await h.state(p);
  const letters = { follower: "F", pre_candidate: "PC", candidate: "C", leader: "L" };
  for (const n of st.nodes) {
    const text = await p.textContent(`#ring .node[data-id="${n.id}"] .term`);
    assert.equal(text, `${letters[n.role]} · t${n.term}`, n.id);
    const ring2 = await p.getAttribute(`#ring .node[data-id="${n.id}"] .ring2`, "class");
    assert.equal(ring2.includes("on"), n.role === "leader", `${n.id}: the leader's double ring`);
  }
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("a stale read sent to a cut-off follower returns the old value; the verdict says it was not checked", async () => {
  const p = await env.page("#n=3&seed=4");
  await h.setSpeed(p, 0);
  await h.setPlaying(p, true);
  let st = await h.waitFor(p, (s) => s.nodes.some((n) => n.alive && n.role === "leader"), null, "a leader");
  const send = async (op, key, value, to, mode) => {
    await p.selectOption("#op", op);
    await p.fill("#op-key", key);
    if (value != null) await p.fill("#op-value", value);
    if (mode) await p.selectOption("#op-mode", mode);
    await p.selectOption("#op-node", to);
    await p.click("#client-form button[type=submit]");
  };
  await send("put", "x", "1", "");
  st = await h.waitFor(p, (s) => s.nodes.every((n) => n.kv.x === "1") && s.ops.every((o) => o.status !== "pending"), null, "x=1 everywhere");
  const f = st.nodes.find((n) => n.role !== "leader").id;
  await h.setPlaying(p, false);
  await p.click(`#ring .node[data-id="${f}"]`);
  await p.click(`#drawer button[data-do="isolate"]`);
  await p.keyboard.press("Escape");
  st = await h.state(p);
  assert.ok(st.links.filter((l) => l.from === f || l.to === f).every((l) => l.cut), `${f} isolated`);
  await h.setPlaying(p, true);
  await send("put", "x", "2", "");
  await h.waitFor(p, (s) => s.ops.every((o) => o.status !== "pending"), null, "x=2 acknowledged");
  await send("get", "x", null, f, "stale");
  st = await h.waitFor(p, (s) => s.ops.every((o) => o.status !== "pending"), null, "the stale read answered");
  await h.setPlaying(p, false);
  const read = st.ops.at(-1);
  assert.equal(read.target, f);
  assert.equal(read.node, f);
  assert.equal(read.result, 'value="1"', "the cut-off follower's old value");
  assert.equal(st.history.stale_unchecked, 1);
  assert.equal(st.history.linearizable, true);
  const verdict = await h.textOnceMatching(p, "#verdict", /stale read not checked/);
  assert.match(verdict, /2 ops checked/);
  assert.match(verdict, /1 stale read not checked for order \(each returned a written value\)/);
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("every single step says what it did, even one that leaves no Events line", async () => {
  const p = await env.page("#n=5&seed=7&t=0");
  let silent = 0;
  for (let i = 0; i < 40; i++) {
    const before = await h.state(p);
    await p.click("#step");
    await frames(p, 1);
    const after = await h.state(p);
    assert.ok(after.events > before.events, "the step ran an event");
    assert.ok(after.last_event, "the state tells the last event");
    assert.equal(await p.textContent("#last-event"), `last event: ${after.last_event}`);
    if ((after.trace.at(-1)?.seq ?? -1) === (before.trace.at(-1)?.seq ?? -1)) silent++;
  }
  assert.ok(silent > 0, "some steps left no Events line (and were told all the same)");
  await p.close();
  assert.deepEqual(env.errors, []);
});
