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
    BENCH, PATH, ROOT, WORK, Result, Scenario, Server, Workload, analyse, bench_main, big_rows, build, drive, fmt,
    group_pool, machine_info, machine_line, md_table, normalise, request, run_scenarios, scenario_results, serve_cmd,
    target, target_lines, verify,
)

__all__ = ["BENCH", "ROOT", "FULL", "QUICK", "baseline_server", "copy_db"]

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
    body = orjson.dumps(rows)
    probes: Result = {"int32_overflow": {}, "order_differs": {}, "bytes_identical": {}}
    for name, server in servers.items():
        status, _, answer = request(server.port, "POST", PATH, orjson.dumps(over))
        correct = status == 200 and json.loads(answer) == analyse(over)
        probes["int32_overflow"][name] = {"status": status, "correct": correct,
                                          "body": answer[:300].decode(errors="replace")}
        first, second = (request(server.port, "POST", PATH, body)[2] for _ in range(2))
        probes["order_differs"][name] = json.loads(first) != json.loads(second)
        probes["bytes_identical"][name] = first == second
    status, _, answer = request(servers["baseline"].port, "POST", PATH, orjson.dumps(rows[:9]))
    healthy = status == 200 and normalise(json.loads(answer)) == normalise(analyse(rows[:9]))
    probes["baseline_healthy_after_overflow"] = healthy
    return probes


