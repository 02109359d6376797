"""Data-dependent models via the Python API: a known key against the same SQL as a plain model (p50 at most 1.3x),
new keys (each a dbt rendering), the bundled endpoint against the code before them (p50 at most 1.05x); see
docs/benchmarks.md. No bench module is imported at the top: a side process imports plain_side from a copy of this.

    python -m bench.dependent           # writes bench/dependent_results.json, bench/DEPENDENT_RESULTS.md
    python -m bench.dependent --quick   # smoke run; writes under bench/.work/
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
BASE = "a86f996"  # the commit before data-dependent models landed
TITLE = "Data-dependent models: benchmark results"
ABOUT = f"In-process: `pivot` against `pivot_plain` (the same SQL, plain), new keys; /analyse_data/ against {BASE}."


def rows_of(n: int, groups: list[str]) -> list[dict[str, Any]]:
    return [{"group_id": groups[i % len(groups)], "event_value": i % 97} for i in range(n)]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """What fn returns, and the seconds it took."""
    started = time.perf_counter()
    return fn(), time.perf_counter() - started


def p50(fn: Callable[[], Any], rounds: int) -> float:
    """The median milliseconds of `rounds` calls."""
    return statistics.median(timed(fn)[1] for _ in range(rounds)) * 1e3


def abba(sides: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[Any]]:
    """Each side's measurements, taken in A B B A order `repeats` times, so the machine's drift weighs on both."""
    names, found = list(sides), {name: [] for name in sides}
    for name in (names + names[::-1]) * repeats:
        found[name].append(sides[name]())
    return found


def known_and_new(work: Path, plan: dict[str, int]) -> dict[str, Any]:
    """The bundled project with bench/projects/dependent/ over it: `pivot` against `pivot_plain`, then new keys."""
    import duckapi
    from duckapi.dbt import project as dbt_project
    from duckapi.settings import Settings

    project, db, groups = work / "project", work / "dev.duckdb", ["alpha", "beta", "gamma", "delta"]
    shutil.copytree(ROOT / "duckapi_dbt", project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    shutil.copytree(ROOT / "bench" / "projects" / "dependent", project, dirs_exist_ok=True)
    dbt_project.build(Settings.from_env(env={}, project_dir=project, db_path=db, executor_nice=0))
    known_key = []
    with duckapi.load(project, db=db) as served:
        answer, first_answer_s = timed(lambda: served.run("pivot", rows_of(9, groups)).json)
        for n in (9, 100_000):
            rounds = plan["small_rounds"] if n < 1000 else plan["big_rounds"]
            calls = {name: (served.call(name), served.call(name).rows(rows_of(n, groups)))
                     for name in ("pivot", "pivot_plain")}
            assert len({call.json(tables) for call, tables in calls.values()}) == 1, "pivot_plain answers otherwise"
            sides = abba({name: lambda c=c, t=t: p50(lambda: c.json(t), rounds) for name, (c, t) in calls.items()}, 4)
            a, b = (statistics.median(sides[name]) for name in ("pivot", "pivot_plain"))
            known_key.append(dict(rows=n, p50_ms=round(a, 3), plain_p50_ms=round(b, 3), ratio=round(a / b, 3)))
        renderings = served.service.state.endpoints["/pivot/"].renderings
        before = renderings.renders
        news, wall = timed(lambda: [timed(lambda: served.run("pivot", rows_of(9, [f"new{i}a", f"new{i}b"])).json)[1]
                                    for i in range(plan["new_keys"])])
        assert renderings.renders - before == plan["new_keys"]
    return {"first_answer": json.loads(answer), "known_key": known_key, "new_key": {
        "first_answer_s": round(first_answer_s, 3), "requests": len(news), "p50_s": round(statistics.median(news), 3),
        "max_s": round(max(news), 3), "throughput_rps": round(len(news) / wall, 3)}}


def plain_side(project: str, db: str, rounds: int) -> dict[str, float]:
    """The bundled endpoint over 9 rows, c=1 and c=8: run in a process of its own."""
    import duckapi

    rows = rows_of(9, ["🦆", "🐇", "🐰"])
    with duckapi.load(project, db=db) as served:
        call = served.call("analyse_data")
        served.run("analyse_data", rows).json
        one = p50(lambda: call.json(call.rows(rows)), rounds)
        with ThreadPoolExecutor(8) as pool:
            eight = p50(lambda: list(pool.map(lambda _: call.json(call.rows(rows)), range(8))), max(1, rounds // 8))
    return {"c=1": one, "c=8 (8 calls at once)": eight}


def no_regression(work: Path, plan: dict[str, int]) -> dict[str, Any]:
    from duckapi.dbt import project as dbt_project
    from duckapi.settings import Settings

    db, base = work / "bundled.duckdb", work / "base"
    dbt_project.build(Settings.from_env(env={}, db_path=db, target_path=work / "bundled-target", executor_nice=0))
    shutil.copyfile(Path(__file__), work / "bench_dependent_side.py")  # what the side process imports
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), BASE], check=True,
                   capture_output=True)

    def side(name: str, code: Path) -> dict[str, float]:
        """plain_side in a process of its own, importing duckapi from `code` (and plain_side from `work`)."""
        env = {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{work}",
               "DUCKAPI_TARGET_PATH": str(work / f"target-{name}")}
        script = (f"import json, bench_dependent_side as s; print(json.dumps(s.plain_side("
                  f"{str(code / 'duckapi_dbt')!r}, {str(db)!r}, {plan['plain_rounds']})))")
        out = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, cwd=code)
        return json.loads(out.stdout.strip().splitlines()[-1])

    try:
        sides = abba({"head": lambda: side("head", ROOT), "base": lambda: side("base", base)}, plan["regression_pairs"])
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
    rows = []
    for label in sides["head"][0]:
        now, was = (statistics.median(s[label] for s in sides[name]) for name in ("head", "base"))
        rows.append(dict(scenario=label, head_ms=round(now, 3), base_ms=round(was, 3), ratio=round(now / was, 3)))
    return {"base": BASE, "rows": rows}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.harness import WORK, machine_info, quiet_first, target

    plan = dict(zip(("small_rounds", "big_rounds", "new_keys", "plain_rounds", "regression_pairs"),
                    (50, 2, 2, 200, 1) if args.quick else (400, 5, 5, 2000, 2)))
    work = WORK / "dependent"
    shutil.rmtree(work, ignore_errors=True)
    results = {"machine": machine_info({}), "load": quiet_first(args), "quick": args.quick, "plan": plan,
               **known_and_new(work, plan), "no_regression": no_regression(work, plan)}
    return results | {"targets": [
        *(target(f"a known key, {r['rows']:,} rows: p50 at most 1.3x the same SQL as a plain model",
                 r["ratio"] <= 1.3, f"{r['ratio']}x") for r in results["known_key"]),
        *(target(f"/analyse_data/, {r['scenario']}: p50 at most 1.05x {BASE}'s", r["ratio"] <= 1.05, f"{r['ratio']}x")
          for r in results["no_regression"]["rows"])]}


def main(argv: list[str] | None = None) -> int:
    from bench.harness import bench_main, report  # not at the top: see the docstring

    return bench_main(__doc__, "dependent", run, lambda r: report(TITLE, r, ABOUT), "a smoke run of a minute", argv)


if __name__ == "__main__":
    sys.exit(main())
