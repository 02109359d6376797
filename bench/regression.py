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
from pathlib import Path

from bench.harness import (
    ROOT, WORK, Result, Server, bench_main, build, clean_env, git, machine_info, quiet_first, report, run_scenarios,
    scenario_results, serve_cmd, target, tree_changes, verify,
)
from bench.load import FULL, QUICK, all_correct

BASE_COMMIT = "91921fd"
BASE_TREE = Path("/tmp/duckapi-base")
SCENARIOS = ("9 rows c=1", "9 rows c=8")
#: More rounds than bench/load.py's 3, in ABBA order (current, base, base, current, ...): a 10%
#: threshold needs the two sides interleaved finely, and neither always first after a pause.
ROUNDS = 8
#: The regression allowed: req/s at least (1 - this) x the base's, p50 at most (1 + this) x.
TOLERANCE = 0.10
HERE = WORK / "regression"
MODULES = ("duckapi", "duckapi.api.app", "duckapi.engines.duckdb", "duckapi.pipeline")
TITLE = "Regression benchmark: the bundled 9-row analysis, current vs base"
ABOUT = "Each side builds and serves the bundled project with its own code; rounds run current, base, base, current."


def base_tree(path: Path, commit: str) -> None:
    """A clean worktree of `commit` at `path` (added if missing)."""
    want = git("rev-parse", f"{commit}^{{commit}}")
    if not path.exists():
        git("worktree", "add", "--detach", str(path), want)
    if (head := git("rev-parse", "HEAD", cwd=path)) != want:
        raise RuntimeError(f"{path} is at {head[:7]}, not {commit}: git worktree remove {path}, or pass --base-tree")
    if git("status", "--porcelain", "--", "duckapi", "duckapi_dbt", cwd=path):
        raise RuntimeError(f"{path} has local changes to duckapi/ or duckapi_dbt/")


def side(tree: Path, env: dict[str, str]) -> Result:
    """One side's commit, tree and where its server's modules import from, run as the server is (must be `tree`)."""
    code = f"import json, sys, {', '.join(MODULES)}; print(json.dumps([sys.modules[m].__file__ for m in {MODULES}]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=True)
    files = dict(zip(MODULES, json.loads(out.stdout)))
    if stray := [f for f in files.values() if not Path(f).resolve().is_relative_to(tree.resolve())]:
        raise RuntimeError(f"modules of {tree} import from elsewhere: {stray}")
    return {"commit": git("rev-parse", "HEAD", cwd=tree), "tree": str(tree), "imports": files}


def run(args: argparse.Namespace) -> Result:
    order = QUICK if args.quick else FULL
    scenarios = [sc for sc in order if sc.name in SCENARIOS]
    quiet, t0 = quiet_first(args), time.monotonic()
    trees = {"current": ROOT, "base": args.base_tree}
    base_tree(args.base_tree, args.base)
    # PYTHONPATH: ahead of the editable install's finder, which points at this checkout.
    envs = {s: clean_env(PYTHONPATH=str(t), DUCKAPI_TARGET_PATH=str(HERE / s / "target")) for s, t in trees.items()}
    results: Result = {"quick": args.quick, "seed": args.seed, "rounds": 2 if args.quick else ROUNDS,
                       "tolerance": TOLERANCE, "load": quiet, "base": side(trees["base"], envs["base"]),
                       "current": side(ROOT, envs["current"]) | {"uncommitted_duckapi_changes": tree_changes()}}
    print(f"building the bundled project with each side's code into {HERE}", flush=True)
    for s in trees:
        build(HERE / s / "dev.duckdb", envs[s], trees[s], f"regression-build-{s}.log")
    servers = {s: Server(f"regression-{s}", serve_cmd(HERE / s / "dev.duckdb"), envs[s], cwd=trees[s]) for s in trees}
    # bench/load.py's payloads: same seed, same scenario index.
    raw = run_scenarios(servers, scenarios, [order.index(sc) for sc in scenarios], args.seed, t0, counted=set(servers),
                        rounds=results["rounds"], abba=True)
    print("verifying answers", flush=True)
    results["scenarios"] = []
    for sc, work, per_server in raw:  # both sides are duckapi: exact equality with the oracle
        entry = scenario_results(sc, per_server, lambda name, t: verify(t.sent, work.expected), "batched", "per_round")
        c, b = entry["current"], entry["base"]
        entry["throughput_ratio"] = round(c["throughput_rps"] / b["throughput_rps"], 3) if b["throughput_rps"] else None
        entry["p50_ratio"] = round(c["latency_ms"]["p50"] / b["latency_ms"]["p50"], 3)
        results["scenarios"].append(entry)
    return results | {"targets": targets(results["scenarios"]), "machine": machine_info(servers),
                      "total_s": round(time.monotonic() - t0, 1)}


def targets(scenarios: list[Result]) -> list[Result]:
    out = []
    for s in scenarios:
        c, b, r, p = s["current"], s["base"], s["throughput_ratio"], s["p50_ratio"]
        out += [target(f"{s['name']}: req/s at least {1 - TOLERANCE:.0%} of the base's", (r or 0) >= 1 - TOLERANCE,
                       f"{c['throughput_rps']} vs {b['throughput_rps']} req/s: {r}x"),
                target(f"{s['name']}: p50 at most {1 + TOLERANCE:.0%} of the base's", p <= 1 + TOLERANCE,
                       f"{c['latency_ms']['p50']} vs {b['latency_ms']['p50']} ms: {p}x")]
    return out + all_correct(scenarios, ["current", "base"])


def main(argv: list[str] | None = None) -> int:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--base", default=BASE_COMMIT, help=f"the commit to compare with [default {BASE_COMMIT}]")
        parser.add_argument("--base-tree", type=Path, default=BASE_TREE, help=f"its worktree [default {BASE_TREE}]")

    return bench_main(__doc__, "regression", run, lambda results: report(TITLE, results, ABOUT),
                      "tiny request counts: a smoke run under a minute", argv, 20240521, options)


if __name__ == "__main__":
    sys.exit(main())
