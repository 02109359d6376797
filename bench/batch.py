"""Batch benchmark: `duckapi run` on DuckDB and on Spark local against a plain `dbt build`.

One run generates seeded Parquet inputs (10M and 100M rows by default) into
bench/.work/batch/, then times, each as its own process and one at a time:

* `duckapi run FILE -o answer.json` (DuckDB, all cores, out-of-core);
* `duckapi run FILE -o answer.json --engine spark` (PySpark local[*], 4g driver);
* the original's offline path: a plain `dbt build` of the same project whose input
  model reads the same file (views and every data test except the seed-specific
  answer test, on dbt-duckdb), then `select to_json(a) from analysis a` from the
  built database, which is the moment the analysis is computed for views.

Each command also runs once over a 9-row file: its fixed cost (dbt compile, JVM and
session start). Per-row cost = (time at N rows - fixed cost) / N. Peak memory is the
summed RSS of the command's whole process tree (the JVM included), sampled every
50 ms. Every answer is checked after timing: DuckDB's and Spark's must be the same
bytes; dbt's (the same DuckDB serialiser over the built views) must be equal too.

    python -m bench.batch                      # 10M and 100M rows: about 20-30 minutes
    python -m bench.batch --rows 1000000       # a quick look; writes under bench/.work/ unless --out-* given
    python -m bench.batch --spark-limit 900    # skip Spark at a size whose projection passes 15 minutes
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import duckdb
import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work" / "batch"
PROJECT = ROOT / "duckapi_dbt"
MIB = 1024**2
SEED = 20261125
GROUPS = 1000
VALUES = 200

# -- data -------------------------------------------------------------------------------

def generate(path: Path, rows: int) -> Path:
    """Seeded rows: 1,000 unicode group ids, 200 values from -100 to 99, and one row in 100,000
    at INT64_MAX or INT64_MIN (so group sums pass 64 bits). At most 200k (group, value) pairs,
    so the answer (about 30 MB of JSON) is the same size at every row count."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    con = duckdb.connect()
    con.execute(f"set threads = {os.cpu_count() or 1}")
    con.execute(f"""
        copy (
            select
                ['🦆', '🐇', '日本', 'Ωμέγα', 'café', 'tab\t', 'q"uote', 'a'][1 + (hash(i, {SEED}) % 8)::int]
                    || '-' || (hash(i, {SEED + 1}) % {GROUPS // 8})::varchar as group_id,
                case
                    when hash(i, {SEED + 2}) % 100000 = 0 then 9223372036854775807
                    when hash(i, {SEED + 2}) % 100000 = 1 then -9223372036854775808
                    else (hash(i, {SEED + 3}) % {VALUES})::bigint - {VALUES // 2}
                end as event_value
            from range({rows}) t(i)
        ) to '{tmp}' (format parquet, row_group_size 1000000)
    """)
    con.close()
    tmp.rename(path)
    return path


def tiny(path: Path) -> Path:
    """The nine-row animal example: what a command costs before the first row."""
    if not path.exists():
        import pyarrow as pa
        import pyarrow.parquet as pq

        sys.path.insert(0, str(ROOT))
        from tests.oracle import ANIMALS

        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({
            "group_id": pa.array([r["group_id"] for r in ANIMALS], pa.string()),
            "event_value": pa.array([r["event_value"] for r in ANIMALS], pa.int64()),
        }), path)
    return path


# -- measuring --------------------------------------------------------------------------

def measure(
    command: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None,
    also: Sequence[psutil.Process] = (),
) -> dict[str, Any]:
    """Run a command; wall time, peak RSS of its process tree (and of the trees under `also`,
    e.g. a Spark worker whose executors do the work), exit code (killed past timeout)."""
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_system = _busy_seconds()
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    peak = 0
    cpu_seen: dict[int, float] = {}  # pid -> its CPU seconds when last sampled
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True), *(c for a in also for c in a.children(recursive=True))]
                rss = 0
                for p in tree:
                    try:
                        with p.oneshot():
                            rss += p.memory_info().rss
                            times = p.cpu_times()
                            cpu_seen[p.pid] = times.user + times.system
                    except psutil.Error:
                        pass
                peak = max(peak, rss)
            except psutil.Error:
                pass
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timed_out = False
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        for p in psutil.Process(proc.pid).children(recursive=True):
            p.kill()
        proc.kill()
        _, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after_children.ru_utime - before_children.ru_utime) + (after_children.ru_stime - before_children.ru_stime)
    # Reaped descendants are in the rusage; PySpark never reaps its JVM, which only sampling sees.
    own = max(reaped, sum(cpu_seen.values()))
    other = max(0.0, _busy_seconds() - before_system - own)
    return {
        "seconds": round(seconds, 2), "peak_rss_mib": round(peak / MIB), "exit_code": proc.returncode,
        "cpu_s": round(own, 1),
        # CPU that other processes on the machine used meanwhile, as a share of all cores: noise.
        "other_cpu_pct": round(100 * other / (seconds * (os.cpu_count() or 1)), 1),
        "timed_out": timed_out, "stderr_tail": stderr.decode(errors="replace")[-600:] if proc.returncode else "",
    }


