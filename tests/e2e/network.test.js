// The network as a control panel (issue 17, items 1 and 4): a message's drawer duplicates or
// delays it by hand, each a recorded action that a shared link replays exactly.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as h from "./harness.js";

const env = h.environment();
before(() => env.start());
after(() => env.stop());

const { stepUntil, settled } = h;

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
  await p.click("#share");
  const here = await h.state(p);
  const other = await env.page(p.url().slice(p.url().indexOf("#")));
  const there = await h.state(other);
  assert.equal(there.now, here.now);
  assert.deepEqual(there.messages, here.messages);
  assert.deepEqual(there.links, here.links);
  await other.close();
  await p.close();
  assert.deepEqual(env.errors, []);
});

test("a message filter set in the page drops only what it names, is listed, clears, and replays", async () => {
  const p = await env.page("#n=5&seed=7");
  const st = await settled(p);
  const l = st.nodes.find((n) => n.alive && n.role === "leader").id;
  const f = st.nodes.find((n) => n.alive && n.id !== l).id;
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
  const other = await env.page(p.url().slice(p.url().indexOf("#")));
  assert.deepEqual((await h.state(other)).net.filters, set.net.filters);
  await other.close();
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
