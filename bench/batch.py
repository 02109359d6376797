"""Batch benchmark: `duckapi run` on DuckDB and on Spark local against a plain `dbt build` of the same
project reading the same seeded Parquet file, each command its own process; per-row cost after each
command's fixed cost over 9 rows, peak RSS of its process tree, answers checked after timing.
docs/benchmarks.md (Batch) says how it is measured.

    python -m bench.batch                      # 10M and 100M rows: about 20-30 minutes
    python -m bench.batch --rows 1000000       # a quick look; writes under bench/.work/ unless --out-* given
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

from bench.harness import BENCH, MIB, ROOT, Result, machine_info, measure_command, package_versions, write_results

WORK = BENCH / ".work" / "batch"
SEED, GROUPS, VALUES = 20261125, 1000, 200
ENGINES = ["duckdb", "spark", "dbt"]
LABELS = {"duckdb": "`duckapi run` (DuckDB)", "spark": "`duckapi run --engine spark` (local[*])",
          "dbt": "plain `dbt build` + read the answer"}
EXPORT = """import duckdb, sys
rows = duckdb.connect(sys.argv[1], read_only=True).execute('select to_json(a)::varchar from analysis a').fetchall()
open(sys.argv[2], 'w').write('[' + ','.join(r[0] for r in rows) + ']')
"""


def generate(path: Path, rows: int) -> Path:
    """Seeded rows: 1,000 unicode group ids, 200 values from -100 to 99, and one row in 100,000
    at INT64_MAX or INT64_MIN (so group sums pass 64 bits). At most 200k (group, value) pairs,
    so the answer (about 30 MB of JSON) is the same size at every row count."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect() as con:
            con.execute(f"set threads = {os.cpu_count() or 1}")
            con.execute(f"""copy (select
                ['🦆', '🐇', '日本', 'Ωμέγα', 'café', 'tab\t', 'q"uote', 'a'][1 + (hash(i, {SEED}) % 8)::int]
                    || '-' || (hash(i, {SEED + 1}) % {GROUPS // 8})::varchar as group_id,
                case when hash(i, {SEED + 2}) % 100000 = 0 then 9223372036854775807
                     when hash(i, {SEED + 2}) % 100000 = 1 then -9223372036854775808
                     else (hash(i, {SEED + 3}) % {VALUES})::bigint - {VALUES // 2} end as event_value
                from range({rows}) t(i)) to '{path.with_suffix(".tmp")}' (format parquet, row_group_size 1000000)""")
        path.with_suffix(".tmp").rename(path)
    return path


def tiny(path: Path) -> Path:
    """The nine-row animal example: what a command costs before the first row."""
    if not path.exists():
        from tests.oracle import ANIMALS

        path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect() as con:
            con.execute("create table t (group_id varchar, event_value bigint)")
            con.executemany("insert into t values (?, ?)", [(r["group_id"], r["event_value"]) for r in ANIMALS])
            con.execute(f"copy t to '{path}' (format parquet)")
    return path


def duckapi_run(source: Path, out: Path, engine: str, timeout: float) -> Result:
    env = {**os.environ, "DUCKAPI_TARGET_PATH": str(WORK / "target"),
           "DUCKAPI_DB_PATH": str(WORK / "target" / "dev.duckdb")}
    result = measure_command([sys.executable, "-m", "duckapi.cli", "run", str(source), "-o", str(out), "--engine",
                              engine], env, timeout)
    return result | {"command": ["duckapi", "run", source.name, "-o", out.name, "--engine", engine]}


