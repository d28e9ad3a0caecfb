// Events/s the wasm simulator sustains in headless Chromium: for 5 and 9 nodes, a fresh
// Playground (default options, as the page makes) advanced 100 ms at a time for ~2 s of wall
// time. Compare with `cargo run --release -p raftkv-web --example events_per_sec`.
//
//   node bench.mjs   (after run.sh built www/pkg and the playground binary)

import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const BIN = process.env.PLAYGROUND_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, "target"), "debug", "playground");
const server = spawn(BIN, ["--addr", "127.0.0.1:0", "--dir", path.join(root, "www")], { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise((resolve) => {
  let out = "";
  server.stdout.on("data", (d) => { out += d; const m = /(http:\/\/\S+\/)/.exec(out); if (m) resolve(m[1]); });
});
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(url);
  await page.waitForSelector("body[data-ready]");
  await page.evaluate(() => window.raftkv.setPlaying(false));
  for (const nodes of [5, 9]) {
    const r = await page.evaluate((n) => {
      const pg = new window.raftkv.runner.mod.Playground({ nodes: n, seed: "1" });
      const t0 = performance.now();
      let withState = 0;
      while (performance.now() - t0 < 2000) pg.advance(100);
      const secs = (performance.now() - t0) / 1000;
      const ev = pg.events(), now = pg.now();
      // state() cost, as the page calls it once per frame.
      const s0 = performance.now();
      for (let i = 0; i < 50; i++) { pg.state(); withState++; }
      const stateMs = (performance.now() - s0) / withState;
      pg.free();
      return { ev, secs, now, stateMs };
    }, nodes);
    console.log(`${nodes} nodes: ${r.ev} events in ${r.secs.toFixed(2)} s = ${Math.round(r.ev / r.secs)} events/s ` +
      `(${r.now} ms simulated); state() ${r.stateMs.toFixed(2)} ms`);
  }
} finally {
  await browser.close();
  server.kill();
}
