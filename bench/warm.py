"""The first requests after a start and after a reload, against the steady state.

    python -m bench.warm            # writes bench/warm_results.json, bench/WARM_RESULTS.md
    python -m bench.warm --quick    # smoke run; writes under bench/.work/

A real `duckapi serve` of the bundled project (one worker, two pipeline threads), with warm
lanes and without (DUCKAPI_WARM_LANES=0). Five times
it is started, and once /healthz answers, five requests are timed one after the other, then
200 more for the steady p50. Then, on one server, five reloads (SIGHUP, waiting until
/healthz shows the new snapshot), each followed by five timed requests. Target (issue 22):
for each of the first five positions, the median over the restarts (and over the reloads)
is at most 1.5x the steady p50. Each request is the bundled example's nine rows
(POST /analyse_data/, JSON), from http.client on loopback.
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

from bench.load import BENCH, ROOT, WORK, Server, build, percentile, request

BODY = json.dumps([
    {"group_id": g, "event_value": v}
    for g, v in [("cat", 1), ("dog", 2), ("cat", 3), ("cow", 4), ("dog", 5), ("cat", 6), ("cow", 7), ("dog", 8), ("hen", 9)]
]).encode()
PATH = "/analyse_data/"
FIRST = 5


def timed(port: int) -> float:
    started = time.perf_counter()
    status, _, _ = request(port, "POST", PATH, BODY)
    assert status == 200, status
    return (time.perf_counter() - started) * 1000


def snapshot(port: int) -> int:
    return int(json.loads(request(port, "GET", "/healthz", None)[2])["snapshot"])


def server(db: Path, warm: bool = True) -> Server:
    env = {**os.environ, "DUCKAPI_DB_PATH": str(db), "DUCKAPI_TARGET_PATH": str(WORK / "warm-target"),
           "DUCKAPI_EXECUTOR_THREADS": "2", "DUCKAPI_WARM_LANES": "1" if warm else "0"}
    return Server("warm", [sys.executable, "-m", "duckapi.cli", "serve", "--port", "{port}"], env, "/healthz")


def measure(restarts: int, reloads: int, steady: int, warm: bool, db: Path) -> dict[str, Any]:
    after_start, after_reload, steady_ms = [], [], []
    for _ in range(restarts):
        s = server(db, warm)
        s.start()
        try:
            s.wait_ready()
            after_start.append([timed(s.port) for _ in range(FIRST)])
            steady_ms += [timed(s.port) for _ in range(steady)]
        finally:
            s.stop()
    s = server(db, warm)
    s.start()
    try:
        s.wait_ready()
        steady_ms += [timed(s.port) for _ in range(steady)]
        for _ in range(reloads):
            before = snapshot(s.port)
            assert s.proc is not None
            os.kill(s.proc.pid, signal.SIGHUP)
            while snapshot(s.port) == before:
                time.sleep(0.05)
            after_reload.append([timed(s.port) for _ in range(FIRST)])
    finally:
        s.stop()
    p50 = percentile(sorted(steady_ms), 0.5)

    def positions(trials: list[list[float]]) -> list[float]:
        return [statistics.median(trial[i] for trial in trials) for i in range(FIRST)]

    start, reload = positions(after_start), positions(after_reload)
    return {
        "steady_p50_ms": p50, "steady_requests": len(steady_ms),
        "after_start_median_ms": start, "after_reload_median_ms": reload,
        "after_start_ratio": [x / p50 for x in start], "after_reload_ratio": [x / p50 for x in reload],
        "restarts": restarts, "reloads": reloads,
        "target": "each position's median at most 1.5x the steady p50",
        "met": max(x / p50 for x in start + reload) <= 1.5,
        "cpus": os.cpu_count(),
    }


def markdown(results: dict[str, Any]) -> str:
    cells = lambda values: " | ".join(f"{v:.2f}" for v in values)  # noqa: E731
    ratios = lambda values: " | ".join(f"{v:.2f}x" for v in values)  # noqa: E731
    warm, cold = results["warm"], results["cold"]
    rows = []
    for name, r in (("warm lanes (default)", warm), ("DUCKAPI_WARM_LANES=0", cold)):
        rows += [
            f"| {name}: steady p50 | {r['steady_p50_ms']:.2f} ms | | | | |",
            f"| {name}: after a start, ms | {cells(r['after_start_median_ms'])} |",
            f"| {name}: after a start / steady p50 | {ratios(r['after_start_ratio'])} |",
            f"| {name}: after a reload, ms | {cells(r['after_reload_median_ms'])} |",
            f"| {name}: after a reload / steady p50 | {ratios(r['after_reload_ratio'])} |",
        ]
    table = "\n".join(rows)
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    db = WORK / "warm" / "dev.duckdb"
    build(db, {**os.environ, "DUCKAPI_TARGET_PATH": str(WORK / "warm-target")})
    restarts, reloads, steady = (2, 2, 50) if args.quick else (5, 5, 200)
    results = {"warm": measure(restarts, reloads, steady, True, db), "cold": measure(restarts, reloads, steady, False, db)}
    folder = WORK if args.quick else BENCH
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "warm_results.json").write_text(json.dumps(results, indent=2) + "\n")
    (folder / "WARM_RESULTS.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