def dbt_build(source: Path, out: Path, timeout: float) -> Result:
    """`dbt build` (minus the seed-specific answer test) of the bundled project, its input model reading `source`
    instead of the seed; then the answer read from the built views (the moment views compute it)."""
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
    export = measure_command([sys.executable, "-c", EXPORT, str(db), str(out)], env, timeout) \
        if build["exit_code"] == 0 else {}
    db.unlink(missing_ok=True)
    return {
        "seconds": round(build["seconds"] + export.get("seconds", 0), 2),
        "build_seconds": build["seconds"], "answer_seconds": export.get("seconds"),
        "peak_rss_mib": max(build["peak_rss_mib"], export.get("peak_rss_mib", 0)),
        "cpu_s": round(build["cpu_s"] + export.get("cpu_s", 0), 1), "other_cpu_pct": build["other_cpu_pct"],
        "exit_code": build["exit_code"] or export.get("exit_code"),
        "timed_out": build["timed_out"] or export.get("timed_out", False),
        "stderr_tail": build["stderr_tail"] or export.get("stderr_tail", ""),
        "command": ["dbt", "build", "--exclude", "analysis_matches_expected", "+", "select to_json(a) from analysis a"],
    }


def machine() -> Result:
    """When and where, with the versions of DuckDB, Spark, dbt and Java (also bench/scale.py's)."""
    m = machine_info({})
    versions = package_versions("duckdb", "pyspark", "dbt-core", "dbt-duckdb", "dbt-spark", "pyarrow")
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines() or ["?"]
    return {**{k: m[k] for k in ("date_utc", "cpu_count", "memory_gib", "platform", "python")},
            "versions": {k: v for k, v in versions.items() if v} | {"java": java[0]}, "git_head": m["git_head"]}


def run(sizes: list[int], engines: list[str], spark_limit: float, timeout: float) -> Result:
    started = time.perf_counter()
    (WORK / "answers").mkdir(parents=True, exist_ok=True)
    results: Result = {"machine": machine(), "seed": SEED, "groups": GROUPS, "values": VALUES, "runs": []}

    def command(engine: str, source: Path, out: Path) -> Result:
        return dbt_build(source, out, timeout) if engine == "dbt" else duckapi_run(source, out, engine, timeout)

    fixed: dict[str, float] = {}
    for engine in engines:
        print(f"fixed cost: {engine} over 9 rows, twice", flush=True)
        out = WORK / "answers" / f"9-{engine}.json"
        tries = [command(engine, tiny(WORK / "rows-9.parquet"), out) for _ in range(2)]
        if failed := [r for r in tries if r["exit_code"] != 0]:
            raise SystemExit(f"{engine} failed on 9 rows: {failed[0]['stderr_tail']}")
        r = min(tries, key=lambda t: t["seconds"])  # the warm one: dbt's partial parse, the page cache
        fixed[engine] = r["seconds"]
        results["runs"].append({"engine": engine, "rows": 9, **r, "tries_s": [t["seconds"] for t in tries]})
    for rows in sizes:
        print(f"generating {rows:,} rows", flush=True)
        t = time.perf_counter()
        source = generate(WORK / f"rows-{rows}.parquet", rows)
        print(f"  {source.stat().st_size / MIB:,.0f} MiB in {time.perf_counter() - t:.0f} s", flush=True)
        answers: dict[str, Path] = {}
        for engine in engines:
            entry: Result = {"engine": engine, "rows": rows, "input_mib": round(source.stat().st_size / MIB, 1)}
            ok = [r for r in results["runs"] if r["engine"] == engine and r["rows"] > 9 and r.get("exit_code") == 0]
            big = max(ok, key=lambda r: r["rows"], default=None)  # projected from the largest size it ran
            per_row = max(big["seconds"] - fixed[engine], 0) / big["rows"] if big else 0
            if engine == "spark" and per_row:
                if (projected := fixed[engine] + per_row * rows) > spark_limit:
                    entry["skipped"] = (f"projected {projected / 60:.0f} min from the smaller run, over the "
                                        f"{spark_limit / 60:.0f} min bound")
                    print(f"  spark: skipped ({entry['skipped']})", flush=True)
                    results["runs"].append(entry)
                    continue
            print(f"  {engine} ...", end="", flush=True)
            out = WORK / "answers" / f"{rows}-{engine}.json"
            r = command(engine, source, out)
            entry.update(r)
            if r["exit_code"] == 0:
                net = max(r["seconds"] - fixed[engine], 1e-9)
                entry.update(rows_per_s=round(rows / r["seconds"]), rows_per_s_after_fixed_cost=round(rows / net),
                             ns_per_row=round(net / rows * 1e9, 1), fixed_cost_s=fixed[engine],
                             answer_mib=round(out.stat().st_size / MIB, 1))
                answers[engine] = out
            print(f" {r['seconds']:.1f} s, peak {r['peak_rss_mib']:,} MiB{' (FAILED)' if r['exit_code'] else ''}",
                  flush=True)
            results["runs"].append(entry)
        check(answers, rows, results.setdefault("checks", []))
    results["total_s"] = round(time.perf_counter() - started, 1)
    return results


