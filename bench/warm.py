"""The first five requests after each of five starts and five reloads (SIGHUP) of `duckapi serve` of the bundled
project, with warm lanes and without, against the steady p50 (issue 22: each position's median at most 1.5x).

    python -m bench.warm [--quick]   # bench/warm_results.json, bench/WARM_RESULTS.md (--quick: under bench/.work/)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

from bench.harness import WORK, Server, bench_main, build, machine_info, post, quiet_first, report, request, serve_cmd
from bench.harness import target
from tests.oracle import ANIMALS

ABOUT = "Two pipeline threads, nine JSON rows a request; the steady p50 of 200 after each start; cold: no warm lanes."


def timed(port: int) -> float:
    sent = post(port, json.dumps(ANIMALS).encode())
    assert sent.status == 200, sent.status
    return sent.latency_s * 1000


def snapshot(port: int) -> int:
    return int(json.loads(request(port, "GET", "/healthz", None)[2])["snapshot"])


def measure(restarts: int, reloads: int, steady: int, warm: bool, db: Path) -> dict[str, object]:
    env = {**os.environ, "DUCKAPI_TARGET_PATH": str(WORK / "warm-target"), "DUCKAPI_WARM_LANES": "1" if warm else "0"}
    after, steady_ms = {"start": [], "reload": []}, []
    for i in range(restarts):
        s = Server("warm", serve_cmd(db, "--threads", "2"), env)
        try:
            s.start()
            s.wait_ready()
            after["start"].append([timed(s.port) for _ in range(5)])
            steady_ms += [timed(s.port) for _ in range(steady)]
            for _ in range(reloads if i == restarts - 1 else 0):  # the last server: the reloads
                before = snapshot(s.port)
                os.kill(s.pid, signal.SIGHUP)
                while snapshot(s.port) == before:
                    time.sleep(0.05)
                after["reload"].append([timed(s.port) for _ in range(5)])
        finally:
            s.stop()
    p50 = statistics.median(steady_ms)
    medians = {when: [statistics.median(t[i] for t in trials) for i in range(5)] for when, trials in after.items()}
    return {"steady_p50_ms": round(p50, 3), "steady_requests": len(steady_ms), "restarts": restarts, "reloads": reloads,
            **{f"after_{when}_median_ms": [round(x, 3) for x in m] for when, m in medians.items()},
            **{f"after_{when}_ratio": [round(x / p50, 3) for x in m] for when, m in medians.items()}}


def run(args: argparse.Namespace) -> dict[str, object]:
    load, db, plan = quiet_first(args), WORK / "warm" / "dev.duckdb", (2, 2, 50) if args.quick else (5, 5, 200)
    build(db, {**os.environ, "DUCKAPI_TARGET_PATH": str(WORK / "warm-target")})
    warm, cold = measure(*plan, True, db), measure(*plan, False, db)
    worst = max(warm["after_start_ratio"] + warm["after_reload_ratio"])
    return {"machine": machine_info({}), "load": load, "quick": args.quick, "warm": warm, "cold": cold, "targets": [
        target("warm lanes: the first five requests' medians at most 1.5x the steady p50", worst <= 1.5, f"{worst}x")]}


def main(argv: list[str] | None = None) -> int:
    title = "Warm lanes: the first requests after a start or a reload"
    return bench_main(__doc__, "warm", run, lambda r: report(title, r, ABOUT), "2 starts and 2 reloads", argv)


if __name__ == "__main__":
    sys.exit(main())
