"""Load benchmark: duckapi against the original FastAPI app (bench/baseline_server.py), the same
distinct seeded payloads on both, every answer checked against tests/oracle.py after timing.

    python -m bench.load            # full run, ~3-5 minutes; writes bench/results.json, bench/RESULTS.md
    python -m bench.load --quick    # smoke run, < 1 minute; writes under bench/.work/ unless --out-* given
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import orjson

from bench.harness import (
    PATH, WORK, Result, Scenario, Server, Workload, analyse, bench_main, big_rows, build, drive, fmt, group_pool,
    machine_info, ms, normalise, quiet_first, report, request, run_scenarios, scenario_results, serve_cmd, target,
    verify,
)

TITLE = "Load benchmark: duckapi vs the original FastAPI app"
ABOUT = ("Client and servers share the machine, one server loaded at a time in alternating rounds; every answer "
         "checked against tests/oracle.py (the baseline's normalised). `python -m bench.load` regenerates this file.")
#: Each scenario is timed in this many rounds per server, alternating the servers.
ROUNDS = 3
#: name, rows, concurrency, then requests and time limit (s) of a full run and of a quick one
PLAN = [("9 rows c=1", 9, 1, 1500, 15, 20, 5), ("9 rows c=8", 9, 8, 3000, 15, 40, 5),
        ("10k rows c=1", 10_000, 1, 100, 20, 3, 10), ("100k rows c=1", 100_000, 1, 20, 30, 2, 10),
        ("1M rows c=1", 1_000_000, 1, 5, 60, 1, 30)]
FULL = [Scenario(name, rows, c, n, s) for name, rows, c, n, s, _, _ in PLAN]
QUICK = [Scenario(name, rows, c, n, s) for name, rows, c, _, _, n, s in PLAN]
SELECTED_PART = "group_sums"


def copy_db(db: Path, dest: Path) -> None:
    """A copy of the dbt-built file with the same stem ("dev": the catalog name the views were compiled with)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for old in dest.parent.glob(f"{dest.name}*"):
        old.unlink()
    shutil.copy2(db, dest)


def baseline_server(name: str, db: Path, env: dict[str, str]) -> Server:
    return Server(name, [sys.executable, "-m", "uvicorn", "bench.baseline_server:app", "--host", "127.0.0.1",
                         "--port", "{port}"], {**env, "BASELINE_DB_PATH": str(db)}, "/openapi.json")


def probe_answers(servers: dict[str, Server]) -> Result:
    """Checks outside the timed scenarios: int32 overflow, and repeatability of list order."""
    over = [{"group_id": "🦆", "event_value": 2**31}, {"group_id": "🐇", "event_value": 1}]
    rows = big_rows(np.random.default_rng(99), group_pool(), 2000)
    probes: Result = {"int32_overflow": {}, "order_differs": {}, "bytes_identical": {}}
    for name, server in servers.items():
        status, _, answer = request(server.port, "POST", PATH, orjson.dumps(over))
        correct = status == 200 and json.loads(answer) == analyse(over)
        probes["int32_overflow"][name] = {"status": status, "correct": correct,
                                          "body": answer[:300].decode(errors="replace")}
        first, second = (request(server.port, "POST", PATH, orjson.dumps(rows))[2] for _ in range(2))
        probes["order_differs"][name] = json.loads(first) != json.loads(second)
        probes["bytes_identical"][name] = first == second
    status, _, answer = request(servers["baseline"].port, "POST", PATH, orjson.dumps(rows[:9]))
    healthy = status == 200 and normalise(json.loads(answer)) == normalise(analyse(rows[:9]))
    return probes | {"baseline_healthy_after_overflow": healthy}


def measure_selection(port: int, work: Workload, rows: int) -> Result:
    """duckapi alone: the same large payloads with all seven parts, then one part selected."""
    timings: Result = {}
    for label, path in (("all", PATH), ("one", f"{PATH}?select={SELECTED_PART}")):
        sent = drive(port, work.payloads[:3], 1, 300, path)[0]
        want = [[{SELECTED_PART: e[0][SELECTED_PART]}] if label == "one" else e for e in work.expected[:3]]
        ok = [(s, w) for s, w in zip(sent, want) if s is not None and s.status == 200]
        timings[label] = {"p50_ms": ms((s.latency_s for s, _ in ok), {"p50": 0.5})["p50"],
                          "correct": sum(json.loads(s.body) == w for s, w in ok), "requests": len(sent)}
    all_ms, one_ms = timings["all"]["p50_ms"], timings["one"]["p50_ms"]
    return timings | {"ratio_all_over_one": round(all_ms / one_ms, 2) if all_ms and one_ms else None,
                      "part": SELECTED_PART, "rows": rows}