def check(answers: dict[str, Path], rows: int, checks: list[Result]) -> None:
    """DuckDB's and Spark's answers: the same bytes. dbt's: the same JSON value. Group counts: the input rows."""
    duck = answers["duckdb"].read_bytes() if "duckdb" in answers else None
    if duck is not None and "spark" in answers:
        checks.append({"rows": rows, "check": "duckdb == spark (bytes)", "pass": duck == answers["spark"].read_bytes()})
    if duck is not None and "dbt" in answers:
        checks.append({"rows": rows, "check": "duckdb == dbt build (JSON value)",
                       "pass": json.loads(duck) == json.loads(answers["dbt"].read_bytes())})
    if duck is not None:
        counted = sum(g["group_count"] for g in json.loads(duck)[0]["group_histogram"])
        checks.append({"rows": rows, "check": "group counts add up to the input rows", "pass": counted == rows})
    for c in checks[-3:]:
        print(f"  check {c['check']}: {'ok' if c['pass'] else 'FAILED'}", flush=True)


def measured(m: Result, name: str) -> str:
    """The report's first line: when, the machine, the versions, the command and the raw numbers."""
    return (f"Measured {m['date_utc']} on {m['cpu_count']} cores, {m['memory_gib']} GiB ({m['platform']}); "
            f"{', '.join(f'{k} {v}' for k, v in m['versions'].items())}. Command: `python -m bench.{name}`; raw "
            f"numbers in `bench/{name}_results.json`.")


