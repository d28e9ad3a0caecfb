// End-to-end test of the playground's live mode against a real 3-node kvserver cluster: the
// playground runs with --dev-cluster (it starts and owns the nodes, data in a temp dir, free
// ports), the page switches to Live, a put from the page's console is read back with the kvctl
// binary, killing the leader from the page gets a new leader elected, and Make leader hands the
// leadership to a chosen follower. Every wait polls with
// a deadline. Build first (run.sh does all of it): the wasm package, and
//
//   cargo build -p raftkv-native --bin playground --bin kvserver --bin kvctl
//   node --test live.test.js

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import * as h from "./harness.js";

const KVSERVER = process.env.KVSERVER_BIN ?? path.join(h.BIN_DIR, "kvserver");
const KVCTL = process.env.KVCTL_BIN ?? path.join(h.BIN_DIR, "kvctl");
const data = mkdtempSync(path.join(os.tmpdir(), "raftkv-live-"));
// Debug kvservers beside a browser on a shared 2-core machine: election timeouts above the
// default 150-300 ms, so that a slow moment is not an election.
const env = h.environment({
  serverArgs: ["--dev-cluster", "--kvserver", KVSERVER, "--data-dir", data, "--dev-base-port", "0",
    "--kvserver-arg=--election-timeout-ms", "--kvserver-arg=400-800"],
});
const run = promisify(execFile);
let page;

before(async () => {
  assert.ok(existsSync(KVSERVER), `no kvserver at ${KVSERVER} (cargo build -p raftkv-native --bin kvserver)`);
  assert.ok(existsSync(KVCTL), `no kvctl at ${KVCTL} (cargo build -p raftkv-native --bin kvctl)`);
  await env.start();
  page = await env.page("#n=5&seed=3");
});

after(async () => {
  const exited = env.server && env.server.exitCode == null ? new Promise((r) => env.server.once("exit", r)) : null;
  await env.stop();
  // The playground stops its nodes before it exits: then their data can go.
  await exited;
  rmSync(data, { recursive: true, force: true });
});

/** What the page's live mode knows, read through its test hook. */
const live = () => page.evaluate(() => {
  const l = window.raftkv.live;
  return { active: l.active, nodes: l.nodes(), leader: l.leader(), ops: l.ops, cluster: l.cluster };
});

/**
 * Waits (re-checking every animation frame, inside the page) until `pred(liveState, arg)`
 * holds; `pred` is sent as source, so it may use only its arguments.
 */
async function waitLive(pred, what, { arg = null, timeout = 30_000 } = {}) {
  try {
    await page.waitForFunction(([src, a]) => {
      const l = window.raftkv.live;
      const s = { active: l.active, nodes: l.nodes(), leader: l.leader(), ops: l.ops };
      return new Function(`return (${src})`)()(s, a);
    }, [pred.toString(), arg], { timeout });
  } catch (e) {
    throw new Error(`timed out waiting for ${what}: ${e.message}\nlive state: ${JSON.stringify(await live())}`);
  }
  return live();
}

