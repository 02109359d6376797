"""Regression benchmark: the bundled 9-row analysis, this checkout against an older commit (default
91921fd) served from a git worktree of its own (default /tmp/duckapi-base) with the same interpreter;
bench/load.py's 9-row payloads, rounds alternating ABBA, every answer checked against tests/oracle.py.

    python -m bench.regression           # ~1.5 minutes: bench/regression_results.json, bench/REGRESSION_RESULTS.md
    python -m bench.regression --quick   # smoke run, < 1 minute; writes under bench/.work/ unless --out-* given
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.harness import (
    ROOT, WORK, Result, Server, bench_main, build, clean_env, fmt, git, load_before, machine_info, machine_line,
    md_table, quiet_first, run_scenarios, scenario_results, serve_cmd, target, target_lines, tree_changes, verify,
)
from bench.load import FULL, QUICK, batched_cell

BASE_COMMIT = "91921fd"
BASE_TREE = Path("/tmp/duckapi-base")
SCENARIOS = ("9 rows c=1", "9 rows c=8")
#: More rounds than bench/load.py's 3, in ABBA order (current, base, base, current, ...): a 10%
#: threshold needs the two sides interleaved finely, and neither always first after a pause.
ROUNDS = 8
#: The regression allowed: req/s at least (1 - this) x the base's, p50 at most (1 + this) x.
TOLERANCE = 0.10
HERE = WORK / "regression"


def base_tree(path: Path, commit: str) -> str:
    """A clean worktree of `commit` at `path` (added if missing); its full hash."""
    want = git("rev-parse", f"{commit}^{{commit}}")
    if not path.exists():
        git("worktree", "add", "--detach", str(path), want)
    head = git("rev-parse", "HEAD", cwd=path)
    if head != want:
        raise RuntimeError(f"{path} is at {head[:7]}, not {commit}: remove it (git worktree remove {path}) or pass "
                           f"--base-tree")
    if git("status", "--porcelain", "--", "duckapi", "duckapi_dbt", cwd=path):
        raise RuntimeError(f"{path} has local changes to duckapi/ or duckapi_dbt/")
    return head


def resolved_imports(tree: Path, env: dict[str, str]) -> dict[str, str]:
    """Where the server's modules import from, run exactly as the server will be; must be `tree`."""
    code = ("import json, duckapi, duckapi.api.app, duckapi.engines.duckdb, duckapi.pipeline; "
            "print(json.dumps({m.__name__: m.__file__ for m in "
            "(duckapi, duckapi.api.app, duckapi.engines.duckdb, duckapi.pipeline)}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=True)
    files = json.loads(out.stdout)
    if stray := [f for f in files.values() if not Path(f).resolve().is_relative_to(tree.resolve())]:
        raise RuntimeError(f"modules of {tree} import from elsewhere: {stray}")
    return files


def run(args: argparse.Namespace) -> Result:
    order = QUICK if args.quick else FULL
    scenarios = [sc for sc in order if sc.name in SCENARIOS]
    rounds = 2 if args.quick else ROUNDS
    quiet = quiet_first(args)
    t0 = time.monotonic()
    base_hash = base_tree(args.base_tree, args.base)
    trees = {"current": ROOT, "base": args.base_tree}
    # PYTHONPATH: ahead of the editable install's finder, which points at this checkout.
    envs = {side: clean_env(PYTHONPATH=str(tree), DUCKAPI_TARGET_PATH=str(HERE / side / "target")) for side,
            tree in trees.items()}
    imports = {side: resolved_imports(trees[side], envs[side]) for side in trees}
    dbs = {side: HERE / side / "dev.duckdb" for side in trees}
    print(f"building the bundled project with each side's code into {HERE}", flush=True)
    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(build, dbs[s], envs[s], trees[s], f"regression-build-{s}.log") for s in trees]:
            f.result()
    servers = {side: Server(f"regression-{side}", serve_cmd(dbs[side]), envs[side], cwd=trees[side]) for side in trees}
    results: Result = {
        "quick": args.quick, "seed": args.seed, "rounds": rounds, "tolerance": TOLERANCE, "load": quiet,
        "base": {"commit": base_hash, "tree": str(args.base_tree), "imports": imports["base"]},
        "current": {"commit": git("rev-parse", "HEAD"), "tree": str(ROOT), "imports": imports["current"],
                    "uncommitted_duckapi_changes": tree_changes()},
        "scenarios": [],
    }
    # bench/load.py's payloads: same seed, same scenario index.
    raw = run_scenarios(servers, scenarios, [order.index(sc) for sc in scenarios], args.seed, t0, counted=set(servers),
                        rounds=rounds, abba=True)
    print("verifying answers", flush=True)
    for sc, work, per_server in raw:  # both sides are duckapi: exact equality with the oracle
        entry = scenario_results(sc, per_server, lambda name, t: verify(t.sent, work.expected), "batched", "per_round")
        c, b = entry["current"], entry["base"]
        entry["throughput_ratio"] = round(c["throughput_rps"] / b["throughput_rps"], 3) if b["throughput_rps"] else None
        entry["p50_ratio"] = round(c["latency_ms"]["p50"] / b["latency_ms"]["p50"], 3)
        entry["server_cpu_ratio"] = round(c["cpu"]["server_ms_per_request"] / b["cpu"]["server_ms_per_request"], 3)
        results["scenarios"].append(entry)
    results["targets"] = targets(results["scenarios"])
    results["machine"] = machine_info(servers)
    results["total_s"] = round(time.monotonic() - t0, 1)
    return results


