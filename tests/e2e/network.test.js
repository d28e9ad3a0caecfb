// The network as a control panel (issue 17, items 1 and 4): a message's drawer duplicates or
// delays it by hand, each a recorded action that a shared link replays exactly.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as h from "./harness.js";

const env = h.environment();
before(() => env.start());
after(() => env.stop());

const { stepUntil, settled } = h;

/** Opens the Share link of page `p` in a new page; returns that page's state there. */
async function replayed(p) {
  await p.click("#share");
  const other = await env.page(p.url().slice(p.url().indexOf("#")));
  const st = await h.state(other);
  await other.close();
  return st;
}

/** A page on `hash` with a settled leader; its state, the leader and a follower. */
async function withLeader(hash) {
  const p = await env.page(hash);
  const st = await settled(p);
  const l = st.nodes.find((n) => n.alive && n.role === "leader").id;
  const f = st.nodes.find((n) => n.alive && n.id !== l).id;
  return { p, st, l, f };
}

/** Opens message `id`'s drawer as a press on it does (aiming at it is inspect.test.js's). */
async function openMessage(p, id) {
  await p.evaluate((k) => document.querySelector(`#ring .msg[data-msg="${k}"]`)
    .dispatchEvent(new PointerEvent("pointerdown", { bubbles: true })), id);
  assert.deepEqual(await p.evaluate(() => window.raftkv.drawer), { kind: "msg", id });
  await h.drawn(p);
}

