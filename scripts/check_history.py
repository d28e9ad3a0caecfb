#!/usr/bin/env python3
"""An independent reader and linearizability checker for raftkv's simulator histories.

It shares no code with core/src/sim/linearizability.rs: it reads the JSON-lines format exactly as
core/src/sim/history.rs documents it (and refuses anything else), then searches, key by key, for
an order of the operations that respects real time and the semantics of a register with
put/get/delete/cas (Wing & Gong with memoisation, as in Lowe's refinement). It is here to show
that the history files stand on their own, and to cross-check the Rust checker.

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

FIELDS = {"client", "op", "key", "value", "expected", "new", "result", "invoke", "complete",
          "status", "stale", "index", "node", "applied", "min_index"}
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
            for field in ("client", "op", "key", "invoke", "status"):
                need(field in o, n, f"missing {field}")
            need(isinstance(o["client"], str), n, "client is not a string")
            need(isinstance(o["key"], str), n, "key is not a string")
            need(o["op"] in ("put", "get", "delete", "cas"), n, f"unknown op {o['op']!r}")
            need(o["status"] in ("ok", "fail", "unknown"), n, f"unknown status {o['status']!r}")
            need(isinstance(o["invoke"], int) and o["invoke"] >= 0, n, "invoke is not a time")
            complete = o.get("complete")
            need(complete is None or (isinstance(complete, int) and complete >= o["invoke"]), n,
                 "complete is neither null nor a time at or after invoke")
            need((complete is None) == (o["status"] == "unknown") or o["status"] == "fail", n,
                 "complete must be null exactly when the status is unknown")
            op = o["op"]
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
            need("stale" not in o or (op == "get" and o["stale"] is True), n,
                 "stale is only for gets, and only true")
            if "index" in o:
                need(op != "get" and o["status"] == "ok", n, "index is only for answered writes")
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


def step(state, o, answered):
    """The register after `o` from `state`, or None when `o` cannot happen there. A state is
    the value, or None for a missing key. Unanswered writes may take effect: their outcome is
    whatever the register makes of them."""
    op = o["op"]
    if op == "put":
        return ("v", o["value"])
    if op == "delete":
        return ("v", None)
    if op == "get":
        return ("v", state) if state == o["value"] else None
    # cas: "" also matches a missing key.
    matches = state == o["expected"] or (o["expected"] == "" and state is None)
    if not answered:
        return ("v", o["new"] if matches else state)
    if o["result"] == "ok":
        return ("v", o["new"]) if matches else None
    return ("v", state) if not matches else None


def linearizable(ops):
    """Whether one key's operations have a legal order. `ops`: (invoke, complete, op, answered)
    with complete = INF for unanswered ones, which may also never take effect."""
    n = len(ops)
    required = sum(1 << i for i, x in enumerate(ops) if x[3])
    seen = set()
    stack = [(0, None)]
    while stack:
        done, state = stack.pop()
        if done & required == required:
            return True
        if (done, state) in seen:
            continue
        seen.add((done, state))
        # Anything invoked before every pending operation's completion may go next.
        horizon = min(ops[i][1] for i in range(n) if not done >> i & 1 and ops[i][3])
        for i in range(n):
            if done >> i & 1 or ops[i][0] > horizon:
                continue
            nxt = step(state, ops[i][2], ops[i][3])
            if nxt is not None:
                stack.append((done | 1 << i, nxt[1]))
    return False


def below_min_index(ops):
    """Reads served before the node applied the client's own write."""
    return [o for o in ops if "applied" in o and "min_index" in o and o["applied"] < o["min_index"]]


def check(path):
    """(operations, keys, keys not linearizable, reads below their min_index) of `path`."""
    ops = parse(path)
    by_key = {}
    for o in ops:
        if o["status"] == "fail" or o.get("stale"):
            continue  # surely not applied / allowed to be stale
        answered = o["status"] == "ok"
        if o["op"] == "get" and not answered:
            continue  # a read without an answer constrains nothing
        complete = o["complete"] if answered else INF
        by_key.setdefault(o["key"], []).append((o["invoke"], complete, o, answered))
    bad = [k for k, v in sorted(by_key.items()) if not linearizable(v)]
    return len(ops), len(by_key), bad, below_min_index(ops)


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
