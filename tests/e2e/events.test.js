// The Events panel (issue 17, item 3): a filter by kind (state changes / messages / client),
// message deliveries and drops behind it, and one line for one commit across nodes.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as h from "./harness.js";

const env = h.environment();
before(() => env.start());
after(() => env.stop());

/** The Events lines shown, newest first: seq, kind, who, text, and the seqs a line stands for. */
const lines = (p) => p.$$eval("#trace li", (ls) => ls.map((l) => ({
  seq: Number(l.dataset.seq), kind: l.dataset.kind, who: l.querySelector(".who").textContent,
  text: l.querySelector(".txt").textContent, seqs: (l.dataset.seqs ?? l.dataset.seq).split(",").map(Number),
})));

/** Ticks or unticks the filter box of `kind`. */
const show = (p, kind, on) => p.setChecked(`#trace-filter input[data-kind="${kind}"]`, on);

test("Events: one line per commit across nodes, and a filter by kind with messages behind it", async () => {
  const p = await env.page("#n=5&seed=7&t=0");
  await p.evaluate(() => window.raftkv.runner.advanceTo(2000));
  await p.fill("#op-key", "x");
  await p.fill("#op-value", "1");
  await p.click("#client-form button[type=submit]");
  await p.evaluate(() => { const r = window.raftkv.runner; r.advanceTo(r.now() + 600); });
  await p.click("#step"); // a redraw of the panels now
  const st = await h.state(p);
  const op = st.ops[0];
  assert.equal(op.status, "ok", "the put committed");

  // The put's commit: every node's "commits up to #i" is on one line, at the first node's time.
  let shown = await lines(p);
  const commitsOf = (i) => st.trace.filter((l) => l.text === `commits up to #${i}`);
  const raw = commitsOf(op.index);
  assert.ok(raw.length >= 3, `a majority committed #${op.index}: ${JSON.stringify(raw)}`);
  const one = shown.filter((l) => /commit(s)? up to #(\d+)$/.exec(l.text)?.[2] === String(op.index));
  assert.equal(one.length, 1, `one line for #${op.index}: ${JSON.stringify(one)}`);
  assert.equal(one[0].text, `${raw.map((l) => l.node).join(", ")} commit up to #${op.index}`);
  assert.equal(one[0].who, `${raw.length} nodes`);
  assert.deepEqual(one[0].seqs, raw.map((l) => l.seq));
  assert.equal(await p.getAttribute(`#trace li[data-seq="${raw[0].seq}"]`, "title"),
    raw.map((l) => `${l.node} at ${l.at} ms`).join(", "));

  // By default: state changes and the client, no messages.
  assert.deepEqual([...new Set(shown.map((l) => l.kind))].sort(), ["client", "state"]);
  assert.ok(shown.some((l) => l.kind === "client" && /^op #1 (starts|ends)/.test(l.text)));

  // Messages on: the deliveries and drops the state keeps, merged in order among the rest.
  await show(p, "message", true);
  shown = await lines(p);
  const msgs = shown.filter((l) => l.kind === "message");
  assert.ok(msgs.length > 10, `${msgs.length} message lines`);
  assert.ok(msgs.every((l) => /^\S+→\S+$/.test(l.who) && /^\S+ .*(delivered|dropped \(.+\))$/.test(l.text)), JSON.stringify(msgs.slice(0, 3)));
  const newest = st.message_trace.at(-1);
  assert.equal(`${msgs[0].who} ${msgs[0].text}`, newest.text, "the link in the who column, the rest beside it");
  assert.deepEqual(msgs.map((l) => l.seq), st.message_trace.map((l) => l.seq).reverse(), "every message line kept, newest first");
  for (let i = 1; i < shown.length; i++) assert.ok(shown[i].seq < shown[i - 1].seq, "newest first, in one order");

  // State changes off: only messages and the client; client off too: only messages.
  await show(p, "state", false);
  shown = await lines(p);
  assert.ok(!shown.some((l) => l.kind === "state"));
  assert.ok(shown.some((l) => l.kind === "client"));
  await show(p, "client", false);
  shown = await lines(p);
  assert.deepEqual([...new Set(shown.map((l) => l.kind))], ["message"]);

  // Back to the default: the commit line is whole again.
  await show(p, "message", false);
  await show(p, "state", true);
  await show(p, "client", true);
  shown = await lines(p);
  assert.ok(!shown.some((l) => l.kind === "message"));
  assert.equal(shown.filter((l) => l.text === one[0].text).length, 1);
  await p.close();
  assert.deepEqual(env.errors, []);
});
