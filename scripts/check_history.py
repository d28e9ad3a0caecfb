#!/usr/bin/env python3
"""An independent reader and linearizability checker for raftkv's histories: the simulator's,
and the real-cluster suite's (tests/src/jepsen.rs), which adds the multi-key operations mput,
mdelete and mget.

It shares no code with core/src/sim/linearizability.rs: it reads the JSON-lines format exactly as
core/src/sim/history.rs documents it (and refuses anything else), then searches, key by key, for
an order of the operations that respects real time and the semantics of a register with
put/get/delete/cas (Wing & Gong with memoisation, as in Lowe's refinement). Multi-key operations
are atomic: the keys they name (directly or through other multi-key operations) are checked
together, as one set of registers that an mput/mdelete writes and an mget reads at one point.
It is here to show that the history files stand on their own, and to cross-check the Rust
checker.

    python3 scripts/check_history.py history.jsonl [more.jsonl ...]

Exit status 0: every file is well formed and linearizable; 1: a file is not linearizable (or
a read-your-writes read was served below its min_index); 2: a file is malformed. Stale reads
(`"stale": true`) are left out, as the Rust checker does: they may return old values by design.

The simulator's lines also say where each operation landed: `index` (an answered write's log
index), `node` and `applied` (the node that served a read and its applied index then), and
`min_index` (a read-your-writes read's floor). This script checks what it can without the
committed log, which only the simulator has: a read with a `min_index` was served at
`applied >= min_index`. (Whether the value was the committed one at `applied` is
core/src/sim/committed_reads.rs's check, run by the simulator.)

A write refused with `session_expired` (its session was dropped: idle past the ttl or over the
cap) is recorded `fail` when no attempt of it can have applied, and `unknown` when an earlier
attempt may have (before the session went); both are read here as for any other write, as the
Rust checker does: `fail` never happened, `unknown` may have happened once, at any time after
its invocation.
"""

import json
import sys

FIELDS = {"client", "op", "key", "keys", "entries", "values", "value", "expected", "new",
          "result", "invoke", "complete", "status", "stale", "index", "node", "applied",
          "min_index"}
MULTI = ("mput", "mdelete", "mget")
INF = float("inf")


class Malformed(Exception):
    pass


def is_index(x):
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def need(cond, line_no, what):
    if not cond:
        raise Malformed(f"line {line_no}: {what}")


def parse(path):
    """The operations of `path`, checked field by field against the documented format."""
    ops = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                o = json.loads(line)
            except json.JSONDecodeError as e:
                raise Malformed(f"line {n}: not JSON: {e}") from e
            need(isinstance(o, dict), n, "not an object")
            extra = set(o) - FIELDS
            need(not extra, n, f"unknown fields {sorted(extra)}")
            for field in ("client", "op", "invoke", "status"):
                need(field in o, n, f"missing {field}")
            need(isinstance(o["client"], str), n, "client is not a string")
            need(o["status"] in ("ok", "fail", "unknown"), n, f"unknown status {o['status']!r}")
            need(isinstance(o["invoke"], int) and o["invoke"] >= 0, n, "invoke is not a time")
            complete = o.get("complete")
            need(complete is None or (isinstance(complete, int) and complete >= o["invoke"]), n,
                 "complete is neither null nor a time at or after invoke")
            need((complete is None) == (o["status"] == "unknown") or o["status"] == "fail", n,
                 "complete must be null exactly when the status is unknown")
            op = o["op"]
            need(op in ("put", "get", "delete", "cas") + MULTI, n, f"unknown op {op!r}")
            if op in MULTI:
                need("key" not in o and "value" not in o, n, f"{op} carries key or value")
                if op == "mput":
                    e = o.get("entries")
                    need(isinstance(e, dict) and e and all(isinstance(v, str) for v in e.values()),
                         n, "mput without entries of string values")
                    need("keys" not in o and "values" not in o, n, "mput carries keys or values")
                else:
                    ks = o.get("keys")
                    need(isinstance(ks, list) and ks and all(isinstance(k, str) for k in ks)
                         and len(set(ks)) == len(ks), n, f"{op} without distinct string keys")
                    need("entries" not in o, n, f"{op} carries entries")
                if op == "mdelete":
                    need("values" not in o, n, "mdelete carries values")
                if op == "mget" and o["status"] == "ok":
                    vs = o.get("values")
                    need(isinstance(vs, dict) and set(vs) == set(o["keys"])
                         and all(v is None or isinstance(v, str) for v in vs.values()), n,
                         "answered mget without a value (or null) for each of its keys")
            else:
                need(isinstance(o.get("key"), str), n, "key is not a string")
                need(not {"keys", "entries", "values"} & set(o), n,
                     f"{op} carries multi-key fields")
            if op == "put":
                need(isinstance(o.get("value"), str), n, "put without a string value")
            if op == "get":
                need("value" in o and (o["value"] is None or isinstance(o["value"], str)), n,
                     "get value must be a string or null")
            if op in ("delete", "cas"):
                need("value" not in o, n, f"{op} carries a value")
            if op == "cas":
                need(isinstance(o.get("expected"), str) and isinstance(o.get("new"), str), n,
                     "cas without expected and new strings")
                if o["status"] == "ok":
                    need(o.get("result") in ("ok", "failed"), n, "answered cas without a result")
            else:
                need(not {"expected", "new", "result"} & set(o), n, f"{op} carries cas fields")
            need("stale" not in o or (op in ("get", "mget") and o["stale"] is True), n,
                 "stale is only for gets and mgets, and only true")
            if "index" in o:
                need(op not in ("get", "mget") and o["status"] == "ok", n,
                     "index is only for answered writes")
                need(is_index(o["index"]) and o["index"] >= 1, n, "index is not a log index")
            for field in ("node", "applied"):
                if field in o:
                    need(op == "get" and o["status"] == "ok", n,
                         f"{field} is only for answered gets")
            need("node" not in o or isinstance(o["node"], str), n, "node is not a string")
            need("applied" not in o or is_index(o["applied"]), n, "applied is not a log index")
            if "min_index" in o:
                need(op == "get", n, "min_index is only for gets")
                need(is_index(o["min_index"]), n, "min_index is not a log index")
            ops.append(o)
    return ops


