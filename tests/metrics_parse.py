#!/usr/bin/env python3
"""Parses Prometheus text (stdin) with the Prometheus project's own Python parser and prints
the families as JSON (stdout), for tests/tests/metrics.rs: an independent reading of what
kvserver's /metrics serves. Exits non-zero, with the parser's error on stderr, when the text
does not parse.

Output: {"families": [{"name", "type", "help", "samples": [{"name", "labels", "value"}]}]};
a value that is not finite (NaN, +Inf) is given as a string, since JSON has no such numbers.
"""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def number(v):
    return v if math.isfinite(v) else str(v)


def main():
    text = sys.stdin.read()
    try:
        families = [
            {
                "name": f.name,
                "type": f.type,
                "help": f.documentation,
                "samples": [
                    {"name": s.name, "labels": s.labels, "value": number(s.value)}
                    for s in f.samples
                ],
            }
            for f in text_string_to_metric_families(text)
        ]
    except Exception as e:  # the parser raises ValueError and others on bad input
        print(f"cannot parse the metrics: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    json.dump({"families": families}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