def markdown(results: Result) -> str:
    lines = [
        "# Batch benchmark: `duckapi run` on DuckDB and Spark local vs a plain `dbt build`", "",
        measured(results["machine"], "batch"), "",
        f"Input: seeded Parquet, {results['groups']:,} unicode group ids, {results['values']} event values "
        "(-100..99) plus one row in 100,000 at INT64_MAX or INT64_MIN; every answer is the same size (at most 200k "
        "(group, value) pairs), so time is spent on the rows.", "",
        "| rows | engine | wall time | rows/s | fixed cost | per row (after fixed cost) | peak memory (process tree) "
        "| other processes' CPU |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in (r for r in results["runs"] if r["rows"] != 9):
        head = f"| {r['rows']:,} | {LABELS[r['engine']]} |"
        peak_cpu = f"{r['peak_rss_mib']:,} MiB | {r['other_cpu_pct']}%"
        if r.get("skipped"):
            lines.append(f"{head} not run: {r['skipped']} | | | | | |")
        elif r.get("exit_code"):
            why = "timed out" if r.get("timed_out") else f"exit {r['exit_code']}"
            lines.append(f"{head} failed ({why}) after {r['seconds']:,.1f} s | | | | {peak_cpu} |")
        else:
            extra = (f" (build {r['build_seconds']:,.1f} s + answer {r['answer_seconds']:,.1f} s)"
                     if r["engine"] == "dbt" else "")
            lines.append(f"{head} {r['seconds']:,.1f} s{extra} | {r['rows_per_s']:,} | {r['fixed_cost_s']:.1f} s "
                         f"| {r['ns_per_row']:,.0f} ns | {peak_cpu} |")
    lines += ["", *conclusions(results), "", "Checks after timing:", ""]
    lines += [f"* {c['rows']:,} rows: {c['check']}: {'pass' if c['pass'] else 'FAIL'}"
              for c in results.get("checks", [])]
    return "\n".join([*lines, "", f"Total benchmark time: {results['total_s'] / 60:.1f} min.", ""])


def conclusions(results: Result) -> list[str]:
    """When to switch to Spark, from the per-row costs measured at the largest size."""
    ran = [r for r in results["runs"] if r["rows"] > 9 and r.get("exit_code") == 0]
    if not ran:
        return []
    largest = max(r["rows"] for r in ran)
    at = {r["engine"]: r for r in ran if r["rows"] == largest}
    duck, spark, dbt = at.get("duckdb"), at.get("spark"), at.get("dbt")
    lines = ["## When to switch to Spark", ""]
    if duck:
        lines.append(
            f"* DuckDB costs {duck['ns_per_row']:,.0f} ns per row here ({results['machine']['cpu_count'] or 1} cores, "
            f"{duck['peak_rss_mib']:,} MiB at {largest:,} rows: memory follows the answer's size, not the input's). At "
            f"that rate one machine like this does about {3600 / (duck['ns_per_row'] * 1e-9) / 1e9:,.0f} billion rows "
            f"an hour, {duck['fixed_cost_s'] + duck['ns_per_row']:,.0f} s for a billion rows (a linear extrapolation; "
            f"the input of a billion such rows is about {duck['input_mib'] * 1e9 / largest / 1024:,.1f} GiB of "
            "Parquet).")
    if duck and spark:
        ratio = spark["ns_per_row"] / duck["ns_per_row"]
        lines += [
            f"* Spark local costs {spark['ns_per_row']:,.0f} ns per row on the same cores: {ratio:,.0f}x DuckDB's, "
            f"plus {spark['fixed_cost_s']:.0f} s to start (compile, JVM, session) against {duck['fixed_cost_s']:.0f} "
            "s. On one machine Spark never wins; it is there for data that is not on one machine.",
            f"* A cluster matches one DuckDB machine only with about {ratio:,.0f}x its cores, and that assumes Spark "
            "scales linearly over the network, which its shuffles do not give for free. So switch to `--engine spark` "
            "when the input does not fit on one machine's disk, or already lives in cluster storage (HDFS, S3) in "
            "amounts you would not copy to one machine, or when one machine's time at the rate above passes your "
            "budget; not because the input is larger than memory (DuckDB streams it and spills)."]
    if duck and dbt:
        lines.append(
            f"* The original's offline path (`dbt build`, views and data tests, then reading the answer) took "
            f"{dbt['seconds']:,.1f} s at {largest:,} rows against {duck['seconds']:,.1f} s for `duckapi run`, which "
            "also writes exactly the API's answer and needs no database file.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 100_000_000])
    parser.add_argument("--engines", nargs="+", default=ENGINES, choices=ENGINES)
    parser.add_argument("--spark-limit", type=float, default=900,
                        help="skip Spark where its projected time passes this (s)")
    parser.add_argument("--timeout", type=float, default=1800, help="kill any one command after this many seconds")
    parser.add_argument("--out-json", type=Path)
    parser.add_argument("--out-md", type=Path)
    args = parser.parse_args()
    folder = BENCH if args.rows == [10_000_000, 100_000_000] and args.engines == ENGINES else WORK
    results = run(sorted(args.rows), args.engines, args.spark_limit, args.timeout)
    write_results(results, args.out_json or folder / "batch_results.json", args.out_md or folder / "BATCH_RESULTS.md",
                  markdown, ascii=False)
    if not all(c["pass"] for c in results.get("checks", [])):
        raise SystemExit("an answer check failed")


if __name__ == "__main__":
    main()
