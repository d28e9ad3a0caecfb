// The run in the address bar: seed, node count, options and every action with the simulated
// time (and event count) it was taken at, so a shared link replays the same run exactly.
//
// Format: #n=5&seed=42&snap=0&t=1234@567&a=120@35:kill:n1,300@80:put:x:1
// `t` is the point the link stops at: the time and the events run by then. Both are needed to
// stop exactly where a step (or a step back) left the run: events due at that very time may
// still be waiting. Links from before the event count (`t=1234`) run every event due by then.
// Fields inside an action are encodeURIComponent'd, which escapes the separators , : @ =.

/**
 * @typedef {object} Action
 * @property {number} t       simulated time it was taken at
 * @property {number} ev      events processed before it
 * @property {string} name    a Playground method: kill, restart, cut, heal, ...
 * @property {string[]} args  its arguments, as text
 */

/**
 * @typedef {object} RunSpec
 * @property {number} nodes
 * @property {string} seed
 * @property {number} snap       snapshot threshold (0: never)
 * @property {number|null} t     time to fast-forward to on load (null: start from zero and play)
 * @property {number|null} [ev]  events run by then (null: every event due by `t`)
 * @property {Action[]} actions
 */

/** Encodes a run as a location hash (without the leading '#'). */
export function encodeRun(spec) {
  const parts = [`n=${spec.nodes}`, `seed=${encodeURIComponent(spec.seed)}`];
  if (spec.snap) parts.push(`snap=${spec.snap}`);
  if (spec.t != null) parts.push(spec.ev != null ? `t=${spec.t}@${spec.ev}` : `t=${spec.t}`);
  if (spec.actions.length) {
    const a = spec.actions.map((x) =>
      [`${x.t}@${x.ev}`, x.name, ...x.args].map((s, i) => (i === 0 ? s : encodeURIComponent(s))).join(":"));
    parts.push(`a=${a.join(",")}`);
  }
  return parts.join("&");
}

/** Decodes a location hash; returns null when it holds no run. Throws on a malformed one. */
export function decodeRun(hash) {
  const h = hash.replace(/^#/, "");
  if (!h) return null;
  const kv = new Map();
  for (const part of h.split("&")) {
    const i = part.indexOf("=");
    if (i > 0) kv.set(part.slice(0, i), part.slice(i + 1));
  }
  if (!kv.has("seed") && !kv.has("n")) return null;
  const nodes = Number(kv.get("n") ?? 5);
  if (!Number.isInteger(nodes) || nodes < 3 || nodes > 9) throw new Error(`bad node count in link: ${kv.get("n")}`);
  const seed = decodeURIComponent(kv.get("seed") ?? "1");
  const snap = Number(kv.get("snap") ?? 0);
  let t = null, ev = null;
  if (kv.has("t")) {
    const m = /^(\d+)(?:@(\d+))?$/.exec(kv.get("t"));
    if (!m) throw new Error(`bad time in link: ${kv.get("t")}`);
    t = Number(m[1]);
    ev = m[2] == null ? null : Number(m[2]);
  }
  const actions = [];
  for (const item of (kv.get("a") ?? "").split(",").filter(Boolean)) {
    const [when, name, ...args] = item.split(":");
    const m = /^(\d+)@(\d+)$/.exec(when ?? "");
    if (!m || !name) throw new Error(`bad action in link: ${item}`);
    actions.push({ t: Number(m[1]), ev: Number(m[2]), name, args: args.map(decodeURIComponent) });
  }
  return { nodes, seed, snap, t, ev, actions };
}
