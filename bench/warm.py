"""The first requests after a start and after a reload, against the steady state (issue 22: for each of the first
five positions, the median over restarts, and over reloads, at most 1.5x the steady p50). A real `duckapi serve` of
the bundled project (one worker, two pipeline threads), with warm lanes and without (DUCKAPI_WARM_LANES=0): started
five times, five requests timed once /healthz answers, then 200 more for the steady p50; then five reloads (SIGHUP,
until /healthz shows the new snapshot), each followed by five timed requests. Each request is nine JSON rows.

    python -m bench.warm            # writes bench/warm_results.json, bench/WARM_RESULTS.md
    python -m bench.warm --quick    # smoke run; writes under bench/.work/
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
from typing import Any

from bench.harness import WORK, Server, build, out_dir, percentile, post, request, write_results

BODY = json.dumps([{"group_id": g, "event_value": v} for v, g in
                   enumerate("cat dog cat cow dog cat cow dog hen".split(), 1)]).encode()
FIRST = 5


def timed(port: int) -> float:
    sent = post(port, BODY)
    assert sent.status == 200, sent.status
    return sent.latency_s * 1000


def snapshot(port: int) -> int:
    return int(json.loads(request(port, "GET", "/healthz", None)[2])["snapshot"])


def server(db: Path, warm: bool = True) -> Server:
    env = {**os.environ, "DUCKAPI_DB_PATH": str(db), "DUCKAPI_TARGET_PATH": str(WORK / "warm-target"),
           "DUCKAPI_EXECUTOR_THREADS": "2", "DUCKAPI_WARM_LANES": "1" if warm else "0"}
    return Server("warm", [sys.executable, "-m", "duckapi.cli", "serve", "--port", "{port}"], env)


def measure(restarts: int, reloads: int, steady: int, warm: bool, db: Path) -> dict[str, Any]:
    after_start, after_reload, steady_ms = [], [], []
    for i in range(restarts + 1):  # the last server: the reloads
        s = server(db, warm)
        s.start()
        try:
            s.wait_ready()
            if i < restarts:
                after_start.append([timed(s.port) for _ in range(FIRST)])
            steady_ms += [timed(s.port) for _ in range(steady)]
            for _ in range(reloads if i == restarts else 0):
                before = snapshot(s.port)
                os.kill(s.pid, signal.SIGHUP)
                while snapshot(s.port) == before:
                    time.sleep(0.05)
                after_reload.append([timed(s.port) for _ in range(FIRST)])
        finally:
            s.stop()
    p50 = percentile(sorted(steady_ms), 0.5)
    start, reload = ([statistics.median(trial[i] for trial in trials) for i in range(FIRST)]
                     for trials in (after_start, after_reload))
    return {
        "steady_p50_ms": p50, "steady_requests": len(steady_ms),
        "after_start_median_ms": start, "after_reload_median_ms": reload,
        "after_start_ratio": [x / p50 for x in start], "after_reload_ratio": [x / p50 for x in reload],
        "restarts": restarts, "reloads": reloads, "target": "each position's median at most 1.5x the steady p50",
        "met": max(x / p50 for x in start + reload) <= 1.5, "cpus": os.cpu_count(),
    }


def markdown(results: dict[str, Any]) -> str:
    warm, cold = results["warm"], results["cold"]
    table = "\n".join(
        f"| {name}: steady p50 | {r['steady_p50_ms']:.2f} ms | | | | |" + "".join(
            f"\n| {name}: after a {when}{label} | " + " | ".join(f"{v:.2f}{unit}" for v in r[f"after_{when}_{key}"])
            + " |" for when in ("start", "reload")
            for label, key, unit in ((", ms", "median_ms", ""), (" / steady p50", "ratio", "x")))
        for name, r in (("warm lanes (default)", warm), ("DUCKAPI_WARM_LANES=0", cold)))
    return f"""# Warm lanes: the first requests after a start or a reload

`python -m bench.warm` ({warm['cpus']} cores): the bundled project served with two pipeline
threads, POST /analyse_data/ with nine JSON rows, one request at a time over loopback, with
warm lanes and without (DUCKAPI_WARM_LANES=0), alternately in one run. Steady p50 over
{warm['steady_requests']} requests; the median of each of the first five requests over
{warm['restarts']} starts and over {warm['reloads']} reloads (SIGHUP):

| | 1st | 2nd | 3rd | 4th | 5th |
|---|---|---|---|---|---|
{table}

Target: at most 1.5x in every cell with warm lanes: **{'met' if warm['met'] else 'not met'}**.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    db = WORK / "warm" / "dev.duckdb"
    build(db, {**os.environ, "DUCKAPI_TARGET_PATH": str(WORK / "warm-target")})
    restarts, reloads, steady = (2, 2, 50) if args.quick else (5, 5, 200)
    results = {"warm": measure(restarts, reloads, steady, True, db),
               "cold": measure(restarts, reloads, steady, False, db)}
    folder = out_dir(args.quick)
    write_results(results, folder / "warm_results.json", folder / "WARM_RESULTS.md", markdown, ascii=True)


if __name__ == "__main__":
    sys.exit(main())