def measure_selection(port: int, work: Workload) -> Result:
    """duckapi alone: the same large payloads with all seven parts, then one part selected."""
    payloads, expected = work.payloads[:3], work.expected[:3]
    timings: Result = {}
    for label, path in (("all", PATH), ("one", f"{PATH}?select={SELECTED_PART}")):
        sent, _ = drive(port, payloads, 1, 300, path)
        ok = sorted(x.latency_s for x in sent if x is not None and x.status == 200)
        want = [[{SELECTED_PART: e[0][SELECTED_PART]}] for e in expected] if label == "one" else expected
        timings[label] = {
            "p50_ms": round(ok[len(ok) // 2] * 1000, 1) if ok else None,
            "correct": sum(x is not None and x.status == 200 and json.loads(x.body) == w for x, w in zip(sent, want)),
            "requests": len(payloads),
        }
    all_ms, one_ms = timings["all"]["p50_ms"], timings["one"]["p50_ms"]
    timings["ratio_all_over_one"] = round(all_ms / one_ms, 2) if all_ms and one_ms else None
    timings["part"] = SELECTED_PART
    timings["rows"] = work.expected and sum(r["group_count"] for r in work.expected[0][0]["group_histogram"])
    return timings


def run(args: argparse.Namespace) -> Result:
    scenarios = QUICK if args.quick else FULL
    # Keep dbt's manifest and logs inside bench/.work, away from the project's own target/.
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT")}  # flags set these
    env["DUCKAPI_TARGET_PATH"] = str(WORK / "target")
    ours_db, base_db = WORK / "duckapi" / "dev.duckdb", WORK / "baseline" / "dev.duckdb"
    t0 = time.monotonic()
    print("building the dbt project into", ours_db.parent, flush=True)
    build(ours_db, env)
    copy_db(ours_db, base_db)
    servers = {"duckapi": Server("duckapi", serve_cmd(ours_db), env),
               "baseline": baseline_server("baseline", base_db, env)}
    results: Result = {"quick": args.quick, "seed": args.seed, "rounds": ROUNDS, "scenarios": []}

    def during(workloads: list[Workload]) -> None:
        results["probes"] = probe_answers(servers)
        results["selection"] = measure_selection(servers["duckapi"].port, workloads[-1])

    raw = run_scenarios(servers, scenarios, range(len(scenarios)), args.seed, t0, during, counted={"duckapi"},
                        rounds=ROUNDS)
    print("verifying answers", flush=True)
    exact_total = ok_total = 0
    for sc, work, per_server in raw:
        entry = scenario_results(sc, per_server, lambda name, t: verify(t.sent, work.expected, name == "baseline"))
        entry["duckapi"]["batched"] = per_server["duckapi"].batched
        b, d = entry["baseline"], entry["duckapi"]
        exact_total += b["exact_order_matches"]
        ok_total += b["requests"] - b["errors"]
        entry["speedup"] = round(d["throughput_rps"] / b["throughput_rps"], 2) if b["throughput_rps"] else None
        entry["p50_faster"] = bool(d["latency_ms"]["p50"] < b["latency_ms"]["p50"])
        results["scenarios"].append(entry)
    results["baseline_exact_order_total"], results["baseline_ok_total"] = exact_total, ok_total
    results["targets"] = targets(results["scenarios"])
    results["machine"] = machine_info(servers)
    results["total_s"] = round(time.monotonic() - t0, 1)
    return results


def targets(scenarios: list[Result]) -> list[Result]:
    by = {s["name"]: s for s in scenarios}
    c8, big = by.get("9 rows c=8"), by.get("1M rows c=1")
    return [
        *([target("9 rows c=8: duckapi throughput >= 10x baseline", c8["speedup"] >= 10, f"{c8['speedup']:.1f}x")]
          if c8 else []),
        *(target(f"{s['name']}: duckapi p50 below baseline p50", s["p50_faster"],
                 f"{s['duckapi']['latency_ms']['p50']} ms vs {s['baseline']['latency_ms']['p50']} ms")
          for s in scenarios),
        *([target("1M rows: duckapi peak server RSS < 1 GiB", big["duckapi"]["rss_mib"]["peak"] < 1024,
                  f"{big['duckapi']['rss_mib']['peak']:.0f} MiB")] if big else []),
        *(target(f"{s['name']}: duckapi answers all correct", False,
                 f"{d['requests']} requests, {d['errors']} errors, {d['wrong']} wrong")
          for s in scenarios for d in [s["duckapi"]] if d["errors"] or d["wrong"] or d["requests"] == 0),
    ]


def batched_cell(server: Result, unit: str = " statements") -> str:
    counts = server.get("batched")
    return f"{counts.get('requests', 0)} in {counts.get('statements', 0)}{unit}" if counts else "-"


REPORT = """\
# Load benchmark: duckapi vs the original FastAPI app{quick}

{machine}. Client and both servers share the machine; one server is loaded at a time, in {rounds} alternating rounds \
per scenario. Every answer checked (the baseline's after normalising). `python -m bench.load` regenerates this file.

{rows}

## Targets

{targets}

## Selecting one part

duckapi only, {sel[rows]:,} rows, {sel[one][requests]} distinct payloads: all seven parts p50 {sel[all][p50_ms]} ms, \
`?select={sel[part]}` p50 {sel[one][p50_ms]} ms: {sel[ratio_all_over_one]}x faster (correct answers: \
{sel[all][correct]} and {sel[one][correct]} of {sel[one][requests]}).

## Probes

- event_value 2**31: duckapi {over[duckapi][status]} (correct: {over[duckapi][correct]}), baseline \
{over[baseline][status]}; baseline still answers afterwards: {p[baseline_healthy_after_overflow]}
- same payload twice, list order differs: baseline {p[order_differs][baseline]}, duckapi {p[order_differs][duckapi]}; \
byte-identical answers: baseline {p[bytes_identical][baseline]}, duckapi {p[bytes_identical][duckapi]}
- baseline answers in the oracle's exact order (no normalisation needed): {r[baseline_exact_order_total]} of \
{r[baseline_ok_total]}

## Details

"Other procs' CPU": the rest of the machine meanwhile, in cores out of {m[cpu_count]}.

{detail}
"""


def markdown(results: Result) -> str:
    rows = md_table("| scenario | duckapi req/s | duckapi p50 ms | baseline req/s | baseline p50 ms | speedup (req/s) "
                    "| p50 faster | duckapi peak RSS MiB | baseline peak RSS MiB | errors duckapi / baseline "
                    "| wrong duckapi / baseline |", "lrrrrrcrrcc", [
                        (sc["name"], fmt(d["throughput_rps"]), fmt(d["latency_ms"]["p50"], 2), fmt(b["throughput_rps"]),
                         fmt(b["latency_ms"]["p50"], 2), f"{fmt(sc['speedup'])}x", "yes" if sc["p50_faster"] else "NO",
                         fmt(d["rss_mib"]["peak"], 0), fmt(b["rss_mib"]["peak"], 0), f"{d['errors']} / {b['errors']}",
                         f"{d['wrong']} / {b['wrong']}")
                        for sc in results["scenarios"] for d, b in [(sc["duckapi"], sc["baseline"])]])
    detail = md_table("| scenario | server | requests | p95 ms | max ms | rows/s | server CPU ms/req | client CPU "
                      "ms/req "
                      "| other procs' CPU (cores) | idle RSS MiB | RSS growth MiB | answered in batches |",
                      "llrrrrrrrrrr", [
                          (sc["name"], name, r["requests"], fmt(r["latency_ms"]["p95"], 2),
                           fmt(r["latency_ms"]["max"], 2),
                           f"{r['rows_per_s']:,}", fmt(r["cpu"]["server_ms_per_request"], 2),
                           fmt(r["cpu"]["client_ms_per_request"], 2), fmt(r["cpu"]["other_processes_cores"], 2),
                           fmt(r["rss_mib"]["idle_before"], 0), fmt(r["rss_mib"]["growth"], 0), batched_cell(r))
                          for sc in results["scenarios"] for name in ("duckapi", "baseline") for r in [sc[name]]])
    probes, m = results["probes"], results["machine"]
    return REPORT.format(
        quick=" (quick run)" if results["quick"] else "", machine=machine_line(m, "duckdb", "pandas"), r=results, m=m,
        rounds=results.get("rounds", 1), rows=rows, targets="\n".join(target_lines(results["targets"])),
        sel=results["selection"], over=probes["int32_overflow"], p=probes, detail=detail)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, "", run, markdown, "tiny request counts: a smoke run under a minute", argv, 20240521)


if __name__ == "__main__":
    sys.exit(main())
