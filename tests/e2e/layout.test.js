// The layout adapts from phone width to 1920 px (issue 17, item 6): nothing runs off-screen,
// the ring sits above the panels on a narrow screen and grows on a wide one, and every node's
// column of the key-value table can be reached. A screenshot of each size is kept in
// artifacts/ for a person to look at; the checks are on the geometry.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import * as h from "./harness.js";

const env = h.environment();
before(() => env.start());
after(() => env.stop());

const SIZES = [[390, 844], [1024, 768], [1920, 1080]];

for (const [w, hgt] of SIZES) {
  test(`at ${w}x${hgt} nothing overflows, and the kv table reaches every node`, async () => {
    const p = await env.browser.newPage({ viewport: { width: w, height: hgt } });
    p.on("pageerror", (e) => env.errors.push(e.message));
    await p.goto(`${env.url}#n=9&seed=5`);
    await p.waitForSelector("body[data-ready]");
    await h.setSpeed(p, 0);
    await h.setPlaying(p, true);
    await h.waitFor(p, (s) => s.nodes.some((n) => n.role === "leader"), null, "a leader");
    for (const k of ["alpha", "beta", "gamma"]) await p.evaluate((key) => window.raftkv.runner.act("put", key, `${key}-value`, ""), k);
    await h.waitFor(p, (s) => s.nodes.every((n) => n.kv.gamma), null, "the writes everywhere");
    await h.setPlaying(p, false);
    await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

    const geo = await p.evaluate(() => {
      const r = (e) => e.getBoundingClientRect();
      const out = [...document.querySelectorAll("header.bar *")].filter((e) => e.getClientRects().length)
        .map((e) => ({ what: e.id || e.tagName, ...r(e).toJSON() }))
        .filter((b) => b.left < -0.5 || b.right > innerWidth + 0.5);
      return {
        scrollWidth: document.documentElement.scrollWidth, innerWidth,
        out, ring: r(document.querySelector("#ring")).toJSON(), panels: r(document.querySelector(".panels")).toJSON(),
      };
    });
    assert.ok(geo.scrollWidth <= geo.innerWidth, `page ${geo.scrollWidth} px wide in a ${geo.innerWidth} px window`);
    assert.deepEqual(geo.out, [], "header elements outside the viewport");
    if (w < 900) {
      assert.ok(geo.ring.bottom <= geo.panels.top + 1, "the ring sits above the panels");
      assert.ok(geo.ring.width >= w * 0.8, `the ring spans the screen (${geo.ring.width} px)`);
    } else {
      assert.ok(geo.ring.right <= geo.panels.left + 1, "the ring beside the panels");
    }
    if (w >= 1920) assert.ok(Math.min(geo.ring.width, geo.ring.height) > 600, `the ring grows (${geo.ring.width}x${geo.ring.height})`);

    // The last node's column of the kv table: scrolled to, it shows inside the table's box.
    const kv = await p.evaluate(() => {
      const box = document.querySelector("#kv");
      box.scrollLeft = box.scrollWidth;
      const th = document.querySelector('#kv th[data-node="n9"]');
      const a = box.getBoundingClientRect(), b = th.getBoundingClientRect();
      return { inside: b.left >= a.left - 1 && b.right <= a.right + 1, text: th.textContent };
    });
    assert.deepEqual(kv, { inside: true, text: "n9" }, "n9's column reachable");

    mkdirSync(h.ARTIFACTS, { recursive: true });
    const shot = path.join(h.ARTIFACTS, `layout-${w}x${hgt}.png`);
    await p.screenshot({ path: shot, fullPage: true });
    console.log(`# screenshot: ${shot}`);
    await p.close();
    assert.deepEqual(env.errors, []);
  });
}
