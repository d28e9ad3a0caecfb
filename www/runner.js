// Owns the Playground instance: every call goes through `guard`, actions are recorded with their
// simulated time and event count, recorded actions are replayed at the same point, and real
// time is turned into whole simulated milliseconds (the fraction is kept for smooth drawing).
//
// Rewinding: a run is its seed plus its actions, so going back in time is building the run again
// and replaying the recorded actions up to the wanted point; the ones past it stay pending and
// replay as the clock reaches them again. An action taken while rewound starts a branch: the
// recorded future is dropped.

/**
 * Methods a recorded action may name, with how many arguments each takes. The client's
 * operations take the node to send to last ("" for the leader; links recorded before it had
 * one leave it out).
 */
export const ACTIONS = {
  kill: 1, restart: 1, cut: 2, heal: 2, cut_both: 2, heal_both: 2, isolate: 1, heal_all: 0,
  set_loss: 1, set_latency: 2, put: 3, get: 3, delete: 2, cas: 4,
  add_node: 0, add_learner: 1, promote: 1, remove: 1, replace: 2, transfer_leader: 1,
  set_clock_drift: 2, jump_clock: 2, drop_message: 1, duplicate_message: 1, delay_message: 2,
  partition: 1, filter: 3, unfilter: 3, set_link: 5, set_duplicate: 1,
};
/** The arguments that are numbers, by action (the rest are strings). */
const NUMERIC = { set_loss: [0], set_latency: [0, 1], set_clock_drift: [1], jump_clock: [1],
  drop_message: [0], duplicate_message: [0], delay_message: [0, 1], set_link: [2, 3, 4],
  set_duplicate: [0] };

/** Log entries per node the state carries: the Logs panel's columns and a few more. */
export const LOG_LEN = 32;
/** Trace lines the state carries: the Events panel's length. */
export const TRACE_LEN = 120;
/** Message lines (deliveries, drops) the state carries, for the Events panel's message filter. */
export const MESSAGE_LINES = 80;

/**
 * A point of a run: simulated time and events run. Both only grow, so points are ordered by
 * events, then time.
 * @typedef {{t: number, ev: number}} Point
 */

/** Whether point `a` comes after point `b`. */
export function after(a, b) {
  return a.ev > b.ev || (a.ev === b.ev && a.t > b.t);
}

/** Raised when the simulator panicked (or otherwise trapped): the instance is unusable. */
export class SimCrash extends Error {}

export class Runner {
  /**
   * @param {any} mod the wasm package module (Playground, take_panic_message)
   */
  constructor(mod) {
    this.mod = mod;
    /** @type {any} */ this.pg = null;
    this.spec = { nodes: 5, seed: "1", snap: 0, t: null, actions: [] };
    this.pending = [];   // actions still to replay, oldest first
    this.frac = 0;       // simulated time not yet advanced, < 1 ms
    this.crashed = null; // the panic message once the simulator trapped
    this.cache = null;
    /** Bumped on every change of the run (time moved, an action, a reset): the page redraws
     * only when it or the drawing time changed. */
    this.version = 0;
    /** Bumped on every reset: panels that append (Events) start over. */
    this.generation = 0;
    /** @type {Point} The furthest point the run reached: where scrubbing forward can go. */
    this.furthest = { t: 0, ev: 0 };
    /** Called with `{at, dropped, until}` when an action taken while rewound (or while a link's
     * actions were still to replay) drops the recorded future: `dropped` actions, up to `until`. */
    this.onBranch = null;
  }

  /** Whether a run is live: built, and not crashed. */
  get live() { return !!this.pg && !this.crashed; }

