// End-to-end test of the playground's membership, transfer, clock and read controls, in
// headless Chromium (see harness.js; tests/e2e/run.sh builds and runs everything).
//
//   node --test members.test.js

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import * as h from "./harness.js";

const env = h.environment();
before(() => env.start());
after(() => env.stop());

const node = (st, id) => st.nodes.find((n) => n.id === id);

/** Saves a screenshot under tests/e2e/artifacts/ (git-ignored). */
async function shot(p, name) {
  mkdirSync(h.ARTIFACTS, { recursive: true });
  const file = path.join(h.ARTIFACTS, name);
  await p.screenshot({ path: file });
  console.log(`# screenshot: ${file}`);
}

/** Waits until the text of `sel` matches `re` (the panels redraw a little after the state). */
async function waitText(p, sel, re) {
  try {
    await p.waitForFunction(([q, src, flags]) => new RegExp(src, flags).test(document.querySelector(q)?.textContent ?? ""),
      [sel, re.source, re.flags], { timeout: 5000 });
  } catch (e) {
    throw new Error(`${sel} never matched ${re} (it says: ${await p.locator(sel).first().textContent().catch(() => "?")}): ${e.message}`);
  }
}

/** Clicks node `id` on the ring in "Click a node to" mode `mode`. */
async function clickNode(p, mode, id) {
  await p.selectOption("#click-mode", mode);
  await p.click(`#ring .node[data-id="${id}"]`);
}

/** Waits until the toast shows text matching `re` (as an error toast when `error`); returns it. */
async function toast(p, re, error = false) {
  try {
    await p.waitForFunction(([src, flags, err]) => {
      const el = document.querySelector("#toast");
      return !el.hidden && el.classList.contains("error") === err && new RegExp(src, flags).test(el.textContent);
    }, [re.source, re.flags, error], { timeout: 5000 });
  } catch (e) {
    throw new Error(`no toast matching ${re} (showing: ${await p.locator("#toast").textContent()}): ${e.message}`);
  }
  return p.locator("#toast").textContent();
}

