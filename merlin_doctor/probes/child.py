"""Entry point of isolated probes: `python -m merlin_doctor.probes.child NAME...`.

Reads the ProbeContext as JSON on stdin, runs each probe in a fork of its own with the
context's timeout, and prints `{"results": {NAME: facts}}` as one JSON line.
"""
from __future__ import annotations

import json
import sys
import time

from merlin_doctor.probes import ProbeContext, call_probe, probe_named
from merlin_doctor.probes.isolate import call_in_fork


def main(argv: list) -> int:
    ctx = ProbeContext.from_dict(json.loads(sys.stdin.read() or "{}"))
    results = {}
    for name in argv[1:]:
        probe = probe_named(name)
        probe.function()  # import the module before forking: each fork then starts warm
        started = time.perf_counter()
        results[name] = call_in_fork(lambda: call_probe(probe, ctx), ctx.timeout)
        results[name]["duration_s"] = round(time.perf_counter() - started, 4)
    sys.stdout.write(json.dumps({"results": results}, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