  /** Calls `f` on the playground; a wasm trap becomes a SimCrash with the panic's message. */
  guard(f) {
    if (this.crashed) throw new SimCrash(this.crashed);
    try {
      return f(this.pg);
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError || /unreachable|recursive use/.test(String(e?.message))) {
        let msg = null;
        try { msg = this.mod.take_panic_message?.(); } catch { /* the module itself is gone */ }
        this.crashed = msg || String(e?.message || e);
        throw new SimCrash(this.crashed);
      }
      throw e instanceof Error ? e : new Error(String(e));
    }
  }

  /**
   * Starts a run; replays `spec.actions` as the clock reaches them (all at once up to spec.t).
   * The new instance is built before the old one is let go: when the options are refused (a
   * bad node count, say) this throws and the old run keeps going, untouched.
   */
  reset(spec) {
    this.rebuild(spec);
    if (spec.t != null && spec.ev != null) this.goTo({ t: spec.t, ev: spec.ev });
    else if (spec.t != null) this.advanceTo(spec.t);
    this.furthest = this.point();
  }

  /** Builds the run of `spec` anew at time 0, its actions all pending (see reset). */
  rebuild(spec) {
    // The state carries no more than the page shows (22 log columns, 120 Events lines): it is
    // serialized every frame, and its cost grows with what it holds.
    const opts = { nodes: spec.nodes, seed: String(spec.seed), log_len: LOG_LEN, trace_len: TRACE_LEN, message_lines: MESSAGE_LINES };
    if (spec.snap) opts.snapshot_threshold = spec.snap;
    let pg;
    try {
      pg = new this.mod.Playground(opts);
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) {
        this.crashed = this.mod.take_panic_message?.() || String(e.message);
        throw new SimCrash(this.crashed);
      }
      throw e instanceof Error ? e : new Error(String(e));
    }
    try { this.pg?.free(); } catch { /* a crashed instance may not free */ }
    this.pg = pg;
    this.crashed = null;
    this.frac = 0;
    this.cache = null;
    this.version++;
    this.generation++;
    this.spec = { nodes: spec.nodes, seed: String(spec.seed), snap: spec.snap ?? 0, t: null, actions: [] };
    this.pending = [...(spec.actions ?? [])];
  }

  now() { return this.guard((pg) => pg.now()); }

  events() { return this.guard((pg) => pg.events()); }

  /** @returns {Point} where the run is now */
  point() { return { t: this.now(), ev: this.events() }; }

  /** Whether the run is behind the furthest point it reached (scrubbing forward replays it). */
  get rewound() { return this.live && after(this.furthest, this.point()); }

  /** The furthest point follows the run whenever the run passes it. */
  reached() {
    const p = this.point();
    if (after(p, this.furthest)) this.furthest = p;
  }

  /** Applies the pending actions taken at or before point `p` (each at its own point). */
  replayUpTo(p) {
    while (this.pending.length && !after(this.pending[0], p)) {
      const a = this.pending.shift();
      this.guard((pg) => pg.run_to(a.t, a.ev));
      this.replay(a);
    }
  }

  /** Goes forward to exactly point `p`: `p.ev` events run and the clock at `p.t`. */
  goTo(p) {
    this.replayUpTo(p);
    this.guard((pg) => pg.run_to(p.t, p.ev));
    this.frac = 0;
    this.cache = null;
    this.version++;
    this.reached();
  }

  /**
   * Builds the run again from its seed with every recorded action (those applied and those
   * still pending) and replays it to time `t`, or to exactly point `{t, ev}` when `ev` is given;
   * the actions past that point stay pending. The furthest point is kept, so the run can go
   * forward again to where it was. Going forward is no rebuild: the run just advances.
   */
  rewindTo(t, ev = null) {
    const to = ev == null ? null : { t, ev };
    const here = this.point();
    if (to ? !after(here, to) : t >= here.t) {
      if (to) this.goTo(to); else this.advanceTo(t);
      return;
    }
    const furthest = this.furthest;
    this.rebuild(this.runSpec());
    if (to) this.goTo(to); else this.advanceTo(t);
    this.furthest = furthest;
    this.reached();
  }

  /**
   * Goes back one event: to the moment before the last event ran, with every action taken
   * before it (those taken after it come back as the clock reaches them). The clock stands
   * where a single step to the event before would have left it. Returns false at the start.
   */
  stepBack() {
    const ev = this.events();
    if (ev === 0) return false;
    const furthest = this.furthest;
    this.rebuild(this.runSpec());
    // Every action taken before event `ev` ran (after at most `ev - 1` events), whatever its time.
    this.replayUpTo({ t: Infinity, ev: ev - 1 });
    this.guard((pg) => pg.run_events(ev - 1));
    this.cache = null;
    this.version++;
    this.furthest = furthest;
    return true;
  }

  /** Simulated time for drawing: the clock plus the fraction not yet advanced. */
  viewTime() { return this.now() + this.frac; }

  /** Advances by `simMs` (fractional), replaying recorded actions on the way. */
  advanceBy(simMs) {
    this.frac += simMs;
    const whole = Math.floor(this.frac);
    if (whole <= 0) return;
    this.frac -= whole;
    this.advanceTo(this.now() + whole);
  }

  /** Advances to absolute time `t`, applying recorded actions at their (time, event) points. */
  advanceTo(t) {
    while (this.pending.length && this.pending[0].t <= t) {
      const a = this.pending.shift();
      this.guard((pg) => pg.run_to(a.t, a.ev));
      this.replay(a);
    }
    const now = this.now();
    if (t > now) this.guard((pg) => pg.advance(t - now));
    this.cache = null;
    this.version++;
    this.reached();
  }

  /**
   * Runs the next event; false when nothing is scheduled. A recorded action due before it is
   * the step instead, together with any others taken at the same point (one gesture, such as
   * healing every link of a node, is several actions).
   */
  step() {
    this.frac = 0;
    const next = this.pending[0];
    if (next && next.ev <= this.events()) {
      this.replayUpTo({ t: next.t, ev: next.ev });
      this.cache = null;
      this.version++;
      this.reached();
      return true;
    }
    const r = this.guard((pg) => pg.step());
    this.cache = null;
    this.version++;
    this.reached();
    return r;
  }

  /**
   * Takes an action now and records it: every change the page makes to a run goes through
   * here, so the run stays its seed plus its actions (what a link replays). Returns what the method returned (an op id for ops). */
  act(name, ...args) {
    if (!(name in ACTIONS)) throw new Error(`unknown action ${name}`);
    const a = { t: this.now(), ev: this.events(), name, args: args.map(String) };
    // A new action forks the run: the recorded future (the rest of a replayed link, or what
    // was ahead of a rewind) no longer applies.
    if (this.pending.length || this.rewound) {
      const branch = { at: { t: a.t, ev: a.ev }, dropped: this.pending.length, until: this.furthest };
      this.pending = [];
      this.furthest = { t: a.t, ev: a.ev };
      this.onBranch?.(branch);
    }
    return this.apply(a);
  }

  /**
   * Applies and records `a`. It is recorded even when refused (a membership change the leader
   * turned down, say): the attempt left its trace in the run, so a replay makes it too.
   */
  apply(a) {
    const num = NUMERIC[a.name] ?? [];
    const args = a.args.map((x, i) => (num.includes(i) ? Number(x) : x));
    const f = this.pg?.[a.name];
    if (typeof f !== "function" || !(a.name in ACTIONS)) throw new Error(`this build cannot ${a.name}`);
    this.spec.actions.push(a);
    this.cache = null;
    this.version++;
    return this.guard((pg) => f.apply(pg, args));
  }

  /** Applies a recorded action again: a refusal is what happened then too, not an error now. */
  replay(a) {
    try {
      this.apply(a);
    } catch (e) {
      if (e instanceof SimCrash) throw e;
    }
  }

  /** The state, cached until the next change. */
  state() {
    if (!this.cache) this.cache = this.guard((pg) => pg.state());
    return this.cache;
  }

  /**
   * The run, ready for encodeRun: `t` and `ev` are the current point, and the actions are all
   * the recorded ones, those still pending after a rewind included (a branch has dropped them).
   */
  runSpec() {
    const here = this.crashed ? { t: this.spec.t, ev: null } : this.point();
    return { ...this.spec, t: here.t, ev: here.ev, actions: [...this.spec.actions, ...this.pending] };
  }
}