test("membership changes from the ring and the Members panel", async (t) => {
  const p = await env.page("#n=3&seed=5");
  await h.setSpeed(p, 0);
  await h.setPlaying(p, true);
  const st0 = await h.waitFor(p, (s) => s.nodes.filter((n) => n.alive && n.role === "leader").length === 1
    && s.nodes.every((n) => n.commit_index > 0), null, "a leader whose term's entry committed");
  assert.equal(h.leaders(st0).length, 1);
  assert.deepEqual(st0.membership.voters, ["n1", "n2", "n3"]);
  await waitText(p, "#config-line", /^voters n1 n2 n3$/);

  await t.test("+ Node starts a joining node, drawn and listed", async () => {
    await p.click("#add-node");
    const st = await h.waitFor(p, (s) => s.nodes.length === 4, null, "a fourth node");
    assert.equal(node(st, "n4").member, "joining");
    assert.equal(await p.locator("#ring .node").count(), 4, "the ring lays out 4 nodes");
    await p.waitForSelector(`#ring .node[data-id="n4"].joining`);
    await p.waitForSelector(`#members tr[data-node="n4"].joining`);
    assert.equal(await p.locator("#op-node option").count(), 5, "the console can send to n4");
  });

  await t.test("a click adds n4 as a learner, drawn hollow with an L", async () => {
    await clickNode(p, "add_learner", "n4");
    const st = await h.waitFor(p, (s) => s.nodes.find((n) => n.id === "n4").member === "learner",
      null, "n4 a learner");
    assert.deepEqual(st.membership.learners, ["n4"]);
    await p.waitForSelector(`#ring .node[data-id="n4"].learner .badge text:text-is("L")`);
    await waitText(p, "#config-line", /^voters n1 n2 n3 · learners n4$/);
    await waitText(p, `#members tr[data-node="n4"] td.place`, /^learner$/);
    await shot(p, "members-learner.png");
  });

  await t.test("promoting n4 makes it a voter in the drawing and the readout", async () => {
    // Promotion is refused until the learner caught up with the leader's log: wait for it.
    await h.waitFor(p, (s) => {
      const l = s.nodes.find((n) => n.alive && n.role === "leader");
      return !!l && s.nodes.find((n) => n.id === "n4").last_log_index >= l.last_log_index;
    }, null, "n4 caught up");
    await p.click(`#members tr[data-node="n4"] button[data-act="promote"]`);
    const st = await h.waitFor(p, (s) => s.membership.voters.includes("n4"), null, "n4 a voter");
    assert.deepEqual(st.membership.learners, []);
    assert.equal(node(st, "n4").member, "voter");
    await p.waitForSelector(`#ring .node[data-id="n4"]:not(.learner)[data-member="voter"]`);
    assert.equal(await p.locator(`#ring .node[data-id="n4"] .badge`).isVisible(), false, "no badge on a voter");
    await waitText(p, "#config-line", /^voters n1 n2 n3 n4$/);
    await p.waitForSelector(`#members tr[data-node="n4"] td.place:text-is("voter")`);
  });

  await t.test("refused changes show readable toasts", async () => {
    await clickNode(p, "promote", "n1");
    await toast(p, /^cannot promote n1: it is a voter already$/, true);
    // Paused, so the first removal is still in progress when the second is asked: core refuses.
    await h.setPlaying(p, false);
    await p.click(`#members tr[data-node="n4"] button[data-act="remove"]`);
    await toast(p, /^n4 leaves once entry \d+ commits\.$/);
    await p.click(`#members tr[data-node="n4"] button[data-act="remove"]`);
    const text = await toast(p, /^cannot remove n4: a configuration change is in progress \(entry \d+\)$/, true);
    assert.doesNotMatch(text, /Cannot read properties|undefined|RuntimeError/, text);
    await h.setPlaying(p, true);
  });

  await t.test("removing a node greys it out", async () => {
    const st = await h.waitFor(p, (s) => s.nodes.find((n) => n.id === "n4").member === "removed"
      && s.nodes.some((n) => n.alive && n.role === "leader"), null, "n4 removed");
    assert.deepEqual(st.membership.voters, ["n1", "n2", "n3"]);
    await p.waitForSelector(`#ring .node[data-id="n4"].removed`);
    await waitText(p, `#members tr[data-node="n4"] td.place`, /^removed$/);
    assert.equal(await p.locator(`#members tr[data-node="n4"] button[data-act]`).count(), 1, "only the clock jump is left");
  });

  await t.test("a click hands the leadership to the clicked node", async () => {
    const st = await h.waitFor(p, (s) => {
      const l = s.nodes.find((n) => n.alive && n.role === "leader");
      return !!l && !l.transfer_to && s.nodes.every((n) => !n.alive || n.member !== "voter" || n.last_log_index >= l.last_log_index);
    }, null, "a settled leader");
    const from = h.leaders(st)[0];
    const to = st.membership.voters.find((id) => id !== from);
    // Slowly, to catch the hand-over's TimeoutNow on the wire.
    await h.setSpeed(p, 2);
    await clickNode(p, "transfer", to);
    await toast(p, new RegExp(`^${from} hands its leadership to ${to}`));
    await p.waitForSelector(`#ring .node[data-id="${to}"] .halo.target`, { timeout: 5000 }).catch(() => {});
    await h.waitFor(p, (s, [f, t]) => s.messages.some((m) => m.kind === "timeout_now" && m.from === f && m.to === t)
      || s.nodes.find((n) => n.id === t).role === "leader", [from, to], "TimeoutNow on the wire");
    if ((await h.state(p)).messages.some((m) => m.kind === "timeout_now")) {
      await p.waitForSelector('#ring .msg[data-kind="timeout_now"] path.timeout-now', { timeout: 5000 });
      await shot(p, "members-timeout-now.png");
    }
    await h.setSpeed(p, 0);
    // Core sometimes loses a transfer (about 1 in 30 in a native sweep): the old leader, a
    // follower by then, answers a late AppendEntries rejection with an AppendEntries of the new
    // term, and the candidate steps down to follow it. Then the click is tried again, at most
    // twice, and the retry is logged.
    let after;
    for (let tries = 1; ; tries++) {
      after = await h.waitFor(p, (s, [id, t0]) => {
        const l = s.nodes.find((n) => n.alive && n.role === "leader");
        return l?.id === id || (!!l && !l.transfer_to && s.now > t0 + 800);
      }, [to, (await h.state(p)).now], `${to} to lead (try ${tries})`);
      if (h.leaders(after)[0] === to || tries === 3) break;
      console.log(`# transfer to ${to} did not take (leader ${h.leaders(after)[0]}), asking again`);
      await clickNode(p, "transfer", to);
    }
    assert.equal(h.leaders(after)[0], to, `${to} leads`);
    assert.equal(h.leaders(after).length, 1);
    assert.deepEqual(after.violations, []);
  });

  await t.test("a clock drifts and jumps from the Members panel", async () => {
    const drift = p.locator(`#members tr[data-node="n2"] input.drift`);
    await drift.fill("10");
    await drift.dispatchEvent("change");
    const st = await h.waitFor(p, (s) => s.nodes.find((n) => n.id === "n2").drift_ppm === 100000, null, "n2 drifting");
    await p.fill("#jump-ms", "500");
    await p.click(`#members tr[data-node="n3"] button[data-act="jump"]`);
    const st2 = await h.waitFor(p, (s, c) => s.nodes.find((n) => n.id === "n3").clock >= c + 500,
      node(st, "n3").clock, "n3's clock to jump");
    assert.ok(node(st2, "n3").clock - node(st2, "n1").clock >= 450, "n3 runs ahead of n1");
    await p.waitForSelector(`#ring .node[data-id="n2"] .info:has-text("⏱+10%")`);
  });

  await t.test("a lease read sent from the console answers", async () => {
    await p.selectOption("#op", "put");
    await p.fill("#op-key", "lk");
    await p.fill("#op-value", "lv");
    await p.click("#client-form button[type=submit]");
    await h.waitFor(p, (s) => s.ops.at(-1).status === "ok", null, "the put");
    const l = h.leaders(await h.state(p))[0];
    await p.selectOption("#op", "get");
    assert.equal(await p.inputValue("#op-mode"), "readindex", "reads default to readindex");
    await p.selectOption("#op-mode", "lease");
    await p.selectOption("#op-node", l);
    await p.click("#client-form button[type=submit]");
    const st = await h.waitFor(p, (s) => s.ops.at(-1).op === "get" && s.ops.at(-1).status !== "pending", null, "the lease read");
    const op = st.ops.at(-1);
    assert.deepEqual([op.mode, op.target, op.status, op.result], ["lease", l, "ok", `value="lv"`]);
    await p.waitForSelector(`#ops li.op.ok .req:has-text("(lease)")`);
    await h.setPlaying(p, false);
    assert.deepEqual(st.violations, []);
    assert.equal(st.history.linearizable, true);
  });

  await t.test("a shared link replays the membership changes, refusals and all", async () => {
    await h.setPlaying(p, false); // the address bar now holds the run up to now
    const here = await h.state(p);
    const link = p.url();
    assert.match(link, /add_node.*add_learner.*promote.*remove.*transfer_leader.*set_clock_drift.*jump_clock/);
    const other = await env.page(new URL(link).hash);
    const there = await h.state(other);
    assert.equal(there.now, here.now);
    // What the recorded actions did and how each change ended, refusals included. (Not the
    // whole state: Cluster::run_until(t) can run one event past t when a stale timer comes
    // first, so a run advanced in other slices may differ by an event at its very end; the
    // same holds for the older share-link test, which compares everything.)
    assert.deepEqual(there.membership, here.membership);
    assert.deepEqual(there.nodes.map((n) => [n.id, n.member, n.drift_ppm]), here.nodes.map((n) => [n.id, n.member, n.drift_ppm]));
    // (Both traces keep their last 200 lines: compare the stretch both still hold.)
    const from = Math.max(there.trace[0]?.at ?? 0, here.trace[0]?.at ?? 0);
    const conf = (st) => st.trace.filter((l) => l.at > from
      && /^(joins|add_learner|promote|remove|transfer|change at|configuration of)|refused/.test(l.text));
    assert.deepEqual(conf(there), conf(here), "the same membership changes, refused ones included");
    assert.deepEqual(there.ops.map((o) => [o.id, o.status, o.result]), here.ops.map((o) => [o.id, o.status, o.result]));
    await other.close();
  });

  await p.close();
  assert.deepEqual(env.errors, [], "no page errors");
});

