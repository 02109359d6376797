"""Data-dependent models, in-process through the Python API: a known key against the same SQL as a
plain model (p50 at most 1.3x), new keys (each a dbt rendering), and the bundled endpoint against
the code before data-dependent models (p50 at most 1.05x). docs/benchmarks.md says how.

    python -m bench.dependent           # writes bench/dependent_results.json, bench/DEPENDENT_RESULTS.md
    python -m bench.dependent --quick   # smoke run; writes under bench/.work/
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
#: The commit before data-dependent models landed.
BASE = "a86f996"

MACRO = """{% macro distinct_values(relation, column) -%}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set query -%}select distinct {{ adapter.quote(column) }} from {{ relation }} order by 1{%- endset -%}
  {{ return(run_query(query).columns[0].values() | list) }}
{%- endmacro %}
"""
PIVOT = """select
{%- for g in distinct_values(ref('group_event_values'), 'group_id') %}
  coalesce(sum(case when group_id = '{{ g | replace("'", "''") }}' then event_value end), 0)
    as "{{ g | replace('"', '""') }}"{{ "," if not loop.last }}
{%- endfor %}
from {{ ref('group_event_values') }}
"""
SERVED = """
  - name: {name}
    config:
      meta:
        duckapi: {{path: /{name}/, input: group_event_values}}
"""


def rows_of(n: int, groups: list[str]) -> list[dict[str, Any]]:
    return [{"group_id": groups[i % len(groups)], "event_value": i % 97} for i in range(n)]


def p50(fn: Callable[[], Any], rounds: int) -> float:
    """The median seconds of `rounds` calls."""
    return statistics.median(timed(fn)[1] for _ in range(rounds))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """What fn returns, and the seconds it took."""
    started = time.perf_counter()
    return fn(), time.perf_counter() - started


def make_project(folder: Path) -> Path:
    project = folder / "project"
    shutil.copytree(ROOT / "duckapi_dbt", project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    (project / "macros" / "distinct_values.sql").write_text(MACRO)
    (project / "models" / "pivot.sql").write_text(PIVOT)
    with (project / "models" / "schema.yml").open("a") as schema:
        schema.write(SERVED.format(name="pivot"))
    return project


def known_and_new(folder: Path, plan: dict[str, int]) -> dict[str, Any]:
    import duckapi
    from duckapi.dbt import project as dbt_project
    from duckapi.settings import Settings

    project = make_project(folder)
    db = folder / "dev.duckdb"
    settings = Settings.from_env(env={}, project_dir=project, db_path=db, executor_nice=0)
    dbt_project.build(settings)
    groups = ["alpha", "beta", "gamma", "delta"]
    with duckapi.load(project, db=db) as served:
        first = rows_of(9, groups)
        answer, first_answer_s = timed(lambda: served.run("pivot", first).json)
        variant = served.call("pivot").resolved(served.call("pivot").rows(first))
        plain_sql = next(n.compiled_sql for n in variant.nodes if n.name == "pivot")
    (project / "models" / "pivot_plain.sql").write_text(plain_sql.replace('"dev"."main"."group_event_values"',
                                                                          "{{ ref('group_event_values') }}"))
    with (project / "models" / "schema.yml").open("a") as schema:
        schema.write(SERVED.format(name="pivot_plain"))
    (project / "target").exists() and shutil.rmtree(project / "target")
    dbt_project.build(settings)
    results: dict[str, Any] = {"first_answer": json.loads(answer), "known_key": []}
    with duckapi.load(project, db=db) as served:
        for n in (9, 100_000):
            rows = rows_of(n, groups)
            a, b = served.call("pivot"), served.call("pivot_plain")
            ta, tb = a.rows(rows), b.rows(rows)
            assert a.json(ta) == b.json(tb), "the known key's answer differs from the plain model's"
            rounds = plan["small_rounds"] if n < 1000 else plan["big_rounds"]
            sides: dict[str, list[float]] = {"pivot": [], "pivot_plain": []}
            for _ in range(4):  # A B B A
                abba = (("pivot", a, ta), ("pivot_plain", b, tb), ("pivot_plain", b, tb), ("pivot", a, ta))
                for name, call, tables in abba:
                    sides[name].append(p50(lambda: call.json(tables), rounds))
            known, plain = statistics.median(sides["pivot"]), statistics.median(sides["pivot_plain"])
            results["known_key"].append({"rows": n, "p50_ms": round(known * 1e3, 3),
                                         "plain_p50_ms": round(plain * 1e3, 3),
                                         "ratio": round(known / plain, 3), "target": 1.3, "met": known / plain <= 1.3})
        renderings = served.service.state.endpoints["/pivot/"].renderings
        assert renderings is not None
        before = renderings.renders
        news, wall = timed(lambda: [timed(lambda: served.run("pivot", rows_of(9, [f"new{i}a", f"new{i}b"])).json)[1]
                                    for i in range(plan["new_keys"])])
        assert renderings.renders - before == plan["new_keys"]
    results["new_key"] = {
        "first_answer_s": round(first_answer_s, 3), "requests": len(news),
        "p50_s": round(statistics.median(news), 3), "max_s": round(max(news), 3),
        "throughput_rps": round(len(news) / wall, 3),
    }
    return results


def plain_side(project: str, db: str, rounds: int) -> dict[str, float]:
    """The bundled endpoint over 9 rows, c=1 and c=8: run in a process of its own."""
    import duckapi

    rows = rows_of(9, ["🦆", "🐇", "🐰"])
    with duckapi.load(project, db=db) as served:
        call = served.call("analyse_data")
        served.run("analyse_data", rows).json
        one = p50(lambda: call.json(call.rows(rows)), rounds)
        with ThreadPoolExecutor(8) as pool:
            def batch() -> None:
                list(pool.map(lambda _: call.json(call.rows(rows)), range(8)))
            eight = p50(batch, max(1, rounds // 8))
    return {"c1_p50_ms": one * 1e3, "c8_batch_p50_ms": eight * 1e3}


def no_regression(folder: Path, plan: dict[str, int]) -> dict[str, Any]:
    from duckapi.dbt import project as dbt_project
    from duckapi.settings import Settings

    db = folder / "bundled.duckdb"
    dbt_project.build(Settings.from_env(env={}, db_path=db, target_path=folder / "bundled-target", executor_nice=0))
    base = folder / "base"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), BASE], check=True,
                   capture_output=True)
    try:
        sides: dict[str, list[dict[str, float]]] = {"head": [], "base": []}
        for name in ("head", "base", "base", "head") * plan["regression_pairs"]:
            code = ROOT if name == "head" else base
            env = {**os.environ, "PYTHONPATH": str(code), "DUCKAPI_TARGET_PATH": str(folder / f"target-{name}")}
            out = subprocess.run([sys.executable, "-c", (
                "import json, sys; sys.path.insert(0, %r); from bench_dependent_side import plain_side; "
                "print(json.dumps(plain_side(%r, %r, %d)))") % (str(folder), str(code / "duckapi_dbt"), str(db),
                                                                plan["plain_rounds"])],
                env=env, check=True, capture_output=True, text=True, cwd=str(code))
            sides[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
    rows = []
    for key, label in (("c1_p50_ms", "c=1"), ("c8_batch_p50_ms", "c=8 (8 calls at once)")):
        head = statistics.median(s[key] for s in sides["head"])
        was = statistics.median(s[key] for s in sides["base"])
        rows.append({"scenario": label, "head_ms": round(head, 3), "base_ms": round(was, 3),
                     "ratio": round(head / was, 3), "target": 1.05, "met": head / was <= 1.05})
    return {"base": BASE, "rows": rows}


def markdown(results: dict[str, Any]) -> str:
    new, regression = results["new_key"], results["no_regression"]
    known = "\n".join(f"| {r['rows']:,} | {r['p50_ms']} | {r['plain_p50_ms']} | {r['ratio']} | <= {r['target']} "
                      f"| {r['met']} |" for r in results["known_key"])
    base = "\n".join(f"| {r['scenario']} | {r['head_ms']} | {r['base_ms']} | {r['ratio']} | <= {r['target']} "
                     f"| {r['met']} |" for r in regression["rows"])
    return f"""# Data-dependent models: benchmark results

Run {results['when']} on {results['machine']}; `python -m bench.dependent` (bench/dependent.py says how).

## A known key against the same SQL as a plain model (p50, in-process)

| rows | data-dependent ms | plain model ms | ratio | target | met |
|---|---|---|---|---|---|
{known}

## New keys (each a dbt rendering)

First answer after start-up: {new['first_answer_s']} s. {new['requests']} requests, each with new groups, one after \
the other: p50 {new['p50_s']} s, max {new['max_s']} s, {new['throughput_rps']} requests/s.

## Endpoints without data-dependent models: this code against {regression['base']}

| scenario | this code ms | before ms | ratio | target | met |
|---|---|---|---|---|---|
{base}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    plan = dict(zip(("small_rounds", "big_rounds", "new_keys", "plain_rounds", "regression_pairs"),
                    (50, 2, 2, 200, 1) if args.quick else (400, 5, 5, 2000, 2)))
    work = ROOT / "bench" / ".work" / "dependent"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # The side process imports plain_side from a copy that imports no bench module.
    shutil.copyfile(Path(__file__), work / "bench_dependent_side.py")
    results = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
                          f"{platform.python_version()}",
               "plan": plan, **known_and_new(work, plan), "no_regression": no_regression(work, plan)}
    from bench.harness import results_paths, write_results  # not at the top: the side process's copy imports no bench

    return write_results(results, *results_paths("dependent", args.quick), markdown, indent=1, ascii=True)


if __name__ == "__main__":
    sys.exit(main())