def targets(scenarios: list[Result]) -> list[Result]:
    out = []
    for s in scenarios:
        c, b = s["current"], s["base"]
        out += [target(f"{s['name']}: req/s at least {1 - TOLERANCE:.0%} of the base's",
                       s["throughput_ratio"] is not None and s["throughput_ratio"] >= 1 - TOLERANCE,
                       f"{c['throughput_rps']} vs {b['throughput_rps']} req/s: {s['throughput_ratio']}x"),
                target(f"{s['name']}: p50 at most {1 + TOLERANCE:.0%} of the base's", s["p50_ratio"] <= 1 + TOLERANCE,
                       f"{c['latency_ms']['p50']} vs {b['latency_ms']['p50']} ms: {s['p50_ratio']}x")]
        out += [target(f"{s['name']}: {name} answers all correct", False,
                       f"{r['requests']} requests, {r['errors']} errors, {r['wrong']} wrong")
                for name, r in (("current", c), ("base", b)) if r["errors"] or r["wrong"] or not r["requests"]]
    return out


def markdown(results: Result) -> str:
    m, load, base, cur = results["machine"], results["load"], results["base"], results["current"]
    rows = md_table("| scenario | current req/s | base req/s | req/s ratio | current p50 ms | base p50 ms | p50 ratio "
                    "| server CPU ms/req current / base | errors / wrong current, base |", "lrrrrrrrc", [
                        (s["name"], fmt(c["throughput_rps"]), fmt(b["throughput_rps"]),
                         f"**{fmt(s['throughput_ratio'], 3)}x**", fmt(c["latency_ms"]["p50"], 2),
                         fmt(b["latency_ms"]["p50"], 2), f"**{fmt(s['p50_ratio'], 3)}x**",
                         f"{fmt(c['cpu']['server_ms_per_request'], 2)} / {fmt(b['cpu']['server_ms_per_request'], 2)}",
                         f"{c['errors']}/{c['wrong']}, {b['errors']}/{b['wrong']}")
                        for s in results["scenarios"] for c, b in [(s["current"], s["base"])]])
    detail = md_table("| scenario | server | requests | p95 ms | max ms | other procs' CPU (cores) | peak RSS MiB "
                      "| answered in batches |", "llrrrrrr", [
                          (s["name"], name, r["requests"], fmt(r["latency_ms"]["p95"], 2),
                           fmt(r["latency_ms"]["max"], 2),
                           fmt(r["cpu"]["other_processes_cores"], 2), fmt(r["rss_mib"]["peak"], 0), batched_cell(r, ""))
                          for s in results["scenarios"] for name in ("current", "base") for r in [s[name]]])
    per_round = [f"- {s['name']}, {name}: " + ", ".join(f"{r['rps']:g}" for r in s[name]["per_round"])
                 for s in results["scenarios"] for name in ("current", "base")]
    changes = cur.get("uncommitted_duckapi_changes") or []
    return "\n".join([
        f"# Regression benchmark: the bundled 9-row analysis, current vs {base['commit'][:7]}"
        + (" (quick run)" if results["quick"] else ""),
        "",
        f"{machine_line(m, 'duckdb')}. 1-minute load {load_before(load)} before the run (waited for < "
        f"{load.get('max_load', '-')}: {load.get('waited_s', 0)} s), {m['loadavg_at_end'][0]} at the end.",
        "",
        f"Current: this checkout at {cur['commit'][:7]}"
        + (f" with uncommitted changes to {', '.join(c.split()[-1] for c in changes)}" if changes
           else " (duckapi/ clean)")
        + f". Base: {base['commit'][:7]} from {base['tree']}, imports resolved to "
        f"{Path(base['imports']['duckapi']).parent}. {results['rounds']} rounds per scenario, ABBA. "
        "`python -m bench.regression` regenerates this file.",
        "",
        rows,
        "",
        "## Targets",
        "",
        *target_lines(results["targets"]),
        "",
        "## Details",
        "",
        detail,
        "",
        "req/s of each round, in time order (rounds run current, base, base, current, ...):",
        "",
        *per_round,
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--base", default=BASE_COMMIT, help=f"the commit to compare with [default {BASE_COMMIT}]")
        parser.add_argument("--base-tree", type=Path, default=BASE_TREE, help=f"its worktree [default {BASE_TREE}]")

    return bench_main(__doc__, "regression", run, markdown, "tiny request counts: a smoke run under a minute", argv,
                      20240521, options)


if __name__ == "__main__":
    sys.exit(main())
