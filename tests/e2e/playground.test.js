// End-to-end test of the playground page with the real wasm package, in headless Chromium
// (playwright-core, Debian's chromium). The page is served by the `playground` binary (native/)
// on a free port. Build first (run.sh does all of it):
//
//   bash scripts/wasm.sh pkg
//   cargo build -p raftkv-native --bin playground
//   node --test playground.test.js
//
// PLAYGROUND_BIN overrides the binary's path; CHROMIUM the browser's.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import * as h from "./harness.js";

const SHOT = path.join(h.ARTIFACTS, "playground.png");
const env = h.environment();
const errors = env.errors;
let page;

before(async () => {
  await env.start();
  page = await env.newPage();
});

after(() => env.stop());

// The harness's helpers, on this file's main page unless told otherwise.
const state = (p = page) => h.state(p);
const leaders = h.leaders;
const waitFor = (pred, arg, what, { p = page, timeout } = {}) => h.waitFor(p, pred, arg, what, { timeout });
const setPlaying = (on, p = page) => h.setPlaying(p, on);
const setSpeed = (v, p = page) => h.setSpeed(p, v);
const url = () => env.url;

test("the playground runs a cluster you can poke at", async (t) => {
  await page.goto(`${url()}#n=5&seed=7`);
  await page.waitForSelector("body[data-ready]");
  assert.equal(await page.locator("#banner").isHidden(), true, "no crash banner on load");
  assert.equal(await page.evaluate(() => typeof window.raftkv.runner.mod.Playground), "function");

  await t.test("N nodes are drawn", async () => {
    assert.equal(await page.locator("#ring .node").count(), 5);
    assert.equal(await page.locator("#logs .logrow:not(.head)").count(), 5);
    assert.deepEqual((await state()).nodes.map((n) => n.id), ["n1", "n2", "n3", "n4", "n5"]);
  });

  await setSpeed(0);
  await setPlaying(true);

  let first;
  await t.test("a leader appears", async () => {
    const st = await waitFor((s) => s.nodes.filter((n) => n.alive && n.role === "leader").length === 1, null, "a leader");
    first = leaders(st)[0];
    await page.waitForSelector(`#ring .node[data-id="${first}"][data-role="leader"]`);
  });

  await t.test("in kill mode, clicking the leader kills it, and another leader appears", async () => {
    // A click opens a node's drawer by default; the "Click a node to" menu makes it kill.
    await page.selectOption("#click-mode", "kill");
    await page.click(`#ring .node[data-id="${first}"]`);
    const st = await state();
    assert.equal(st.nodes.find((n) => n.id === first).alive, false);
    await page.waitForSelector(`#ring .node[data-id="${first}"].dead`);
    const st2 = await waitFor((s, f) => {
      const l = s.nodes.filter((n) => n.alive && n.role === "leader");
      return l.length === 1 && l[0].id !== f;
    }, first, "a new leader");
    console.log(`# leader ${first} killed at ${st.now} ms; ${leaders(st2)[0]} leads at ${st2.now} ms`);
  });

  await t.test("cutting a link changes what is delivered", async () => {
    const st = await state();
    const ids = st.nodes.map((n) => n.id);
    // The leader and a live neighbour on the ring: their link carries heartbeats, and its
    // midpoint is clear of other links.
    const li = st.nodes.findIndex((n) => n.alive && n.role === "leader");
    assert.ok(li >= 0, "a leader");
    let a = ids[li], b;
    for (const d of [1, ids.length - 1]) {
      const y = st.nodes[(li + d) % ids.length];
      if (y.alive) { b = y.id; break; }
    }
    assert.ok(b, "a live neighbour of the leader");
    if (ids.indexOf(a) > ids.indexOf(b)) [a, b] = [b, a];
    const lk = (s, f, to) => s.links.find((l) => l.from === f && l.to === to);
    const link = page.locator(`#ring .link[data-a="${a}"][data-b="${b}"]`);
    await link.click();
    const cutAt = await state();
    assert.ok(lk(cutAt, a, b).cut, `${a}->${b} cut`);
    assert.ok(lk(cutAt, b, a).cut, `${b}->${a} cut`);
    assert.equal(await link.locator("line.dir.cut").count(), 2, "both directions drawn cut");
    // Let every message already in flight land, then count: nothing more gets through, and
    // what the leader keeps sending over the cut link is counted as dropped.
    const mid = await waitFor((s, t0) => s.now > t0 + 400, cutAt.now, "400 ms of simulated time");
    const end = await waitFor((s, t0) => s.now > t0 + 600, mid.now, "600 more ms");
    assert.equal(lk(end, a, b).delivered, lk(mid, a, b).delivered, `nothing delivered ${a}->${b} while cut`);
    assert.equal(lk(end, b, a).delivered, lk(mid, b, a).delivered, `nothing delivered ${b}->${a} while cut`);
    const dropped = (s) => lk(s, a, b).dropped + lk(s, b, a).dropped;
    assert.ok(dropped(end) > dropped(mid), "messages sent over the cut link are dropped");
    const total = (s) => s.links.reduce((k, l) => k + l.delivered, 0);
    assert.ok(total(end) > total(mid), "other links still deliver");
    // Those drops are drawn: a message sent over the cut link dies as it leaves (a red cross).
    await waitFor((s, [x, y]) => s.drops.some((d) => d.at_send && d.reason === "partitioned"
      && ((d.from === x && d.to === y) || (d.from === y && d.to === x))), [a, b], "a drop on the cut link");
    await page.waitForSelector("#ring path.drop");
    // Heal, and traffic flows again (the leader heartbeats everyone it can reach).
    await link.click();
    const healed = await state();
    assert.ok(!healed.links.some((l) => l.cut), "healed");
    const d0 = lk(healed, a, b).delivered + lk(healed, b, a).delivered;
    await waitFor((s, [x, y, k]) => {
      const f = (p, q) => s.links.find((l) => l.from === p && l.to === q).delivered;
      return f(x, y) + f(y, x) > k;
    }, [a, b, d0], "delivery over the healed link");
  });

  await t.test("a client put becomes visible in every live node's kv table", async () => {
    await page.selectOption("#op", "put");
    await page.fill("#op-key", "color");
    await page.fill("#op-value", "teal");
    await page.click("#client-form button[type=submit]");
    const st = await waitFor((s) => s.nodes.every((n) => !n.alive || n.kv.color === "teal"), null, "the put on every live node");
    const op = st.ops.find((o) => o.op === "put" && o.key === "color");
    assert.ok(op, "the op is listed");
    await waitFor((s, id) => s.ops.find((o) => o.id === id)?.status === "ok", op.id, "the put acknowledged");
    for (const n of st.nodes.filter((x) => x.alive)) {
      await page.waitForSelector(`#kv td[data-node="${n.id}"][data-key="color"]:text-is("teal")`);
    }
    await page.waitForSelector(`#ops li.op.ok`);
  });

  await t.test("a shared URL replays to the same state", async () => {
    // A few more actions, so the link carries several kinds.
    const st0 = await state();
    await page.click(`#ring .node[data-id="${first}"]`); // restart the first leader
    await page.keyboard.press("h");
    await page.fill("#op-key", "shape");
    await page.fill("#op-value", "circle");
    await page.click("#client-form button[type=submit]");
    await waitFor((s, t0) => s.now > t0 + 300, st0.now, "300 ms more");
    await setPlaying(false); // the address bar now holds the run up to now
    await page.click("#share");
    const shared = page.url();
    const here1 = await state();
    assert.match(shared, /#n=5&seed=7&t=\d+@\d+&a=/);
    console.log(`# shared link: ${shared.length} chars, t=${here1.now} ms, ${here1.events} events, ${here1.ops.length} ops`);

    const other = await env.newPage();
    await other.goto(shared);
    await other.waitForSelector("body[data-ready]");
    const there = await state(other);
    assert.equal(there.now, here1.now);
    assert.equal(there.events, here1.events);
    assert.deepEqual(there.nodes, here1.nodes, "same nodes (roles, terms, logs, kv)");
    assert.deepEqual(there.messages, here1.messages, "same messages in flight");
    assert.deepEqual(there.links, here1.links, "same links");
    assert.deepEqual(there.ops, here1.ops, "same client ops");
    assert.deepEqual(there.trace, here1.trace, "same trace");
    assert.deepEqual(there.history, here1.history, "same verdict");
    assert.deepEqual(there, here1, "the whole state");
    await other.close();
  });

  await t.test("screenshot", async () => {
    // Play a little at a watchable speed so messages are on the wire, then pause and shoot.
    await setSpeed(1.3);
    const t0 = (await state()).now;
    await setPlaying(true);
    await waitFor((s, t1) => s.now > t1 + 60 && s.messages.length > 0, t0, "messages on the wire");
    await setPlaying(false);
    mkdirSync(path.dirname(SHOT), { recursive: true });
    await page.screenshot({ path: SHOT });
    console.log(`# screenshot: ${SHOT}`);
  });

  assert.deepEqual(errors, [], "no page errors");
});

const pickScenario = h.pickScenario;

test("the preset scenarios do what they say", async (t) => {
  const p = await env.newPage();
  await p.goto(`${url()}#n=5&seed=3`);
  await p.waitForSelector("body[data-ready]");
  await setSpeed(0, p);

  await t.test("leader crash: a new leader takes over and x=1 survives", async () => {
    const st = await pickScenario(p, "leader-crash");
    const dead = st.nodes.find((n) => !n.alive);
    assert.ok(dead, "the preset killed a node");
    assert.equal(dead.role, "leader", "the node it killed was the leader");
    await setPlaying(true, p);
    const after = await waitFor((s, d) => s.nodes.some((n) => n.alive && n.role === "leader" && n.id !== d)
      && s.nodes.filter((n) => n.alive).every((n) => n.kv.x === "1"), dead.id, "a new leader, x=1 everywhere", { p });
    await setPlaying(false, p);
    assert.deepEqual(after.violations, []);
  });

  await t.test("leader in a minority: cannot commit; the majority elects; healing ends it", async () => {
    const st = await pickScenario(p, "leader-minority");
    const old = st.nodes.find((n) => n.alive && n.role === "leader");
    assert.ok(old, "the preset starts with a leader");
    const put = st.ops.at(-1);
    assert.equal(put.key, "y");
    await setPlaying(true, p);
    const split = await waitFor((s, o) => s.nodes.some((n) => n.role === "leader" && n.id !== o.id && n.term > o.term),
      old, "a leader in the majority", { p });
    // The cut-off leader never committed y: no node applied it.
    assert.ok(split.nodes.every((n) => n.kv.y === undefined), "y applied without a majority");
    await setPlaying(false, p);
    await p.keyboard.press("h"); // heal every link
    await setPlaying(true, p);
    const healed = await waitFor((s, o) => {
      const l = s.nodes.filter((n) => n.role === "leader");
      return l.length === 1 && l[0].id !== o && s.nodes.every((n) => n.term === l[0].term);
    }, old.id, "one leader and one term after healing", { p });
    await setPlaying(false, p);
    assert.notEqual(healed.nodes.find((n) => n.id === old.id).role, "leader");
    assert.deepEqual(healed.violations, []);
  });

  await t.test("split vote: two candidates in one term, and a later term elects a leader", async () => {
    const st = await pickScenario(p, "split-vote");
    await setPlaying(true, p);
    const done = await waitFor((s, t0) => s.now > t0 + 2000 && s.nodes.some((n) => n.role === "leader"),
      st.now, "a leader after the split", { p });
    await setPlaying(false, p);
    // Two nodes became candidate in one term and neither won it (the page's own finder, run
    // here on the trace the test saw)...
    const split = await p.evaluate(async (trace) => (await import("./scenarios.js")).splitTerm(trace), done.trace);
    assert.ok(split, "no split vote in the trace");
    // ...and a later term elected the leader.
    const leader = done.nodes.find((n) => n.role === "leader");
    assert.ok(leader.term > split.term, `leader term ${leader.term}, split term ${split.term}`);
    assert.deepEqual(done.violations, []);
  });

  await t.test("lagging follower: caught up by an install snapshot", async () => {
    const st = await pickScenario(p, "snapshot");
    // The node that was down while the writes committed: it restarts with the least applied.
    const lag = st.nodes.reduce((a, b) => (a.last_applied <= b.last_applied ? a : b));
    const leader = st.nodes.find((n) => n.alive && n.role === "leader");
    assert.ok(leader.snapshot_index > 0, "the leader compacted its log");
    assert.ok(lag.kv.k12 === undefined, `${lag.id} starts without the writes`);
    await setPlaying(true, p);
    // Played in real time, the trace line of the install stays in the panel's window for
    // many frames after it happens.
    const caught = await waitFor((s, id) => s.trace.some((l) => l.node === id && l.text.startsWith("installs a snapshot")),
      lag.id, `${lag.id} to install a snapshot`, { p });
    const final = await waitFor((s, id) => s.nodes.find((x) => x.id === id).kv.k12 === "v12",
      lag.id, `${lag.id} to hold k12`, { p });
    await setPlaying(false, p);
    const n = final.nodes.find((x) => x.id === lag.id);
    for (let i = 1; i <= 12; i++) assert.equal(n.kv[`k${i}`], `v${i}`);
    assert.ok(n.snapshot_index > 0);
    assert.deepEqual(caught.violations, []);
    assert.deepEqual(final.violations, []);
  });

  await p.close();
  assert.deepEqual(errors, [], "no page errors");
});
