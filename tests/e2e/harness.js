// What the end-to-end tests share: the `playground` binary serving www/ on a free port, Debian's
// headless Chromium through playwright-core, and helpers that read the page's state through its
// test hook (window.raftkv) and wait on it with deadlines, never with fixed sleeps.
//
// PLAYGROUND_BIN overrides the binary's path; CHROMIUM the browser's.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "../..");
export const ARTIFACTS = path.join(here, "artifacts");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TARGET = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");
const BIN = process.env.PLAYGROUND_BIN ?? path.join(TARGET, "debug", "playground");
/** The directory of the binaries beside the playground (kvserver, kvctl for live mode). */
export const BIN_DIR = path.dirname(BIN);
const ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];

/** Starts the playground binary on a free port, with `extra` arguments; resolves to `{server, url}`. */
function startServer(extra = []) {
  assert.ok(existsSync(BIN), `no playground binary at ${BIN} (cargo build -p raftkv-native --bin playground)`);
  assert.ok(existsSync(path.join(root, "www/pkg/raftkv_web.js")), "no www/pkg: build the wasm package first");
  const server = spawn(BIN, ["--addr", "127.0.0.1:0", "--dir", path.join(root, "www"), ...extra], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (d) => {
      out += d;
      const m = /(http:\/\/\S+\/)/.exec(out);
      if (m) resolve({ server, url: m[1] });
    });
    server.on("exit", (code) => reject(new Error(`playground exited (${code}) before serving: ${out}`)));
  });
}

/**
 * The server and a browser, for one test file: `await env.start()` in `before`, `env.stop()` in
 * `after`. `env.page(hash)` opens a page on the playground, collects its errors in
 * `env.errors`, and waits until it is ready. `serverArgs`: more arguments for the playground
 * (e.g. `--dev-cluster ...`).
 */
export function environment({ serverArgs = [] } = {}) {
  const env = {
    url: null, browser: null, server: null, errors: [],
    async start() {
      ({ server: env.server, url: env.url } = await startServer(serverArgs));
      env.browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    },
    async stop() {
      await env.browser?.close();
      env.server?.kill();
    },
    async newPage() {
      const p = await env.browser.newPage({ viewport: { width: 1280, height: 800 } });
      p.on("pageerror", (e) => env.errors.push(e.message));
      p.on("console", (m) => { if (m.type() === "error") env.errors.push(m.text()); });
      return p;
    },
    async page(hash) {
      const p = await env.newPage();
      await p.goto(`${env.url}${hash}`);
      await p.waitForSelector("body[data-ready]");
      return p;
    },
  };
  return env;
}

/** The page's state, read through its test hook. */
export const state = (p) => p.evaluate(() => window.raftkv.runner.state());
export const leaders = (st) => st.nodes.filter((n) => n.alive && n.role === "leader").map((n) => n.id);

/**
 * Waits (inside the page, re-checking every animation frame) until `pred(state, arg)` holds;
 * `pred` is sent as source, so it may use only its arguments. Returns the state then.
 */
export async function waitFor(p, pred, arg, what, { timeout = 20_000 } = {}) {
  try {
    await p.waitForFunction(([src, a]) => {
      const st = window.raftkv.runner?.state();
      return !!st && new Function(`return (${src})`)()(st, a);
    }, [pred.toString(), arg], { timeout });
  } catch (e) {
    const st = await state(p).catch(() => null);
    const link = p.url();
    const tail = (st?.trace ?? []).slice(-25).map((l) => `  ${l.at} ${l.node ?? "-"} ${l.text}`).join("\n");
    throw new Error(`timed out waiting for ${what} (sim time ${st?.now} ms): ${e.message}\nrun: ${link}\nlast trace lines:\n${tail}`);
  }
  return state(p);
}

/**
 * Waits (with a deadline) until the page has drawn everything: the panels redraw at most every
 * 120 ms, so one can lag the run by a few frames.
 */
export async function drawn(p, { timeout = 5_000 } = {}) {
  await p.waitForFunction(() => !window.raftkv.dirty, null, { timeout });
}

/**
 * The text of `sel` once it matches `re` (the page draws in its next frame, not when the run's
 * state changes): polls with a deadline and returns the text either way, for the assertion.
 */
export async function textOnceMatching(p, sel, re, { timeout = 5_000 } = {}) {
  try {
    await p.waitForFunction(([s, src, flags]) => new RegExp(src, flags).test(document.querySelector(s)?.textContent ?? ""), [sel, re.source, re.flags], { timeout });
  } catch { /* the caller's assertion says what the text was */ }
  return p.textContent(sel);
}

/** Clicks the play/pause button until the page is in the wanted mode. */
export async function setPlaying(p, on) {
  if ((await p.evaluate(() => window.raftkv.playing)) !== on) await p.click("#play");
  assert.equal(await p.evaluate(() => window.raftkv.playing), on);
}

/** Sets the speed slider (0: 1x, 1: 1/10x, 3: 1/1000x). */
export async function setSpeed(p, v) {
  await p.evaluate((x) => {
    const s = document.querySelector("#speed");
    s.value = String(x);
    s.dispatchEvent(new Event("input"));
  }, v);
}

/** Picks preset `name` from the scenario menu; returns the state it leaves the paused run in. */
export async function pickScenario(p, name) {
  await p.selectOption("#scenario", name);
  assert.equal(await p.evaluate(() => window.raftkv.playing), false, "a preset leaves the run paused");
  return state(p);
}

/**
 * Steps the run (the Step button's own path) until `pred(state, arg)` holds, at most `max`
 * steps; `pred` is sent as source, so it may use only its arguments. Returns the state once
 * the page drew it.
 */
export async function stepUntil(p, pred, arg, what, max = 3000) {
  const ok = await p.evaluate(([src, a, m]) => {
    const f = new Function(`return (${src})`)();
    const r = window.raftkv.runner;
    for (let i = 0; i < m; i++) {
      if (f(r.state(), a)) return true;
      r.step();
    }
    return f(r.state(), a);
  }, [pred.toString(), arg, max]);
  assert.ok(ok, `no ${what} within ${max} steps`);
  await drawn(p);
  return state(p);
}

/** Plays at 1x until a leader has settled (1.5 s in), then pauses; returns the state then. */
export async function settled(p) {
  await setSpeed(p, 0);
  await setPlaying(p, true);
  const st = await waitFor(p, (s) => s.nodes.some((n) => n.alive && n.role === "leader") && s.now > 1500, null, "a settled leader");
  await setPlaying(p, false);
  await drawn(p);
  return st;
}