test("the ring lays out up to 9 nodes as they come", async () => {
  const p = await env.page("#n=7&seed=2");
  await h.setSpeed(p, 0);
  await h.setPlaying(p, true);
  await p.click("#add-node");
  await p.click("#add-node");
  await h.waitFor(p, (s) => s.nodes.length === 9, null, "nine nodes");
  assert.equal(await p.locator("#ring .node").count(), 9);
  assert.equal(await p.locator("#ring .link").count(), 36, "a link per pair");
  assert.equal(await p.locator("#members tbody tr").count(), 9);
  await p.click("#add-node");
  await toast(p, /^cannot add a node: the playground holds at most 9 nodes/, true);
  assert.equal((await h.state(p)).nodes.length, 9);
  // The two newcomers join as learners, drawn as such among the nine.
  await clickNode(p, "add_learner", "n8");
  await h.waitFor(p, (s) => s.nodes.find((n) => n.id === "n8").member === "learner", null, "n8 a learner");
  await p.waitForSelector(`#ring .node[data-id="n8"].learner`);
  await p.waitForSelector(`#ring .node[data-id="n9"].joining`);
  await h.setPlaying(p, false);
  await shot(p, "members-nine.png");
  await p.close();
  assert.deepEqual(env.errors, [], "no page errors");
});

