// Inspect, never destroy by accident; votes and replication made visible (issue 17, items 1
// and 2): a click on a message opens it (and cuts nothing), a node's drawer has its state and
// actions, a one-way cut shows its direction, candidates show the votes they received, the
// Logs panel shows the leader's next/match index and the entries in flight, and a followed
// write is highlighted from log entry to message.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as h from "./harness.js";

const env = h.environment();
before(() => env.start());
after(() => env.stop());

const frames = (p, n) => p.evaluate((k) => new Promise((res) => {
  const f = () => (--k <= 0 ? res() : requestAnimationFrame(f));
  requestAnimationFrame(f);
}), n);

const { stepUntil, settled } = h;

test("clicking a message opens it with every field and cuts no link; Drop it drops it", async () => {
  const p = await env.page("#n=5&seed=7");
  await settled(p);
  // An append halfway along its link: clear of both nodes.
  const mid = (s, m) => m.kind === "append_entries" && !m.dropped && Math.abs((s.now - m.sent_at) / (m.deliver_at - m.sent_at) - 0.5) < 0.25;
  // Two messages can share a spot (an append and the reply crossing it on the same link): aim
  // only at one that is topmost at its own centre, stepping on until there is one.
  let st, aim, at;
  for (let tries = 0; !aim; tries++) {
    assert.ok(tries < 50, "no unobstructed append halfway along its link");
    st = await stepUntil(p, (s, src) => s.messages.some((m) => new Function(`return (${src})`)()(s, m)), mid.toString(), "an append halfway");
    for (const m of st.messages.filter((x) => mid(st, x))) {
      // A redraw in between can replace the element: no box then, and another try.
      const box = await p.locator(`#ring .msg[data-msg="${m.id}"] circle.hit`).boundingBox();
      if (!box || !box.width) continue;
      const c = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
      const top = await p.evaluate(({ x, y }) => document.elementFromPoint(x, y)?.closest(".msg")?.dataset.msg, c);
      if (top === String(m.id)) [aim, at] = [m, c];
      if (aim) break;
    }
    if (!aim) await p.evaluate(() => window.raftkv.runner.step());
    await frames(p, 2);
  }
  await p.mouse.click(at.x, at.y);
  const sel = await p.evaluate(() => window.raftkv.drawer);
  assert.equal(sel?.kind, "msg", "the click opened a message");
  assert.equal(sel.id, aim.id, "the message aimed at");
  const m = st.messages.find((x) => x.id === sel.id);
  assert.equal(m.kind, "append_entries");
  const after = await h.state(p);
  assert.deepEqual(after.links.filter((l) => l.cut), [], "no link cut by the click");
  const rows = await p.$$eval("#drawer table.fields th", (ths) => ths.map((t) => t.textContent));
  for (const f of ["kind", "term", "prev log index", "prev log term", "entries", "leader commit", "sent at", "delivery at"]) {
    assert.ok(rows.includes(f), `${f} in ${rows}`);
  }
  await p.click('#drawer button[data-do="drop"]');
  const dropped = await h.state(p);
  assert.ok(!dropped.messages.some((x) => x.id === m.id), "gone from flight");
  assert.ok(dropped.drops.some((d) => d.reason === "by_hand" && d.from === m.from && d.to === m.to));
  assert.ok(dropped.links.find((l) => l.from === m.from && l.to === m.to).dropped > 0);
  assert.match(p.url(), /drop_message/, "the drop is a recorded action");
  // The link replays the drop.
  const other = await env.page(p.url().slice(p.url().indexOf("#")));
  assert.deepEqual((await h.state(other)).drops, dropped.drops);
  await other.close();
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("a node's drawer: its state, a leader's per-peer progress, and its actions", async () => {
  const p = await env.page("#n=5&seed=7");
  const st = await settled(p);
  const l = st.nodes.find((n) => n.alive && n.role === "leader");
  await p.click(`#ring .node[data-id="${l.id}"]`);
  assert.deepEqual(await p.evaluate(() => window.raftkv.drawer), { kind: "node", id: l.id });
  const field = (name) => p.textContent(`#drawer td[data-f="${name}"]`);
  assert.equal(await field("role"), "leader");
  assert.equal(await field("term"), String(l.term));
  assert.equal(await field("commit index"), String(l.commit_index));
  const peers = await p.$$eval("#drawer table.progress tbody tr", (rs) => rs.map((r) => [...r.children].map((c) => c.textContent)));
  assert.equal(peers.length, 4, "one row per peer");
  for (const [id, next, match] of peers) {
    const pr = l.progress.find((x) => x.id === id);
    assert.deepEqual([Number(next), Number(match)], [pr.next_index, pr.match_index], id);
  }
  // A follower: its election timer counts down as time passes.
  const f = st.nodes.find((n) => n.alive && n.role === "follower");
  await p.click(`#ring .node[data-id="${f.id}"]`);
  assert.match(await field("election timer"), /fires in \d+ ms/);
  assert.equal(await field("voted for"), f.voted_for ?? "–");
  // Time out now: its timer fires, and it campaigns.
  await p.click('#drawer button[data-do="timeout"]');
  await stepUntil(p, (s, id) => s.trace.some((t) => t.node === id && /becomes (pre-)?candidate/.test(t.text)), f.id, `${f.id} campaigning`, 200);
  // Kill and restart from the drawer; the context menu kills too.
  await p.click('#drawer button[data-do="kill"]');
  assert.equal((await h.state(p)).nodes.find((n) => n.id === f.id).alive, false);
  await p.click('#drawer button[data-do="restart"]');
  assert.equal((await h.state(p)).nodes.find((n) => n.id === f.id).alive, true);
  await p.click(`#ring .node[data-id="${f.id}"]`, { button: "right" });
  await p.click('#menu button:text-is("Kill")');
  assert.equal((await h.state(p)).nodes.find((n) => n.id === f.id).alive, false, "killed from the context menu");
  // Send request here: the client form's request goes to that node.
  const other = st.nodes.find((n) => n.alive && n.id !== f.id && n.id !== l.id);
  await p.click(`#ring .node[data-id="${other.id}"]`);
  await p.click('#drawer button[data-do="send"]');
  assert.equal((await h.state(p)).ops.at(-1).target, other.id);
  await p.keyboard.press("Escape");
  assert.equal(await p.evaluate(() => window.raftkv.drawer), null);
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("a one-way cut shows its direction with an arrow and a label", async () => {
  const p = await env.page("#n=5&seed=7");
  await settled(p);
  const link = p.locator('#ring .link[data-a="n1"][data-b="n2"]');
  // Shift-click near n1: the direction leaving n1 is cut.
  const a = await p.locator('#ring .node[data-id="n1"]').boundingBox();
  const b = await p.locator('#ring .node[data-id="n2"]').boundingBox();
  const x = a.x + a.width / 2 + (b.x - a.x) * 0.3, y = a.y + a.height / 2 + (b.y - a.y) * 0.3;
  await p.keyboard.down("Shift");
  await p.mouse.click(x, y);
  await p.keyboard.up("Shift");
  const st = await h.state(p);
  const cut = st.links.filter((l) => l.cut).map((l) => `${l.from}>${l.to}`);
  assert.deepEqual(cut, ["n1>n2"]);
  assert.equal(await link.locator(".cutlabel").textContent(), "n1 ⇸ n2");
  const markers = await link.locator("line.dir").evaluateAll((ls) => ls.map((l) => l.getAttribute("marker-end")));
  assert.deepEqual(markers.filter(Boolean), ["url(#arrow)"], "one arrow, on the cut direction");
  // Cut both ways: no direction to show.
  await p.keyboard.press("h");
  await link.click();
  assert.equal(await link.locator(".cutlabel").textContent(), "");
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("candidates show the votes they received; every node says whom it voted for; replies carry ✓/✗", async () => {
  const p = await env.page("#n=5&seed=7&t=0");
  assert.equal(await p.evaluate(() => window.raftkv.playing), false);
  // Step through the first election until a candidate holds a granted vote.
  const st = await stepUntil(p, (s) => s.nodes.some((n) => (n.role === "candidate" || n.role === "pre_candidate") && n.votes.some((v) => v.granted)), null, "a granted vote");
  const c = st.nodes.find((n) => (n.role === "candidate" || n.role === "pre_candidate") && n.votes.some((v) => v.granted));
  const dots = await p.$$eval(`#ring .node[data-id="${c.id}"] .vdot`, (ds) => ds.map((d) => [d.classList.contains("granted"), d.textContent.trim()[0]]));
  assert.deepEqual(dots, c.votes.map((v) => [v.granted, v.granted ? "✓" : "✗"]));
  for (const n of st.nodes) {
    const text = await p.textContent(`#ring .node[data-id="${n.id}"] .vote`);
    assert.equal(text, n.voted_for ? `voted ${n.voted_for} (t${n.term})` : `no vote in t${n.term}`);
  }
  const reply = await stepUntil(p, (s) => s.messages.some((m) => m.kind.endsWith("vote_response")), null, "a vote reply in flight");
  for (const m of reply.messages.filter((x) => x.granted != null)) {
    const mark = await p.textContent(`#ring .msg[data-msg="${m.id}"] .verdict`);
    assert.equal(mark, m.granted ? "✓" : "✗");
  }
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("Logs shows the leader's next/match per follower and the entries in flight; a followed write is highlighted", async () => {
  const p = await env.page("#n=3&seed=9");
  const st0 = await settled(p);
  const l = st0.nodes.find((n) => n.role === "leader");
  const id = await p.evaluate(() => window.raftkv.runner.act("put", "x", "1", ""));
  await p.click(`#ops li[data-op="${id}"]`);
  assert.equal(await p.evaluate(() => window.raftkv.followOp), id);
  // (The client registers its session first: the put is the entry after that one.)
  const carrying = (s) => {
    const e = s.nodes.find((n) => n.role === "leader")?.log.find((x) => x.summary === "put x=1");
    return e && s.messages.find((m) => m.entries && !m.dropped && m.entries[0] <= e.index && e.index <= m.entries[1]);
  };
  const st = await stepUntil(p, (s) => {
    const e = s.nodes.find((n) => n.role === "leader")?.log.find((x) => x.summary === "put x=1");
    return !!e && s.messages.some((m) => m.entries && !m.dropped && m.entries[0] <= e.index && e.index <= m.entries[1]);
  }, null, "an AppendEntries carrying the put");
  const m = carrying(st);
  await p.waitForSelector(`#logs .logrow[data-node="${m.to}"] [data-i="${m.entries[0]}"].inflight`);
  await p.waitForSelector(`#ring .msg.follow[data-msg="${m.id}"]`);
  const leader = st.nodes.find((n) => n.id === l.id);
  for (const pr of leader.progress.filter((x) => x.id !== l.id)) {
    await p.waitForSelector(`#logs .logrow[data-node="${pr.id}"] [data-i="${pr.next_index}"].next`);
    if (pr.match_index > 0) await p.waitForSelector(`#logs .logrow[data-node="${pr.id}"] [data-i="${pr.match_index}"].match`);
  }
  await h.setPlaying(p, true);
  const done = await h.waitFor(p, (s, k) => s.ops.find((o) => o.id === k).status === "ok", id, "the put acknowledged");
  await h.setPlaying(p, false);
  const idx = done.ops.find((o) => o.id === id).index;
  await p.waitForSelector(`#logs .logrow[data-node="${l.id}"] [data-i="${idx}"].follow`);
  await p.waitForSelector(`#ops li.op.follow[data-op="${id}"]`);
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("the network from the page: loss and latency, a partition, heal all (item 4, in part)", async () => {
  const p = await env.page("#n=5&seed=7");
  await settled(p);
  await p.evaluate(() => {
    const s = document.querySelector("#net-loss");
    s.value = "20";
    s.dispatchEvent(new Event("change"));
  });
  await p.fill("#net-lat-max", "80");
  await p.press("#net-lat-max", "Enter");
  await p.fill("#net-lat-min", "40");
  await p.press("#net-lat-min", "Enter");
  let st = await h.state(p);
  assert.equal(st.net.loss, 0.2);
  assert.deepEqual([st.net.latency_min, st.net.latency_max], [40, 80]);
  await p.fill("#partition", "n1,n2 | n3,n4,n5");
  await p.click('#partition-form button[type="submit"]');
  st = await h.state(p);
  const cut = (a, b) => st.links.find((l) => l.from === a && l.to === b).cut;
  for (const a of ["n1", "n2"]) for (const b of ["n3", "n4", "n5"]) assert.ok(cut(a, b) && cut(b, a), `${a}-${b} cut`);
  assert.ok(!cut("n1", "n2") && !cut("n3", "n4") && !cut("n4", "n5"), "links within a group kept");
  assert.match(p.url(), /partition/, "a recorded action");
  await p.click("#heal-all");
  assert.deepEqual((await h.state(p)).links.filter((l) => l.cut), []);
  await p.fill("#partition", "n1 | n1");
  await p.click('#partition-form button[type="submit"]');
  assert.match(await p.textContent("#toast"), /named twice/);
  await p.close();
  assert.deepEqual(env.errors, []);
});