def _busy_seconds() -> float:
    t = psutil.cpu_times()
    return t.user + t.system + getattr(t, "nice", 0) + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def duckapi_run(source: Path, out: Path, engine: str, timeout: float) -> dict[str, Any]:
    env = {**os.environ, "DUCKAPI_TARGET_PATH": str(WORK / "target"), "DUCKAPI_DB_PATH": str(WORK / "target" / "dev.duckdb")}
    command = [sys.executable, "-m", "duckapi.cli", "run", str(source), "-o", str(out), "--engine", engine]
    result = measure(command, env, timeout)
    result["command"] = ["duckapi", "run", source.name, "-o", out.name, "--engine", engine]
    return result


def dbt_project_over(source: Path, folder: Path) -> Path:
    """The bundled project, its input model reading `source` instead of the seed."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(PROJECT, folder, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb", "*.wal"))
    (folder / "models" / "group_event_values.sql").write_text(
        "-- The input: the benchmark's Parquet file instead of the example seed.\n"
        f"select group_id, event_value from read_parquet('{source}')\n"
    )
    return folder


def dbt_build(source: Path, out: Path, timeout: float) -> dict[str, Any]:
    """`dbt build` (minus the seed-specific answer test), then the answer read from the built views."""
    folder = dbt_project_over(source, WORK / "dbt_project")
    db = folder / "bench.duckdb"
    env = {**os.environ, "DUCKAPI_DB_PATH": str(db)}
    dbt = str(Path(sys.executable).with_name("dbt"))
    build = measure(
        [dbt, "build", "--profiles-dir", ".", "--target-path", "target", "--exclude", "analysis_matches_expected"],
        env, timeout, cwd=folder,
    )
    export_code = (
        "import duckdb, sys\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "rows = con.execute('select to_json(a)::varchar from analysis a').fetchall()\n"
        "open(sys.argv[2], 'w').write('[' + ','.join(r[0] for r in rows) + ']')\n"
    )
    export = measure([sys.executable, "-c", export_code, str(db), str(out)], env, timeout) if build["exit_code"] == 0 else None
    result = {
        "seconds": round(build["seconds"] + (export["seconds"] if export else 0), 2),
        "build_seconds": build["seconds"], "answer_seconds": export["seconds"] if export else None,
        "peak_rss_mib": max(build["peak_rss_mib"], export["peak_rss_mib"] if export else 0),
        "cpu_s": round(build["cpu_s"] + (export["cpu_s"] if export else 0), 1),
        "other_cpu_pct": build["other_cpu_pct"],
        "exit_code": build["exit_code"] if build["exit_code"] else (export or {}).get("exit_code"),
        "timed_out": build["timed_out"] or bool(export and export["timed_out"]),
        "stderr_tail": build["stderr_tail"] or (export or {}).get("stderr_tail", ""),
        "command": ["dbt", "build", "--exclude", "analysis_matches_expected", "+", "select to_json(a) from analysis a"],
    }
    db.unlink(missing_ok=True)
    return result


# -- the run ----------------------------------------------------------------------------

def versions() -> dict[str, str]:
    out = {}
    for name in ("duckdb", "pyspark", "dbt-core", "dbt-duckdb", "dbt-spark", "pyarrow"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    java = subprocess.run(["java", "-version"], capture_output=True, text=True)
    out["java"] = (java.stderr.splitlines() or ["?"])[0]
    return out


def machine() -> dict[str, Any]:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "platform": platform.platform(), "python": platform.python_version(), "versions": versions(), "git_head": head,
    }


def run(sizes: list[int], engines: list[str], spark_limit: float, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    WORK.mkdir(parents=True, exist_ok=True)
    out_dir = WORK / "answers"
    out_dir.mkdir(exist_ok=True)
    results: dict[str, Any] = {"machine": machine(), "seed": SEED, "groups": GROUPS, "values": VALUES, "runs": []}

    small = tiny(WORK / "rows-9.parquet")
    fixed: dict[str, float] = {}
    for engine in engines:
        print(f"fixed cost: {engine} over 9 rows, twice", flush=True)
        out = out_dir / f"9-{engine}.json"
        tries = [dbt_build(small, out, timeout) if engine == "dbt" else duckapi_run(small, out, engine, timeout) for _ in range(2)]
        for r in tries:
            if r["exit_code"] != 0:
                raise SystemExit(f"{engine} failed on 9 rows: {r['stderr_tail']}")
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
            entry: dict[str, Any] = {"engine": engine, "rows": rows, "input_mib": round(source.stat().st_size / MIB, 1)}
            if engine == "spark":
                per_row = _per_row(results["runs"], "spark", fixed["spark"])
                projected = fixed["spark"] + per_row * rows if per_row else None
                if projected and projected > spark_limit:
                    entry.update(skipped=f"projected {projected / 60:.0f} min from the smaller run, over the {spark_limit / 60:.0f} min bound")
                    print(f"  spark: skipped ({entry['skipped']})", flush=True)
                    results["runs"].append(entry)
                    continue
            print(f"  {engine} ...", end="", flush=True)
            out = out_dir / f"{rows}-{engine}.json"
            r = dbt_build(source, out, timeout) if engine == "dbt" else duckapi_run(source, out, engine, timeout)
            entry.update(r)
            if r["exit_code"] == 0:
                net = max(r["seconds"] - fixed[engine], 1e-9)
                entry.update(
                    rows_per_s=round(rows / r["seconds"]), rows_per_s_after_fixed_cost=round(rows / net),
                    ns_per_row=round(net / rows * 1e9, 1), fixed_cost_s=fixed[engine], answer_mib=round(out.stat().st_size / MIB, 1),
                )
                answers[engine] = out
            print(f" {r['seconds']:.1f} s, peak {r['peak_rss_mib']:,} MiB{' (FAILED)' if r['exit_code'] else ''}", flush=True)
            results["runs"].append(entry)
        _check(answers, rows, results)
    results["total_s"] = round(time.perf_counter() - started, 1)
    return results


def _per_row(runs: list[dict[str, Any]], engine: str, fixed: float) -> float | None:
    done = [r for r in runs if r["engine"] == engine and r.get("rows", 0) > 9 and r.get("exit_code") == 0]
    if not done:
        return None
    biggest = max(done, key=lambda r: r["rows"])
    return max(biggest["seconds"] - fixed, 0) / biggest["rows"]


def _check(answers: dict[str, Path], rows: int, results: dict[str, Any]) -> None:
    """DuckDB's and Spark's answers: the same bytes. dbt's: the same JSON value."""
    checks = results.setdefault("checks", [])
    if "duckdb" in answers and "spark" in answers:
        same = answers["duckdb"].read_bytes() == answers["spark"].read_bytes()
        checks.append({"rows": rows, "check": "duckdb == spark (bytes)", "pass": same})
    if "duckdb" in answers and "dbt" in answers:
        same = json.loads(answers["duckdb"].read_bytes()) == json.loads(answers["dbt"].read_bytes())
        checks.append({"rows": rows, "check": "duckdb == dbt build (JSON value)", "pass": same})
    if "duckdb" in answers:
        answer = json.loads(answers["duckdb"].read_bytes())[0]
        counted = sum(g["group_count"] for g in answer["group_histogram"])
        checks.append({"rows": rows, "check": "group counts add up to the input rows", "pass": counted == rows})
    for c in checks[-3:]:
        print(f"  check {c['check']}: {'ok' if c['pass'] else 'FAILED'}", flush=True)


