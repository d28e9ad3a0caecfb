// Benchmarks of the playground in headless Chromium (after run.sh built www/pkg and the
// playground binary). Figures only: nothing here asserts a speed.
//
//   node bench.mjs          events/s the wasm simulator sustains, for 5 and 9 nodes: a fresh
//                           Playground advanced 100 ms at a time for ~2 s of wall time (compare
//                           with `cargo run --release -p raftkv-web --example events_per_sec`)
//   node bench.mjs fps      the page's frame rate with 9 nodes at 1x after 2 simulated minutes
//                           with client traffic (a put every simulated second), playing for 5 s
//                           with a put every 0.5 s, then paused for 3 s; with the main thread's
//                           busy share (CDP TaskDuration) of each phase
//   node bench.mjs fps trace   the same, and where the main thread's time went while playing
//                           (script, layout, paint, ...: top-level trace events, by name), with
//                           the elements that were layout roots: where to look when it drops
//
// WWW=dir serves another copy of www/ (an older build, say) for a before/after figure.

import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const BIN = process.env.PLAYGROUND_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, "target"), "debug", "playground");
const WWW = process.env.WWW ?? path.join(root, "www");
const server = spawn(BIN, ["--addr", "127.0.0.1:0", "--dir", WWW], { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise((resolve) => {
  let out = "";
  server.stdout.on("data", (d) => { out += d; const m = /(http:\/\/\S+\/)/.exec(out); if (m) resolve(m[1]); });
});
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"] });

async function eventsPerSec(page) {
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
}

/** Frames counted by requestAnimationFrame over `ms` of wall time, with `during` called every 500 ms. */
async function measure(page, cdp, ms, traffic) {
  const busy = async () => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "TaskDuration").value;
  const b0 = await busy();
  const r = await page.evaluate(([ms, traffic]) => new Promise((resolve) => {
    let frames = 0, worst = 0, last = null, k = 0;
    const t0 = performance.now();
    const timer = traffic ? setInterval(() => window.raftkv.runner.act("put", `k${k++ % 7}`, `v${k}`, ""), 500) : null;
    const tick = (ts) => {
      if (last != null) worst = Math.max(worst, ts - last);
      last = ts; frames++;
      if (ts - t0 < ms) requestAnimationFrame(tick);
      else { clearInterval(timer); resolve({ fps: frames / ((ts - t0) / 1000), worst }); }
    };
    requestAnimationFrame(tick);
  }), [ms, traffic]);
  const b1 = await busy();
  return { ...r, busy: (b1 - b0) / (ms / 1000) };
}

async function fps(page) {
  await page.goto(`${url}#n=9&seed=1`);
  await page.waitForSelector("body[data-ready]");
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  // Two simulated minutes with a put every simulated second, fast-forwarded, then 1x.
  await page.evaluate(() => {
    window.raftkv.setPlaying(false);
    const r = window.raftkv.runner;
    for (let s = 1; s <= 120; s++) { r.advanceTo(s * 1000); r.act("put", `k${s % 7}`, `v${s}`, ""); }
    const sp = document.querySelector("#speed");
    sp.value = "0"; sp.dispatchEvent(new Event("input"));
    window.raftkv.setPlaying(true);
  });
  const events = [];
  const tracing = process.argv[3] === "trace";
  if (tracing) {
    cdp.on("Tracing.dataCollected", (d) => events.push(...d.value));
    await cdp.send("Tracing.start", { categories: "devtools.timeline,disabled-by-default-devtools.timeline", transferMode: "ReportEvents" });
  }
  const play = await measure(page, cdp, 5000, true);
  if (tracing) {
    const done = new Promise((r) => cdp.once("Tracing.tracingComplete", r));
    await cdp.send("Tracing.end");
    await done;
    console.log(breakdown(events));
  }
  await page.evaluate(() => window.raftkv.setPlaying(false));
  const paused = await measure(page, cdp, 3000, false);
  const st = await page.evaluate(() => ({ now: window.raftkv.runner.now(), ops: window.raftkv.runner.state().ops.length, trace: window.raftkv.runner.state().trace.length }));
  const f = (x) => `${x.fps.toFixed(1)} fps, worst frame ${x.worst.toFixed(0)} ms, main thread busy ${(x.busy * 100).toFixed(0)}%`;
  console.log(`9 nodes at 1x after ${st.now} ms simulated (${st.ops} ops, ${st.trace} trace lines):`);
  console.log(`  playing, a put every 0.5 s: ${f(play)}`);
  console.log(`  paused:                     ${f(paused)}`);
}

/** The main thread's time by top-level trace event name (an event inside one of the same name
 * is not counted twice), and how often each set of layout roots was laid out. */
function breakdown(events) {
  const frames = events.filter((e) => e.name === "FireAnimationFrame" && e.ph === "X");
  const counts = new Map();
  for (const e of frames) counts.set(e.tid, (counts.get(e.tid) ?? 0) + 1);
  const tid = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
  const xs = events.filter((e) => e.ph === "X" && e.tid === tid && e.dur).sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const phases = ["FunctionCall", "UpdateLayoutTree", "Layout", "PrePaint", "Paint", "Layerize", "Commit", "ParseHTML", "MajorGC", "MinorGC"];
  const by = new Map(), roots = new Map(), stack = [];
  for (const e of xs) {
    while (stack.length && stack.at(-1).ts + stack.at(-1).dur <= e.ts) stack.pop();
    if (phases.includes(e.name) && !stack.some((s) => s.name === e.name)) by.set(e.name, (by.get(e.name) ?? 0) + e.dur);
    if (e.name === "Layout") {
      const k = (e.args?.endData?.layoutRoots ?? []).map((r) => r.nodeName).join(" + ");
      const r = roots.get(k) ?? { n: 0, us: 0 };
      r.n++; r.us += e.dur;
      roots.set(k, r);
    }
    stack.push(e);
  }
  const busy = xs.filter((e) => e.name === "RunTask").reduce((a, e) => a + e.dur, 0);
  const ms = (us) => `${(us / 1000).toFixed(0).padStart(6)} ms`;
  return [`  main thread while playing: ${ms(busy)} busy (script is FunctionCall)`,
    ...[...by].sort((a, b) => b[1] - a[1]).map(([k, v]) => `    ${k.padEnd(18)}${ms(v)}`),
    "  layouts by root:",
    ...[...roots].sort((a, b) => b[1].us - a[1].us).slice(0, 6).map(([k, r]) => `    ${String(r.n).padStart(4)} x ${ms(r.us)}  ${k}`)].join("\n");
}

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(url);
  await page.waitForSelector("body[data-ready]");
  if (process.argv[2] === "fps") await fps(page);
  else await eventsPerSec(page);
} finally {
  await browser.close();
  server.kill();
}