test("live mode drives the real cluster", async (t) => {
  let simBefore;

  await t.test("the Live button shows, and switches the page to the real nodes", async () => {
    const about = await page.evaluate(() => fetch("/playground.json").then((r) => r.json()));
    assert.equal(about.dev_cluster, true, "the playground says it runs a dev cluster");
    await page.waitForSelector("#live-toggle:not([hidden])");
    await page.click("#live-toggle");
    await page.waitForSelector("#live:not([hidden])");
    assert.equal(await page.locator("main.layout:not(#live)").isHidden(), true, "the simulator is hidden");
    assert.equal(await page.locator("#play").isHidden(), true, "the simulator's controls are hidden");
    assert.equal(await page.evaluate(() => window.raftkv.playing), false, "the simulator is paused");
    simBefore = await h.state(page);
    const s = await waitLive((s) => s.nodes.length === 3 && s.nodes.every((n) => n.alive) && s.leader != null,
      "3 running nodes and a leader");
    assert.deepEqual(s.nodes.map((n) => n.id), ["n1", "n2", "n3"]);
    await page.waitForSelector(`#live-ring .node[data-id="${s.leader.id}"][data-role="leader"]`);
    assert.equal(await page.locator("#live-ring .node").count(), 3);
  });

  await t.test("a put from the page is readable with kvctl", async () => {
    await page.selectOption("#live-op", "put");
    await page.fill("#live-key", "live-key");
    await page.fill("#live-value", "from-the-page");
    // To a follower on purpose: the playground follows its redirect to the leader.
    const s = await live();
    const follower = s.nodes.find((n) => n.role === "follower").id;
    await page.selectOption("#live-to", follower);
    await page.click("#live-form button[type=submit]");
    const done = await waitLive((s) => s.ops.length === 1 && s.ops[0].status !== "pending", "the put's answer");
    assert.equal(done.ops[0].status, "ok", `the put failed: ${done.ops[0].answer}`);
    // The leader answered: the one before the put, or (an election meanwhile) the one now.
    const now = await live();
    assert.ok([s.leader.id, now.leader?.id].includes(done.ops[0].node),
      `answered by ${done.ops[0].node}, the leader was ${s.leader.id} and is ${now.leader?.id}`);
    await page.waitForSelector('#live-ops li[data-status="ok"]');
    mkdirSync(h.ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(h.ARTIFACTS, "live.png") });

    const endpoints = s.cluster.nodes.map((n) => n.addr).join(",");
    const { stdout } = await run(KVCTL, ["--endpoints", endpoints, "get", "live-key", "--consistency", "readindex"]);
    assert.equal(stdout.trim(), "from-the-page");
  });

  await t.test("killing the leader from the page elects a new one", async () => {
    const before = (await live()).leader;
    await page.click(`#live-nodes tr[data-id="${before.id}"] button[data-live^="kill"]`);
    const s = await waitLive((s, old) => s.leader != null && s.leader.id !== old && !s.nodes.find((n) => n.id === old).process,
      "the old leader killed and a new leader", { arg: before.id });
    const dead = s.nodes.find((n) => !n.process);
    assert.equal(dead?.id, before.id, "the old leader's process is gone");
    assert.notEqual(s.leader.id, before.id);
    assert.ok(s.leader.term > before.term, `the new leader's term ${s.leader.term} is past ${before.term}`);
    await page.waitForSelector(`#live-ring .node[data-id="${before.id}"][data-role="dead"]`);
    // The playground's own view agrees: the process is not running.
    const cluster = await page.evaluate(() => fetch("/dev/cluster").then((r) => r.json()));
    assert.equal(cluster.nodes.find((n) => n.id === before.id).alive, false);

    // Restarted from the page, it comes back as a follower of the new leader.
    await page.click(`#live-nodes tr[data-id="${before.id}"] button[data-live^="restart"]`);
    await waitLive((s) => s.nodes.every((n) => n.alive) && s.nodes.filter((n) => n.role === "leader").length === 1,
      "the old leader back, one leader");
  });

  await t.test("clicking a node aims the console at it; k kills the leader", async () => {
    const before = (await live()).leader;
    const other = (await live()).nodes.find((n) => n.id !== before.id).id;
    await page.click(`#live-ring .node[data-id="${other}"]`);
    assert.equal(await page.inputValue("#live-to"), other);
    await page.keyboard.press("k");
    await waitLive((s, old) => s.leader != null && s.leader.id !== old && !s.nodes.find((n) => n.id === old).process,
      "the leader killed by k and a new one", { arg: before.id });
    await page.click(`#live-nodes tr[data-id="${before.id}"] button[data-live^="restart"]`);
    await waitLive((s) => s.nodes.every((n) => n.alive) && s.nodes.filter((n) => n.role === "leader").length === 1,
      "all back, one leader");
  });

  await t.test("Make leader hands the leadership to the chosen follower", async () => {
    const before = (await live()).leader;
    const to = (await live()).nodes.find((n) => n.alive && n.id !== before.id).id;
    assert.equal(await page.locator(`#live-nodes tr[data-id="${before.id}"] button[data-live^="transfer"]`).count(), 0,
      "the leader has no Make leader button");
    await page.click(`#live-nodes tr[data-id="${to}"] button[data-live^="transfer"]`);
    const s = await waitLive((s, want) => s.leader?.id === want, `${to} leading`, { arg: to });
    assert.ok(s.leader.term > before.term, `the new term ${s.leader.term} is past ${before.term}`);
    assert.ok(s.nodes.every((n) => n.process), "nobody was killed for it");
    await page.waitForSelector(`#live-ring .node[data-id="${to}"][data-role="leader"]`);
  });

  await t.test("cutting a link and healing it act on the proxies", async () => {
    await page.click('#live-links tr[data-link="n1-n2"] button');
    // The button turns once the playground answered the cut.
    await page.waitForSelector('#live-links tr[data-link="n1-n2"] button:text("Heal")');
    let c = await page.evaluate(() => fetch("/dev/cluster").then((r) => r.json()));
    assert.deepEqual(c.links.filter((l) => l.cut).map((l) => `${l.from}>${l.to}`).sort(), ["n1>n2", "n2>n1"]);
    await page.click('#live-links tr[data-link="n1-n2"] button');
    await page.waitForSelector('#live-links tr[data-link="n1-n2"] button:text("Cut")');
    c = await page.evaluate(() => fetch("/dev/cluster").then((r) => r.json()));
    assert.equal(c.links.filter((l) => l.cut).length, 0);
  });

  await t.test("switching back restores the simulator untouched", async () => {
    await page.click("#live-toggle");
    await page.waitForSelector("#live", { state: "hidden" });
    assert.equal(await page.locator("#ring").isVisible(), true);
    const sim = await h.state(page);
    // The same run, where it was left: nothing ran while the page was live.
    assert.deepEqual(sim.nodes.map((n) => n.id), ["n1", "n2", "n3", "n4", "n5"]);
    assert.equal(sim.seed, simBefore.seed);
    assert.equal(sim.now, simBefore.now);
    assert.equal(sim.events, simBefore.events);
    assert.equal(await page.evaluate(() => window.raftkv.playing), false, "left paused");
    await page.waitForSelector("#ring .node", { state: "visible" });
  });

  assert.deepEqual(env.errors, [], "no page errors");
});
