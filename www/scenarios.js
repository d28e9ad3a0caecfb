// Preset scenarios: each resets the run and fast-forwards through a short script of recorded
// actions, stopping just before (or just after) the interesting moment. Everything they do is
// recorded like a click, so the resulting link replays them.

/** @typedef {import("./runner.js").Runner} Runner */

function leaderOf(st) {
  return st.nodes.find((n) => n.alive && n.role === "leader") ?? null;
}

/** Advances in small steps until `pred(state)` holds or `maxMs` passed; returns the state. */
function runUntil(runner, pred, maxMs, stepMs = 5) {
  const end = runner.now() + maxMs;
  let st = runner.state();
  while (!pred(st) && runner.now() < end) {
    runner.advanceTo(runner.now() + stepMs);
    st = runner.state();
  }
  return st;
}

function needLeader(runner) {
  const st = runUntil(runner, leaderOf, 10_000);
  const l = leaderOf(st);
  if (!l) throw new Error("no leader was elected within 10 s of simulated time");
  return l;
}

/**
 * The first term in `trace` (readable lines) in which two different nodes became candidate and
 * nobody became leader: a split vote. Returns `{term, first}` (when the first candidacy was), or
 * null. Two candidates alone are not enough: one of them may still win a majority.
 */
export function splitTerm(trace) {
  const terms = new Map(); // term -> {candidates: Set, first, won}
  for (const line of trace) {
    const m = /^becomes (candidate|leader) in term (\d+)$/.exec(line.text);
    if (!m) continue;
    const t = terms.get(m[2]) ?? { candidates: new Set(), first: line.at, won: false };
    if (m[1] === "leader") t.won = true;
    else t.candidates.add(line.node);
    terms.set(m[2], t);
  }
  for (const [term, t] of terms) {
    if (t.candidates.size > 1 && !t.won) return { term: Number(term), first: t.first };
  }
  return null;
}

/** The presets: name -> (runner, seed) => a sentence telling what to watch. */
export const SCENARIOS = {
  "leader-crash"(runner, seed) {
    runner.reset({ nodes: 5, seed, snap: 0, actions: [] });
    const l = needLeader(runner);
    runner.advanceTo(runner.now() + 120);
    runner.act("put", "x", "1");
    runUntil(runner, (st) => st.ops.at(-1)?.status !== "pending", 1000);
    runner.advanceTo(runner.now() + 60);
    runner.act("kill", l.id);
    return `Leader ${l.id} crashed. Watch the followers' election timers run out and a new leader take over (x=1 survives).`;
  },

  "leader-minority"(runner, seed) {
    runner.reset({ nodes: 5, seed, snap: 0, actions: [] });
    const l = needLeader(runner);
    runner.advanceTo(runner.now() + 120);
    const st = runner.state();
    const others = st.nodes.map((n) => n.id).filter((id) => id !== l.id);
    const buddy = others[0];
    const majority = others.slice(1);
    for (const x of majority) {
      runner.act("cut_both", l.id, x);
      runner.act("cut_both", buddy, x);
    }
    runner.act("put", "y", "2");
    return `${l.id} leads but is cut off with only ${buddy}: it cannot commit. The majority (${majority.join(", ")}) elects a new leader; heal (h) and ${l.id} steps down.`;
  },

  "split-vote"(runner, seed) {
    // Look for a seed where, with slow links, two nodes campaign in the same term.
    const base = Number.parseInt(seed, 10) || 1;
    for (let s = base; s < base + 80; s++) {
      runner.reset({ nodes: 4, seed: String(s), snap: 0, actions: [] });
      runner.act("set_latency", 35, 70);
      runner.advanceTo(1500);
      const hit = splitTerm(runner.state().trace);
      if (hit) {
        runner.reset({ nodes: 4, seed: String(s), snap: 0, actions: [] });
        runner.act("set_latency", 35, 70);
        runner.advanceTo(Math.max(0, hit.first - 30));
        return `Seed ${s}: slow links, and two nodes will campaign in term ${hit.term} at nearly the same time. Step (s) or play slowly to watch the votes split and a later term win.`;
      }
    }
    throw new Error("no split vote found near this seed; try another seed");
  },

  "replace-leader"(runner, seed) {
    runner.reset({ nodes: 3, seed, snap: 0, actions: [] });
    const l = needLeader(runner);
    // A write first: once it commits, so has an entry of the leader's term, and the leader
    // takes configuration changes.
    runner.act("put", "x", "1", "");
    runUntil(runner, (st) => st.ops.at(-1)?.status !== "pending", 2000);
    runner.advanceTo(runner.now() + 60);
    const fresh = runner.act("add_node");
    runner.advanceTo(runner.now() + 30);
    // Refused for now (a change still in progress, say)? Ask again a little later.
    let idx = null;
    for (let tries = 0; idx == null; tries++) {
      try {
        idx = runner.act("replace", l.id, fresh);
      } catch (e) {
        if (tries >= 20 || leaderOf(runner.state())?.id !== l.id) throw e;
        runner.advanceTo(runner.now() + 25);
      }
    }
    return `${fresh} joined with empty stores, and leader ${l.id} proposed replacing itself by ${fresh} in one joint change (entry ${idx}). ` +
      `Watch the joint configuration (old / new badges) take effect while ${fresh} catches up, then ${l.id} leave it, step down and hand over with TimeoutNow (diamond): a new leader takes over and ${l.id} is greyed out.`;
  },

  snapshot(runner, seed) {
    runner.reset({ nodes: 5, seed, snap: 5, actions: [] });
    const l = needLeader(runner);
    runner.advanceTo(runner.now() + 120);
    const lag = runner.state().nodes.find((n) => n.id !== l.id).id;
    runner.act("kill", lag);
    for (let i = 1; i <= 12; i++) {
      runner.act("put", `k${i}`, `v${i}`);
      runner.advanceTo(runner.now() + 40);
    }
    runUntil(runner, (st) => st.ops.every((o) => o.status !== "pending"), 3000);
    runner.advanceTo(runner.now() + 100);
    runner.act("restart", lag);
    return `${lag} was down while 12 writes committed and the leader compacted its log (snapshot every 5 entries). It restarts now: watch the leader send it an install snapshot (purple).`;
  },
};
