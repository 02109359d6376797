"""Batch benchmark: `duckapi run` on DuckDB and on Spark local against a plain `dbt build` of the same
project reading the same seeded Parquet file, each command its own process; per-row cost after each
command's fixed cost over 9 rows, peak RSS of its process tree, answers checked after timing.
docs/benchmarks.md (Batch) says how it is measured.

    python -m bench.batch                      # 10M and 100M rows: about 20-30 minutes
    python -m bench.batch --quick              # 1M rows (or any --rows, --engines): writes under bench/.work/
    python -m bench.batch --spark-limit 900    # skip Spark at a size whose projection passes 15 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from bench.harness import (BENCH, MIB, ROOT, Result, bench_main, machine_info, measure_command, package_versions,
                           quiet_first, report, target)

WORK = BENCH / ".work" / "batch"
DUCKAPI = [sys.executable, "-m", "duckapi.cli"]
SEED, GROUPS, VALUES = 20261125, 1000, 200
SIZES = [10_000_000, 100_000_000]  # --quick: 1M
ENGINES = ["duckdb", "spark", "dbt"]
TITLE = "Batch benchmark: `duckapi run` on DuckDB and Spark local vs a plain `dbt build`"
ABOUT = ("Seeded Parquet: 1,000 unicode group ids, 200 event values (-100..99), one row in 100,000 at INT64_MAX or "
         "INT64_MIN. Fixed cost: the faster of two runs over 9 rows; ns per row: (seconds - fixed cost) / rows. "
         "Targets: the answer checks after timing.")
EXPORT = ("import duckdb, sys; rows = duckdb.connect(sys.argv[1], read_only=True).execute('select to_json(a)::varchar "
          "from analysis a').fetchall(); open(sys.argv[2], 'w').write('[' + ','.join(r[0] for r in rows) + ']')")


class Partial(argparse.Action):
    """An option that narrows the run makes it a quick one (results under bench/.work/, not the committed ones)."""

    def __call__(self, parser: object, namespace: object, values: object, option_string: object = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.quick = True


def size_options(parser: argparse.ArgumentParser, timeout: float) -> None:
    """--rows and --timeout (bench/scale.py's too)."""
    parser.add_argument("--rows", type=int, nargs="+", action=Partial,
                        help="input rows (default 10M and 100M; --quick: 1M; any other: a quick run)")
    parser.add_argument("--timeout", type=float, default=timeout, help="kill any one command after this many seconds")


def parquet(path: Path, select: str) -> Path:
    """`select`'s rows as a Parquet file, kept between runs (written under another name until complete)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect() as con:
            con.execute(f"copy ({select}) to '{path.with_suffix('.tmp')}' (format parquet, row_group_size 1000000)")
        path.with_suffix(".tmp").rename(path)
    return path


def generate(rows: int) -> Path:
    """Seeded rows: 1,000 unicode group ids, 200 values from -100 to 99, one row in 100,000 at INT64_MAX or INT64_MIN
    (group sums pass 64 bits); at most 200k (group, value) pairs, so the answer (about 30 MB of JSON) is the same
    size at every row count. 9 rows: the animal example, what a command costs before the first row."""
    if rows == 9:
        from tests.oracle import ANIMALS

        values = ", ".join(f"('{r['group_id']}', {r['event_value']}::bigint)" for r in ANIMALS)
        return parquet(WORK / "rows-9.parquet", f"select * from (values {values}) t(group_id, event_value)")
    return parquet(WORK / f"rows-{rows}.parquet", f"""select
        ['🦆', '🐇', '日本', 'Ωμέγα', 'café', 'tab\t', 'q"uote', 'a'][1 + (hash(i, {SEED}) % 8)::int]
            || '-' || (hash(i, {SEED + 1}) % {GROUPS // 8})::varchar as group_id,
        case when hash(i, {SEED + 2}) % 100000 = 0 then 9223372036854775807
             when hash(i, {SEED + 2}) % 100000 = 1 then -9223372036854775808
             else (hash(i, {SEED + 3}) % {VALUES})::bigint - {VALUES // 2} end as event_value
        from range({rows}) t(i)""")


def shown(label: str, r: Result) -> Result:
    """A measured command, with a line of progress."""
    print(f"  {label}: {r['seconds']:.1f} s, {r['peak_rss_mib']:,} MiB, exit code {r['exit_code']}", flush=True)
    return r


def command(engine: str, source: Path, out: Path, timeout: float) -> Result:
    """`duckapi run` of `source` on `engine`; or (engine "dbt") `dbt build`, minus the seed's answer test, of the
    bundled project, its input model reading `source`, then the answer read from the views (which compute it)."""
    if engine != "dbt":
        env = {**os.environ, "DUCKAPI_TARGET_PATH": str(WORK / "target"),
               "DUCKAPI_DB_PATH": str(WORK / "target" / "dev.duckdb")}
        return measure_command([*DUCKAPI, "run", str(source), "-o", str(out), "--engine", engine], env, timeout)
    folder = WORK / "dbt_project"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(ROOT / "duckapi_dbt", folder, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb", "*.wal"))
    (folder / "models" / "group_event_values.sql").write_text(
        "-- The input: the benchmark's Parquet file instead of the example seed.\n"
        f"select group_id, event_value from read_parquet('{source}')\n")
    db = folder / "bench.duckdb"
    env = {**os.environ, "DUCKAPI_DB_PATH": str(db)}
    build = measure_command([str(Path(sys.executable).with_name("dbt")), "build", "--profiles-dir", ".",
                             "--target-path", "target", "--exclude", "analysis_matches_expected"], env, timeout, folder)
    if build["exit_code"]:
        return build
    export = measure_command([sys.executable, "-c", EXPORT, str(db), str(out)], env, timeout)
    return {**export, "seconds": round(build["seconds"] + export["seconds"], 2), "build_seconds": build["seconds"],
            "answer_seconds": export["seconds"], "peak_rss_mib": max(build["peak_rss_mib"], export["peak_rss_mib"]),
            "cpu_s": round(build["cpu_s"] + export["cpu_s"], 1), "other_cpu_pct": build["other_cpu_pct"]}


def machine() -> Result:
    """machine_info with the versions of DuckDB, Spark, dbt and Java (also bench/scale.py's)."""
    versions = package_versions("duckdb", "pyspark", "dbt-core", "dbt-duckdb", "dbt-spark", "pyarrow")
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines() or ["?"]
    return {**machine_info({}), "versions": {k: v for k, v in versions.items() if v} | {"java": java[0]}}


def run(args: argparse.Namespace) -> Result:
    args.strict = True  # an answer that differs fails the command
    started, load = time.perf_counter(), quiet_first(args)
    (WORK / "answers").mkdir(parents=True, exist_ok=True)
    results: Result = {"machine": machine(), "load": load, "quick": args.quick, "runs": [], "targets": []}
    fixed: dict[str, float] = {}
    for engine in args.engines:
        tries = [command(engine, generate(9), WORK / "answers" / f"9-{engine}.json", args.timeout) for _ in range(2)]
        if failed := [r for r in tries if r["exit_code"]]:
            raise SystemExit(f"{engine} failed on 9 rows: {failed[0]['stderr_tail']}")
        r = shown(f"fixed cost: {engine} over 9 rows", min(tries, key=lambda t: t["seconds"]))  # the warm one
        fixed[engine] = r["seconds"]
        results["runs"].append({"engine": engine, "rows": 9, **r, "tries_s": [t["seconds"] for t in tries]})
    per_row: dict[str, float] = {}  # seconds per row after the fixed cost, at the largest size run so far
    for rows in sorted(args.rows or ([1_000_000] if args.quick else SIZES)):
        source = generate(rows)
        answers: dict[str, Path] = {}
        for engine in args.engines:
            entry: Result = {"engine": engine, "rows": rows, "input_mib": round(source.stat().st_size / MIB, 1)}
            projected, out = fixed[engine] + per_row.get(engine, 0) * rows, WORK / "answers" / f"{rows}-{engine}.json"
            if engine == "spark" and engine in per_row and projected > args.spark_limit:
                entry["skipped"] = f"projected {projected / 60:.0f} min, over --spark-limit {args.spark_limit:.0f} s"
                print(f"  spark: skipped ({entry['skipped']})", flush=True)
            else:
                entry.update(shown(engine, command(engine, source, out, args.timeout)))
            if entry.get("exit_code") == 0:
                net = max(entry["seconds"] - fixed[engine], 1e-9)
                per_row[engine], answers[engine] = net / rows, out
                entry.update(rows_per_s=round(rows / entry["seconds"]), ns_per_row=round(net / rows * 1e9, 1),
                             fixed_cost_s=fixed[engine])
            results["runs"].append(entry)
        results["targets"] += checks(answers, rows)
    return results | {"total_s": round(time.perf_counter() - started, 1)}


def checks(answers: dict[str, Path], rows: int) -> list[Result]:
    """DuckDB's and Spark's answers: the same bytes. dbt's: the same JSON value. Group counts: the input rows."""
    if "duckdb" not in answers:
        return []
    answer = json.loads(duck := answers["duckdb"].read_bytes())
    counted = sum(g["group_count"] for g in answer[0]["group_histogram"])
    compare = (("spark", "bytes compared", lambda b: b == duck),
               ("dbt", "JSON values compared", lambda b: json.loads(b) == answer))
    return [target(f"{rows:,} rows: group counts add up to the input rows", counted == rows, f"{counted:,}"),
            *(target(f"{rows:,} rows: {engine}'s answer is DuckDB's", same(answers[engine].read_bytes()), how)
              for engine, how, same in compare if engine in answers)]


def options(parser: argparse.ArgumentParser) -> None:
    size_options(parser, timeout=1800)
    parser.add_argument("--engines", nargs="+", default=ENGINES, choices=ENGINES, action=Partial)
    parser.add_argument("--spark-limit", type=float, default=900, help="skip Spark where it would take longer (s)")


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, "batch", run, lambda r: report(TITLE, r, ABOUT), "1M rows", argv, options=options)


if __name__ == "__main__":
    sys.exit(main())
