#!/usr/bin/env python3
"""Loads N keys of a given value size into a kvserver through POST /kv/mput, in batches, from a
few threads (each its own client session, seq from 1). Used by scripts/bench_big_state.sh.

    python3 scripts/load_keys.py --endpoint 127.0.0.1:7201 --keys 1000000 --value-size 256

Keys are key-0000000 ... in order; values are deterministic (the key's number repeated), so a
reader can check any key. Exits non-zero on the first refused batch.
"""
import argparse
import json
import threading
import time
import urllib.error
import urllib.request


def value_of(i, size):
    s = str(i)
    return (s * (size // len(s) + 1))[:size]


def key_of(i):
    return f"key-{i:07d}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--value-size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=4)
    a = ap.parse_args()
    batches = list(range(0, a.keys, a.batch))
    lock = threading.Lock()
    failures = []
    started = time.monotonic()
    endpoint = [a.endpoint]

    def worker(w):
        seq = 0
        while True:
            with lock:
                if not batches or failures:
                    return
                lo = batches.pop(0)
            seq += 1
            hi = min(lo + a.batch, a.keys)
            body = {
                "client_id": f"loader-{w}-{started}",
                "seq": seq,
                "entries": [{"key": key_of(i), "value": value_of(i, a.value_size)} for i in range(lo, hi)],
            }
            data = json.dumps(body).encode()
            # 503 (overloaded, an election) and redirects to a new leader are retried with the same (client_id, seq): the
            # store applies it once.
            for _ in range(100):
                req = urllib.request.Request(
                    f"http://{endpoint[0]}/kv/mput",
                    data=data,
                    headers={"content-type": "application/json"},
                    method="POST",
                )
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        answer = json.load(r)
                    problem = None if answer.get("ok") else f"answered {answer}"
                    break
                except urllib.error.HTTPError as e:
                    text = e.read()
                    problem = f"{e} ({text[:200]!r})"
                    if e.code in (307, 308):
                        # Another node leads now: follow the hint.
                        try:
                            hint = json.loads(text).get("leader_addr")
                        except ValueError:
                            hint = None
                        if hint:
                            endpoint[0] = hint
                        time.sleep(0.2)
                        continue
                    if e.code != 503:
                        break
                    time.sleep(0.2)
                except Exception as e:  # noqa: BLE001 - any other failure stops the load
                    problem = str(e)
                    break
            if problem:
                with lock:
                    failures.append(f"batch {lo}..{hi}: {problem}")
                return

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(a.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"load failed: {failures[0]}")
    secs = time.monotonic() - started
    print(f"loaded {a.keys} keys of {a.value_size} bytes in {secs:.1f} s")


if __name__ == "__main__":
    main()