test("the replace-the-leader preset ends with the old leader removed and a new leader", async () => {
  const p = await env.page("#n=5&seed=3");
  const st = await h.pickScenario(p, "replace-leader");
  const old = h.leaders(st)[0];
  assert.ok(old, "the preset leaves a leader");
  const fresh = st.nodes.at(-1).id;
  assert.equal(st.nodes.length, 4, "three nodes and the one that replaces the leader");
  assert.equal(node(st, fresh).member, "joining");
  // Slowly (1/30x), to see the joint configuration while it lasts (some 40 simulated ms).
  await h.setSpeed(p, 1.5);
  await h.setPlaying(p, true);
  await p.waitForSelector("#joint-badge:not([hidden])", { timeout: 20_000 });
  const joint = await h.state(p);
  if (joint.membership.joint) {
    assert.ok(joint.membership.outgoing.includes(old) && !joint.membership.voters.includes(old), JSON.stringify(joint.membership));
    assert.ok(joint.membership.voters.includes(fresh));
    await shot(p, "members-joint.png");
  }
  await h.setSpeed(p, 0);
  const end = await h.waitFor(p, (s, [o, f]) => {
    const l = s.nodes.filter((n) => n.alive && n.role === "leader");
    return !s.membership.joint && s.nodes.find((n) => n.id === o).member === "removed"
      && l.length === 1 && l[0].id !== o && s.membership.voters.includes(f);
  }, [old, fresh], "the old leader removed and a new leader");
  await h.setPlaying(p, false);
  await p.waitForSelector(`#ring .node[data-id="${old}"].removed`);
  // Drawn in the next frame: wait (with a deadline) for the badge to go.
  await p.waitForSelector("#joint-badge", { state: "hidden", timeout: 5_000 });
  assert.equal(end.membership.voters.length, 3);
  assert.deepEqual(end.violations, []);
  await shot(p, "members-replaced.png");
  await p.close();
  assert.deepEqual(env.errors, [], "no page errors");
});
