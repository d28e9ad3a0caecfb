"""schemathesis hooks of tests/tests/openapi_schemathesis.rs: two checks of our own.

- nothing_written_by_a_rejected_request: before every write (PUT, DELETE, POST but mget),
  read the node's whole state (every key and value, and the membership); after a 4xx answer,
  read it again: it must be unchanged. So that a write that went through would show, every
  other write first has the keys it names set to a value of their own (a fresh `seed-N`,
  which no generated request writes), and a well-formed `client_id` of its own, so that the
  server's deduplication of a retried (client_id, seq) does not make the write a no-op: a
  rejected write of the value a key already has, a rejected delete of a missing key, or a
  rejected retry would otherwise change nothing visible.
- only_retryable_server_errors: the only 5xx the contract allows is a 503 with one of its
  retryable err_codes (tests/schemathesis.toml lets 503 through schemathesis's own
  not_a_server_error for this check to judge).

Load with SCHEMATHESIS_HOOKS=tests/schemathesis_hooks.py; RAFTKV_NODE_URL is the node's base
URL (default http://127.0.0.1:7001). Run one worker (--workers 1): the state read before a
request must be the state the request met.
"""

import json
import os
import urllib.parse
import urllib.request

import schemathesis

BASE = os.environ.get("RAFTKV_NODE_URL", "http://127.0.0.1:7001").rstrip("/")

# err_codes of the 503s the contract documents: retry later, elsewhere or with less.
RETRYABLE_503 = {
    "not_leader",
    "unknown_outcome",
    "unavailable",
    "overloaded",
    "transferring",
    "read_timeout",
    "not_caught_up",
    "transfer_abandoned",
    "no_quorum",
    "not_ready",
}

# The state before the write being sent: (id of its case, state).
_before = {}


def _get(path):
    with urllib.request.urlopen(BASE + path, timeout=10) as resp:
        return json.load(resp)


def state():
    """Every key and value (a stale, local read: a single node applied what it answered) and
    the membership this node knows."""
    kvs = []
    token = None
    while True:
        query = {"limit": "10000", "consistency": "stale"}
        if token is not None:
            query["continue"] = token
        page = _get("/kv?" + urllib.parse.urlencode(query))
        kvs.extend((e["key"], e["value"]) for e in page["kvs"])
        if not page.get("more"):
            break
        token = page["next"]
    cluster = _get("/cluster?local=true")
    members = {k: cluster.get(k) for k in ("voters", "outgoing", "learners", "joint")}
    return {"kvs": kvs, "members": members}


def _is_write(case):
    return case.method.upper() in ("PUT", "DELETE", "POST", "PATCH") and case.path != "/kv/mget"


def keys_of(case):
    """The keys a write names (path or body), as far as they are well-formed strings."""
    body = case.body if isinstance(case.body, dict) else {}
    if case.path == "/kv/{key}":
        keys = [(case.path_parameters or {}).get("key")]
    elif case.path == "/kv/cas":
        keys = [body.get("key")]
    elif case.path == "/kv/mput":
        entries = body.get("entries")
        keys = [e.get("key") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    elif case.path == "/kv/mdelete":
        keys = body.get("keys") if isinstance(body.get("keys"), list) else []
    else:
        keys = []
    return [k for k in keys if isinstance(k, str) and 0 < len(k) < 1000][:10]


_writes = 0


def seed(keys):
    """Sets each key to a value of its own, through the API (a write the check does not judge)."""
    global _writes
    for key in keys:
        _writes += 1
        body = json.dumps({"client_id": "raftkv-hooks-seed", "seq": _writes, "value": f"seed-{_writes}"})
        req = urllib.request.Request(
            BASE + "/kv/" + urllib.parse.quote(key, safe=""),
            data=body.encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10):
                pass
        except Exception:  # noqa: BLE001 - a key the API refuses stays as it was
            pass


_seen_writes = 0


@schemathesis.hook
def before_call(context, case, kwargs):
    global _seen_writes
    if _is_write(case):
        _seen_writes += 1
        if _seen_writes % 2 == 0:
            seed(keys_of(case))
            if isinstance(case.body, dict) and isinstance(case.body.get("client_id"), str) and case.body["client_id"]:
                case.body["client_id"] = f"raftkv-hooks-{_seen_writes}"
        _before[id(case)] = state()


@schemathesis.check
def nothing_written_by_a_rejected_request(ctx, response, case):
    before = _before.pop(id(case), None)
    if before is None or not 400 <= response.status_code < 500:
        return None
    after = state()
    if after != before:
        kb, ka = dict(before["kvs"]), dict(after["kvs"])
        changed = sorted(k for k in set(kb) | set(ka) if kb.get(k) != ka.get(k))
        raise AssertionError(
            f"{case.method} {case.formatted_path} was refused with {response.status_code} "
            f"but changed the node's state: keys {changed[:10]!r}, membership "
            f"{before['members']!r} -> {after['members']!r}"
        )
    return None


@schemathesis.check
def only_retryable_server_errors(ctx, response, case):
    if response.status_code < 500:
        return None
    code = None
    try:
        code = json.loads(response.content).get("err_code")
    except Exception:  # noqa: BLE001 - any body that is not our JSON error fails below
        pass
    if response.status_code != 503 or code not in RETRYABLE_503:
        raise AssertionError(
            f"{response.status_code} with err_code {code!r}: the contract's only 5xx is a 503 "
            f"with a retryable err_code ({', '.join(sorted(RETRYABLE_503))})"
        )
    return None