def step(state, o, answered, pos):
    """The registers after `o` from `state`, or None when `o` cannot happen there. A state is
    a tuple of values by position in the component (`pos`: key -> position), None for a missing
    key. Unanswered writes may take effect: their outcome is whatever the registers make of
    them."""
    op = o["op"]

    def written(pairs):
        s = list(state)
        for k, v in pairs:
            s[pos[k]] = v
        return tuple(s)

    if op == "put":
        return written([(o["key"], o["value"])])
    if op == "delete":
        return written([(o["key"], None)])
    if op == "mput":
        return written(o["entries"].items())
    if op == "mdelete":
        return written((k, None) for k in o["keys"])
    if op == "get":
        return state if state[pos[o["key"]]] == o["value"] else None
    if op == "mget":
        return state if all(state[pos[k]] == v for k, v in o["values"].items()) else None
    # cas: "" also matches a missing key.
    cur = state[pos[o["key"]]]
    matches = cur == o["expected"] or (o["expected"] == "" and cur is None)
    if not answered:
        return written([(o["key"], o["new"])]) if matches else state
    if o["result"] == "ok":
        return written([(o["key"], o["new"])]) if matches else None
    return state if not matches else None


def linearizable(ops, pos):
    """Whether one component's operations have a legal order. `ops`: (invoke, complete, op,
    answered) with complete = INF for unanswered ones, which may also never take effect; `pos`:
    key -> position in the state."""
    ops = sorted(ops, key=lambda x: x[0])
    n = len(ops)
    required = sum(1 << i for i, x in enumerate(ops) if x[3])
    optional = [i for i, x in enumerate(ops) if not x[3]]
    start = tuple(None for _ in pos)
    seen = set()
    stack = [(0, start)]
    while stack:
        done, state = stack.pop()
        if done & required == required:
            return True
        if (done, state) in seen:
            continue
        seen.add((done, state))
        # Anything invoked before every pending answered operation's completion may go next.
        # Ops are sorted by invoke: scan the pending answered ones from the first until one is
        # invoked after the horizon (its completion, and every later one's, is past it).
        blocked = done | ~required
        first = (~blocked & (blocked + 1)).bit_length() - 1
        horizon = INF
        candidates = []
        i = first
        while i < n and ops[i][0] <= horizon:
            if not done >> i & 1 and ops[i][3]:
                horizon = min(horizon, ops[i][1])
                candidates.append(i)
            i += 1
        candidates += [j for j in optional if not done >> j & 1 and ops[j][0] <= horizon]
        for i in candidates:
            if ops[i][0] > horizon:
                continue
            nxt = step(state, ops[i][2], ops[i][3], pos)
            if nxt is not None:
                stack.append((done | 1 << i, nxt))
    return False


def keys_of(o):
    if o["op"] == "mput":
        return sorted(o["entries"])
    if o["op"] in ("mdelete", "mget"):
        return list(o["keys"])
    return [o["key"]]


def components(ops):
    """key -> its component's smallest key: keys one multi-key operation names go together."""
    parent = {}

    def root(k):
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for o in ops:
        ks = keys_of(o)
        for k in ks[1:]:
            a, b = root(ks[0]), root(k)
            if a != b:
                parent[max(a, b)] = min(a, b)
        root(ks[0])
    return {k: root(k) for k in parent}


def below_min_index(ops):
    """Reads served before the node applied the client's own write."""
    return [o for o in ops if "applied" in o and "min_index" in o and o["applied"] < o["min_index"]]


def check(path):
    """(operations, components of keys, components not linearizable, reads below their
    min_index) of `path`; a component is named by its keys joined with commas."""
    ops = parse(path)
    comp = components(ops)
    by_comp = {}
    for o in ops:
        if o["status"] == "fail" or o.get("stale"):
            continue  # surely not applied / allowed to be stale
        answered = o["status"] == "ok"
        if o["op"] in ("get", "mget") and not answered:
            continue  # a read without an answer constrains nothing
        complete = o["complete"] if answered else INF
        by_comp.setdefault(comp[keys_of(o)[0]], []).append((o["invoke"], complete, o, answered))
    members = {}
    for k, c in comp.items():
        members.setdefault(c, []).append(k)
    bad = []
    for c, v in sorted(by_comp.items()):
        keys = sorted(members[c])
        if not linearizable(v, {k: i for i, k in enumerate(keys)}):
            bad.append(",".join(keys))
    return len(ops), len(by_comp), bad, below_min_index(ops)


def main(paths):
    status = 0
    for p in paths:
        try:
            n, keys, bad, early = check(p)
        except Malformed as e:
            print(f"{p}: malformed: {e}")
            return 2
        if bad:
            print(f"{p}: NOT linearizable: keys {bad} ({n} operations)")
            status = 1
        elif early:
            print(f"{p}: a read-your-writes read was served below its min_index: {early[0]}")
            status = 1
        else:
            print(f"{p}: {n} operations on {keys} keys, linearizable")
    return status


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
