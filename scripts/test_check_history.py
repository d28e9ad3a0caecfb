"""Tests of scripts/check_history.py: it must accept good histories and reject the classic bad
ones, so that its "linearizable" on the simulator's files means something.

    python3 -m unittest scripts/test_check_history.py
"""

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_history  # noqa: E402


def op(client, kind, key, invoke, complete, status="ok", **fields):
    o = {"client": client, "op": kind, "key": key, "invoke": invoke, "complete": complete,
         "status": status}
    o.update(fields)
    return o


class CheckHistory(unittest.TestCase):
    def checked(self, ops):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("".join(json.dumps(o) + "\n" for o in ops))
        try:
            return check_history.check(f.name)
        finally:
            os.unlink(f.name)

    def verdict(self, ops):
        _, _, bad, early = self.checked(ops)
        return bad == [] and early == []

    def test_session_expired_writes_are_failed_or_unknown(self):
        # A write refused with session_expired on its only attempt is recorded "fail": it
        # never happened, so reading its value is a violation.
        failed = op("c1", "put", "k", 0, None, status="fail", value="a")
        self.assertFalse(self.verdict([
            failed,
            op("c2", "get", "k", 10, 20, value="a"),
        ]))
        self.assertTrue(self.verdict([failed, op("c2", "get", "k", 10, 20, value=None)]))
        # Refused after an attempt that timed out (and may have applied before the session
        # expired): "unknown", so the value may or may not be seen.
        unknown = op("c1", "put", "k", 0, None, status="unknown", value="a")
        for seen in ("a", None):
            self.assertTrue(self.verdict([unknown, op("c2", "get", "k", 10, 20, value=seen)]))
        # The client's next session (the simulator names its ops by the client, c1, whatever
        # the session) goes on as usual.
        self.assertTrue(self.verdict([
            unknown,
            op("c1", "put", "k", 30, 40, value="b"),
            op("c2", "get", "k", 50, 60, value="b"),
        ]))

    def test_multi_key_operations_are_atomic(self):
        def mput(c, entries, i, r, status="ok"):
            o = {"client": c, "op": "mput", "entries": entries, "invoke": i, "complete": r,
                 "status": status}
            return o

        def mget(c, values, i, r):
            return {"client": c, "op": "mget", "keys": sorted(values), "values": values,
                    "invoke": i, "complete": r, "status": "ok"}

        w = mput("c1", {"a": "1", "b": "1"}, 0, 10)
        for seen in (None, "1"):
            self.assertTrue(self.verdict([w, mget("c2", {"a": seen, "b": seen}, 2, 5)]))
        # Half an mput is a torn write, through an mget or through two gets in sequence.
        _, _, bad, _ = self.checked([w, mget("c2", {"a": "1", "b": None}, 2, 5)])
        self.assertEqual(bad, ["a,b"])
        self.assertFalse(self.verdict([
            w, op("c2", "get", "b", 1, 2, value="1"), op("c2", "get", "a", 3, 4, value=None)]))
        # An mdelete removes every key at once; other keys are checked on their own.
        d = {"client": "c1", "op": "mdelete", "keys": ["a", "b"], "invoke": 11, "complete": 12,
             "status": "ok"}
        self.assertTrue(self.verdict([w, d, mget("c2", {"a": None, "b": None}, 13, 14),
                                      op("c3", "put", "z", 0, 1, value="z")]))
        self.assertFalse(self.verdict([w, d, mget("c2", {"a": None, "b": "1"}, 13, 14)]))
        # An unknown mput may land late, but whole.
        late = mput("c1", {"a": "1", "b": "1"}, 0, None, status="unknown")
        self.assertTrue(self.verdict([late, mget("c2", {"a": None, "b": None}, 5, 6),
                                      mget("c2", {"a": "1", "b": "1"}, 7, 8)]))
        self.assertFalse(self.verdict([late, mget("c2", {"a": "1", "b": None}, 5, 6)]))
        # Malformed multi-key lines are refused.
        for bad_op in (
            {"client": "c", "op": "mget", "keys": ["a", "b"], "values": {"a": None},
             "invoke": 0, "complete": 1, "status": "ok"},
            {"client": "c", "op": "mput", "key": "a", "entries": {"a": "1"},
             "invoke": 0, "complete": 1, "status": "ok"},
            {"client": "c", "op": "mdelete", "keys": ["a", "a"], "invoke": 0, "complete": 1,
             "status": "ok"},
            {"client": "c", "op": "mput", "entries": {}, "invoke": 0, "complete": 1,
             "status": "ok"},
        ):
            with self.assertRaises(check_history.Malformed, msg=bad_op):
                self.checked([bad_op])

    def test_sequential_and_overlapping_histories_pass(self):
        self.assertTrue(self.verdict([
            op("c1", "put", "k", 0, 10, value="a"),
            op("c2", "get", "k", 20, 30, value="a"),
            op("c1", "cas", "k", 40, 50, expected="a", new="b", result="ok"),
            op("c2", "cas", "k", 60, 70, expected="a", new="c", result="failed"),
            op("c1", "delete", "k", 80, 90),
            op("c2", "get", "k", 100, 110, value=None),
        ]))
        # A read overlapping a write may see either value.
        self.assertTrue(self.verdict([
            op("c1", "put", "k", 0, 10, value="a"),
            op("c1", "put", "k", 20, 40, value="b"),
            op("c2", "get", "k", 25, 30, value="a"),
        ]))

    def test_a_stale_read_after_a_completed_write_fails(self):
        self.assertFalse(self.verdict([
            op("c1", "put", "k", 0, 10, value="a"),
            op("c1", "put", "k", 20, 30, value="b"),
            op("c2", "get", "k", 40, 50, value="a"),
        ]))

    def test_a_lost_acknowledged_write_fails(self):
        self.assertFalse(self.verdict([
            op("c1", "put", "k", 0, 10, value="a"),
            op("c2", "get", "k", 20, 30, value=None),
        ]))

    def test_two_successful_cas_from_one_expected_value_fail(self):
        self.assertFalse(self.verdict([
            op("c1", "put", "k", 0, 10, value="a"),
            op("c1", "cas", "k", 20, 40, expected="a", new="b", result="ok"),
            op("c2", "cas", "k", 25, 45, expected="a", new="c", result="ok"),
        ]))

    def test_unknown_writes_may_take_effect_late_or_never(self):
        late = [
            op("c1", "put", "k", 0, 10, value="a"),
            op("c2", "put", "k", 15, None, status="unknown", value="b"),
            op("c1", "get", "k", 100, 110, value="a"),
            op("c1", "get", "k", 200, 210, value="b"),
        ]
        self.assertTrue(self.verdict(late))
        # But not before it was invoked.
        early = [
            op("c1", "get", "k", 0, 5, value="b"),
            op("c2", "put", "k", 15, None, status="unknown", value="b"),
        ]
        self.assertFalse(self.verdict(early))

    def test_stale_reads_and_failed_ops_are_left_out(self):
        self.assertTrue(self.verdict([
            op("c1", "put", "k", 0, 10, value="a"),
            op("c1", "put", "k", 20, 30, value="b"),
            op("c2", "get", "k", 40, 50, value="a", stale=True),
            op("c2", "put", "k", 60, 70, status="fail", value="zzz"),
            op("c2", "get", "k", 80, 90, value="b"),
        ]))

    def test_where_operations_landed_is_accepted_and_read_your_writes_is_checked(self):
        self.assertTrue(self.verdict([
            op("c1", "put", "k", 0, 10, value="a", index=3),
            op("c2", "get", "k", 12, 14, value="a", node="n2", applied=3),
            op("c1", "get", "k", 20, 30, value="a", stale=True, node="n3", applied=4,
               min_index=3),
            op("c1", "cas", "k", 40, 50, expected="a", new="b", result="ok", index=6),
        ]))
        # Served at applied index 2, before the client's own write at 3 was there.
        self.assertFalse(self.verdict([
            op("c1", "put", "k", 0, 10, value="a", index=3),
            op("c1", "get", "k", 20, 30, value=None, stale=True, node="n3", applied=2,
               min_index=3),
        ]))

    def test_malformed_lines_are_refused(self):
        for bad in ['{"client":"c1"}', '{"client":"c1","op":"scan","key":"k","invoke":0,'
                    '"complete":1,"status":"ok"}', "not json",
                    json.dumps(op("c1", "put", "k", 5, 1, value="a")),
                    json.dumps(op("c1", "get", "k", 0, 1, value="a", index=3)),
                    json.dumps(op("c1", "put", "k", 0, 1, value="a", applied=3)),
                    json.dumps(op("c1", "get", "k", 0, 1, value="a", min_index=-1)),
                    json.dumps(op("c1", "get", "k", 0, None, status="unknown", value=None,
                                  node="n1"))]:
            with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
                f.write(bad + "\n")
            try:
                with self.assertRaises(check_history.Malformed, msg=bad):
                    check_history.check(f.name)
            finally:
                os.unlink(f.name)


if __name__ == "__main__":
    unittest.main()