# -- report -----------------------------------------------------------------------------

def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Batch benchmark: `duckapi run` on DuckDB and Spark local vs a plain `dbt build`",
        "",
        f"Measured {m['date_utc']} on {m['cpu_count']} cores, {m['memory_gib']} GiB "
        f"({m['platform']}); {', '.join(f'{k} {v}' for k, v in m['versions'].items())}. "
        f"Command: `python -m bench.batch`; raw numbers in `bench/batch_results.json`.",
        "",
        f"Input: seeded Parquet, {results['groups']:,} unicode group ids, {results['values']} event values "
        "(-100..99) plus one row in 100,000 at INT64_MAX or INT64_MIN; every answer is the same "
        "size (at most 200k (group, value) pairs), so time is spent on the rows.",
        "",
        "| rows | engine | wall time | rows/s | fixed cost | per row (after fixed cost) | peak memory (process tree) | other processes' CPU |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    label = {"duckdb": "`duckapi run` (DuckDB)", "spark": "`duckapi run --engine spark` (local[*])",
             "dbt": "plain `dbt build` + read the answer"}
    for r in results["runs"]:
        if r["rows"] == 9:
            continue
        name = label[r["engine"]]
        if r.get("skipped"):
            lines.append(f"| {r['rows']:,} | {name} | not run: {r['skipped']} | | | | | |")
        elif r.get("exit_code"):
            why = "timed out" if r.get("timed_out") else f"exit {r['exit_code']}"
            lines.append(f"| {r['rows']:,} | {name} | failed ({why}) after {r['seconds']:,.1f} s | | | | {r['peak_rss_mib']:,} MiB | {r['other_cpu_pct']}% |")
        else:
            extra = f" (build {r['build_seconds']:,.1f} s + answer {r['answer_seconds']:,.1f} s)" if r["engine"] == "dbt" else ""
            lines.append(
                f"| {r['rows']:,} | {name} | {r['seconds']:,.1f} s{extra} | {r['rows_per_s']:,} | {r['fixed_cost_s']:.1f} s "
                f"| {r['ns_per_row']:,.0f} ns | {r['peak_rss_mib']:,} MiB | {r['other_cpu_pct']}% |"
            )
    lines += ["", *conclusions(results)]
    lines += ["", "Checks after timing:", ""]
    for c in results.get("checks", []):
        lines.append(f"* {c['rows']:,} rows: {c['check']}: {'pass' if c['pass'] else 'FAIL'}")
    lines += ["", f"Total benchmark time: {results['total_s'] / 60:.1f} min.", ""]
    return "\n".join(lines)