test("a message's drawer duplicates and delays it, and the link replays both", async () => {
  const p = await env.page("#n=5&seed=7");
  await settled(p);
  const st = await stepUntil(p, (s) => s.messages.some((m) => m.kind === "append_entries" && !m.dropped && m.deliver_at > s.now + 1), null, "an append in flight");
  const m = st.messages.find((x) => x.kind === "append_entries" && !x.dropped && x.deliver_at > st.now + 1);
  await openMessage(p, m.id);
  for (const b of ["drop", "duplicate", "delay"]) {
    assert.equal(await p.isEnabled(`#drawer button[data-do="${b}"]`), true, `${b} enabled`);
  }

  await p.click('#drawer button[data-do="duplicate"]');
  const dup = await h.state(p);
  const copies = dup.messages.filter((x) => x.id !== m.id && x.from === m.from && x.to === m.to && x.summary === m.summary && x.sent_at === dup.now);
  assert.equal(copies.length, 1, "one copy in flight");
  const copy = copies[0];
  assert.equal(copy.deliver_at, m.deliver_at + 5, "the copy lands 5 ms after the original");
  assert.ok(dup.messages.some((x) => x.id === m.id), "the original still flies");
  assert.match(p.url(), /duplicate_message/, "the duplicate is a recorded action");

  await p.click('#drawer button[data-do="delay"][data-arg="500"]');
  const late = await h.state(p);
  assert.equal(late.messages.find((x) => x.id === m.id).deliver_at, m.deliver_at + 500);
  assert.match(p.url(), /delay_message/, "the delay is a recorded action");
  const shown = await h.textOnceMatching(p, "#drawer table.fields", new RegExp(`${m.deliver_at + 500} ms`));
  assert.ok(shown.includes(`${m.deliver_at + 500} ms`), `the drawer shows the new delivery time: ${shown}`);

  // The copy lands at its time; the delayed original is still in flight then, past its old
  // delivery time, and lands 500 ms late.
  const ids = { copy: copy.id, orig: m.id };
  const c = await stepUntil(p, (s, k) => !s.messages.some((x) => x.id === k.copy), ids, "the copy landed");
  assert.equal(c.now, copy.deliver_at);
  assert.ok(c.messages.some((x) => x.id === m.id), "the original is held");
  assert.deepEqual(c.violations, []);
  const o = await stepUntil(p, (s, k) => !s.messages.some((x) => x.id === k.orig), ids, "the original landed", 20000);
  assert.equal(o.now, m.deliver_at + 500);
  assert.deepEqual(o.drops.filter((d) => d.from === m.from && d.to === m.to && d.at >= st.now), [], "neither was dropped");

  // The Share link replays both actions: the same messages in flight, at the same times.
  const there = await replayed(p);
  const here = await h.state(p);
  assert.equal(there.now, here.now);
  assert.deepEqual(there.messages, here.messages);
  assert.deepEqual(there.links, here.links);
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("a message filter set in the page drops only what it names, is listed, clears, and replays", async () => {
  const { p, l, f } = await withLeader("#n=5&seed=7");
  // Every append from the leader to one follower: that follower stops hearing from it.
  await p.selectOption("#filter-form select", "append_entries");
  await p.fill('#filter-form input[name="from"]', l);
  await p.fill('#filter-form input[name="to"]', f);
  await p.click('#filter-form button[type="submit"]');
  assert.match(p.url(), /filter:append_entries/, "the filter is a recorded action");
  const set = await h.state(p);
  assert.deepEqual(set.net.filters, [{ kind: "append_entries", from: l, to: f }]);
  await h.drawn(p);
  assert.equal(await p.textContent("#filters"), `drop append_entries ${l} → ${f} Clear`);
  // Run on: appends to the follower are dropped as filtered; no other link loses any.
  await h.setPlaying(p, true);
  const on = await h.waitFor(p, (s, k) => s.drops.some((d) => d.reason === "filtered"), null, "a filtered append");
  await h.setPlaying(p, false);
  for (const d of on.drops.filter((x) => x.reason === "filtered")) {
    assert.deepEqual([d.kind, d.from, d.to], ["append_entries", l, f]);
  }
  // The Share link replays the filter.
  assert.deepEqual((await replayed(p)).net.filters, set.net.filters);
  // Clear removes it from the run and the list.
  await p.click("#filters button");
  assert.deepEqual((await h.state(p)).net.filters, []);
  await h.drawn(p);
  assert.equal(await p.isHidden("#filters"), true);
  assert.match(p.url(), /unfilter:append_entries/);
  // A bad node is refused with a message, not a crash.
  await p.fill('#filter-form input[name="from"]', "n9");
  await p.click('#filter-form button[type="submit"]');
  assert.deepEqual((await h.state(p)).net.filters, []);
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("a link's drawer sets one direction's loss and latency; the global duplication slider", async () => {
  const { p, l, f } = await withLeader("#n=3&seed=7");
  let st;
  // The link's context menu's Inspect opens the drawer (a plain click would cut the link).
  const [a, b] = await p.evaluate(([x, y]) => {
    const g = [...document.querySelectorAll("#ring g.link")].find((e) => [x, y].includes(e.dataset.a) && [x, y].includes(e.dataset.b));
    g.dispatchEvent(new MouseEvent("contextmenu", { bubbles: true, cancelable: true, clientX: 400, clientY: 300 }));
    return [g.dataset.a, g.dataset.b];
  }, [l, f]);
  await p.click(`#menu button:text-is("Inspect ${a} ↔ ${b}")`);
  assert.deepEqual(await p.evaluate(() => window.raftkv.drawer), { kind: "link", a, b });
  await h.drawn(p);
  const out = a === l ? "ab" : "ba", back = a === l ? "ba" : "ab";
  await p.click(`#drawer button[data-do="link_slow"][data-arg="${out}"]`);
  const link = (s, x, y) => s.links.find((k) => k.from === x && k.to === y);
  st = await h.state(p);
  assert.deepEqual([link(st, l, f).latency_min, link(st, l, f).latency_max], [200, 400]);
  assert.deepEqual([link(st, f, l).latency_min, link(st, f, l).latency_max], [st.net.latency_min, st.net.latency_max], "only that direction");
  assert.ok(p.url().includes(`set_link:${l}:${f}:0:200:400`), `a recorded action: ${p.url()}`);
  // What the leader sends the follower from now on takes 200..400 ms.
  const from = st.now;
  st = await stepUntil(p, (s, k) => s.messages.some((m) => m.from === k.l && m.to === k.f && m.sent_at > k.from), { l, f, from }, "a message from the leader");
  for (const m of st.messages.filter((x) => x.from === l && x.to === f && x.sent_at > from)) {
    assert.ok(m.deliver_at - m.sent_at >= 200 && m.deliver_at - m.sent_at <= 400, JSON.stringify(m));
  }
  await p.click(`#drawer button[data-do="link_lossy"][data-arg="${back}"]`);
  assert.equal(link(await h.state(p), f, l).loss, 0.3);
  assert.ok((await h.textOnceMatching(p, "#drawer", /loss 30%/)).includes(`loss 30%, ${st.net.latency_min}–${st.net.latency_max} ms`), "the drawer shows it");
  await p.click(`#drawer button[data-do="link_reset"][data-arg="${out}"]`);
  st = await h.state(p);
  assert.deepEqual([link(st, l, f).latency_min, link(st, l, f).latency_max], [st.net.latency_min, st.net.latency_max]);
  // The global duplication slider.
  await p.evaluate(() => {
    const s = document.querySelector("#net-dup");
    s.value = "20";
    s.dispatchEvent(new Event("change"));
  });
  assert.equal((await h.state(p)).net.duplicate, 0.2);
  // The Share link replays every setting.
  const there = await replayed(p);
  const here = await h.state(p);
  assert.deepEqual([there.links, there.net], [here.links, here.net]);
  await p.close();
  assert.deepEqual(env.errors, []);
});
