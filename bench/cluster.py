"""The whole standalone-cluster check, timed: the suite's cluster tests (both shop endpoints,
the executors' Parquet dataset) and the ones too long for the suite (tests/spark_cluster_check.py):
the bundled project, Spark Connect, a rebuild picked up by the next run, a PostgreSQL metastore.

    python -m bench.cluster            # writes bench/cluster_results.json, bench/CLUSTER_RESULTS.md
    python -m bench.cluster --quick    # the suite's cluster tests only; writes under bench/.work/
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.harness import ROOT, WORK, Result, bench_main, machine_info, quiet_first, report, target

ABOUT = ("A master and one 2-core worker on loopback from the installed PySpark; the shop built into a Derby catalog "
         "through it; pytest's outcomes (the failures in full: bench/.work/cluster.log).")


def run(args: argparse.Namespace) -> Result:
    args.strict = True  # a failed check fails the command
    started, load = time.perf_counter(), quiet_first(args)
    files = ["tests/test_spark_cluster.py", *([] if args.quick else ["tests/spark_cluster_check.py"])]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", *files, "-p", "no:cacheprovider"], cwd=ROOT,
                          capture_output=True, text=True)
    WORK.mkdir(exist_ok=True)
    (WORK / "cluster.log").write_text(done.stdout + done.stderr)  # the failures in full
    lines = done.stdout.strip().splitlines() or ["(no output)"]
    outcomes = [line.split(" ", 1) for line in lines if line.startswith(("PASSED ", "FAILED ", "ERROR "))]
    passed = target("every check passes", done.returncode == 0, f"{lines[-1].strip('= ')}, exit code {done.returncode}")
    return {"machine": machine_info({}), "load": load, "quick": args.quick, "targets": [passed],
            "tests": [{"outcome": o, "test": t} for o, t in outcomes], "total_s": round(time.perf_counter() - started)}


def main(argv: list[str] | None = None) -> int:
    title = "A standalone Spark cluster with a persistent catalog"
    return bench_main(__doc__, "cluster", run, lambda r: report(title, r, ABOUT), "the suite's cluster tests", argv)


if __name__ == "__main__":
    sys.exit(main())