def conclusions(results: dict[str, Any]) -> list[str]:
    """When to switch to Spark, from the per-row costs measured at the largest size."""
    done = [r for r in results["runs"] if r["rows"] > 9 and r.get("exit_code") == 0]
    if not done:
        return []
    largest = max(r["rows"] for r in done)
    at = {r["engine"]: r for r in done if r["rows"] == largest}
    duck, spark, dbt = at.get("duckdb"), at.get("spark"), at.get("dbt")
    cores = results["machine"]["cpu_count"] or 1
    lines = ["## When to switch to Spark", ""]
    if duck:
        per_hour = 3600 / (duck["ns_per_row"] * 1e-9)
        lines.append(
            f"* DuckDB costs {duck['ns_per_row']:,.0f} ns per row here ({cores} cores, {duck['peak_rss_mib']:,} MiB at "
            f"{largest:,} rows: memory follows the answer's size, not the input's). At that rate one machine like this "
            f"does about {per_hour / 1e9:,.0f} billion rows an hour, {duck['fixed_cost_s'] + duck['ns_per_row']:,.0f} s "
            f"for a billion rows (a linear extrapolation; the input of a billion such rows is about "
            f"{duck['input_mib'] * 1e9 / largest / 1024:,.1f} GiB of Parquet)."
        )
    if duck and spark:
        ratio = spark["ns_per_row"] / duck["ns_per_row"]
        lines.append(
            f"* Spark local costs {spark['ns_per_row']:,.0f} ns per row on the same cores: {ratio:,.0f}x DuckDB's, plus "
            f"{spark['fixed_cost_s']:.0f} s to start (compile, JVM, session) against {duck['fixed_cost_s']:.0f} s. On one "
            "machine Spark never wins; it is there for data that is not on one machine."
        )
        lines.append(
            f"* A cluster matches one DuckDB machine only with about {ratio:,.0f}x its cores, and that assumes Spark "
            "scales linearly over the network, which its shuffles do not give for free. So switch to `--engine spark` "
            "when the input does not fit on one machine's disk, or already lives in cluster storage (HDFS, S3) in "
            "amounts you would not copy to one machine, or when one machine's time at the rate above passes your "
            "budget; not because the input is larger than memory (DuckDB streams it and spills)."
        )
    if duck and dbt:
        lines.append(
            f"* The original's offline path (`dbt build`, views and data tests, then reading the answer) took "
            f"{dbt['seconds']:,.1f} s at {largest:,} rows against {duck['seconds']:,.1f} s for `duckapi run`, which also "
            "writes exactly the API's answer and needs no database file."
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 100_000_000])
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark", "dbt"], choices=["duckdb", "spark", "dbt"])
    parser.add_argument("--spark-limit", type=float, default=900, help="skip Spark where its projected time passes this (s)")
    parser.add_argument("--timeout", type=float, default=1800, help="kill any one command after this many seconds")
    parser.add_argument("--out-json", type=Path)
    parser.add_argument("--out-md", type=Path)
    args = parser.parse_args()
    default = args.rows == [10_000_000, 100_000_000] and args.engines == ["duckdb", "spark", "dbt"]
    out_json = args.out_json or (BENCH / "batch_results.json" if default else WORK / "batch_results.json")
    out_md = args.out_md or (BENCH / "BATCH_RESULTS.md" if default else WORK / "BATCH_RESULTS.md")
    results = run(sorted(args.rows), args.engines, args.spark_limit, args.timeout)
    out_json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    out_md.write_text(markdown(results))
    print(f"wrote {out_json} and {out_md}")
    if not all(c["pass"] for c in results.get("checks", [])):
        raise SystemExit("an answer check failed")


if __name__ == "__main__":
    main()