def run(args: argparse.Namespace) -> Result:
    scenarios = QUICK if args.quick else FULL
    # Keep dbt's manifest and logs inside bench/.work, away from the project's own target/.
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT")}  # flags set these
    env["DUCKAPI_TARGET_PATH"] = str(WORK / "target")
    ours_db, base_db = WORK / "duckapi" / "dev.duckdb", WORK / "baseline" / "dev.duckdb"
    quiet, t0 = quiet_first(args), time.monotonic()
    print("building the dbt project into", ours_db.parent, flush=True)
    build(ours_db, env)
    copy_db(ours_db, base_db)
    servers = {"duckapi": Server("duckapi", serve_cmd(ours_db), env),
               "baseline": baseline_server("baseline", base_db, env)}
    results: Result = {"quick": args.quick, "seed": args.seed, "rounds": ROUNDS, "load": quiet, "scenarios": []}

    def during(workloads: list[Workload]) -> None:
        results["probes"] = probe_answers(servers)
        results["selection"] = measure_selection(servers["duckapi"].port, workloads[-1], scenarios[-1].rows)

    raw = run_scenarios(servers, scenarios, range(len(scenarios)), args.seed, t0, during, counted={"duckapi"},
                        rounds=ROUNDS)
    print("verifying answers", flush=True)
    for sc, work, per_server in raw:
        entry = scenario_results(sc, per_server, lambda name, t: verify(t.sent, work.expected, name == "baseline"))
        entry["duckapi"]["batched"] = per_server["duckapi"].batched
        d, b = entry["duckapi"], entry["baseline"]
        entry["speedup"] = round(d["throughput_rps"] / b["throughput_rps"], 2) if b["throughput_rps"] else None
        entry["p50_faster"] = bool(d["latency_ms"]["p50"] < b["latency_ms"]["p50"])
        results["scenarios"].append(entry)
    base = [s["baseline"] for s in results["scenarios"]]
    results["baseline_exact_order_total"] = sum(b["exact_order_matches"] for b in base)
    results["baseline_ok_total"] = sum(b["requests"] - b["errors"] for b in base)
    results["targets"] = targets(results["scenarios"])
    results["machine"] = machine_info(servers)
    results["total_s"] = round(time.monotonic() - t0, 1)
    return results


def targets(scenarios: list[Result]) -> list[Result]:
    by = {s["name"]: s for s in scenarios}  # every plan has these two
    c8, big = by["9 rows c=8"], by["1M rows c=1"]["duckapi"]["rss_mib"]["peak"]
    return [
        target("9 rows c=8: duckapi throughput >= 10x baseline", (c8["speedup"] or 0) >= 10, f"{fmt(c8['speedup'])}x"),
        *(target(f"{s['name']}: duckapi p50 below baseline p50", s["p50_faster"],
                 f"{s['duckapi']['latency_ms']['p50']} ms vs {s['baseline']['latency_ms']['p50']} ms")
          for s in scenarios),
        target("1M rows: duckapi peak server RSS < 1 GiB", big < 1024, f"{big:.0f} MiB"),
        *all_correct(scenarios, ["duckapi"]),
    ]


def all_correct(scenarios: list[Result], names: list[str]) -> list[Result]:
    """A missed target for each server (by name) and scenario with errors or wrong answers, or no requests."""
    return [target(f"{s['name']}: {name} answers all correct", False,
                   f"{r['requests']} requests, {r['errors']} errors, {r['wrong']} wrong")
            for s in scenarios for name in names for r in [s[name]] if r["errors"] or r["wrong"] or not r["requests"]]


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, "", run, lambda results: report(TITLE, results, ABOUT),
                      "tiny request counts: a smoke run under a minute", argv, 20240521)


if __name__ == "__main__":
    sys.exit(main())
