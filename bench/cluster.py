"""The whole standalone-cluster check, timed: the suite's cluster tests (both shop endpoints,
the executors' Parquet dataset, the bundled project) and the ones too long for the suite
(tests/spark_cluster_check.py): Spark Connect, a rebuild picked up by the next run, a
PostgreSQL metastore.

    python -m bench.cluster     # writes bench/CLUSTER_RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

from bench.harness import BENCH, ROOT, WORK


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "tests/test_spark_cluster.py",
                           "tests/spark_cluster_check.py", "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True,
                          text=True)
    WORK.mkdir(exist_ok=True)
    (WORK / "cluster.log").write_text(done.stdout + done.stderr)  # the failures in full
    seconds = time.perf_counter() - started
    lines = done.stdout.strip().splitlines() or ["(no output)"]
    outcomes = "\n".join(f"* {line}" for line in lines if line.startswith(("PASSED ", "FAILED ", "ERROR ")))
    text = f"""# A standalone Spark cluster with a persistent catalog

`python -m bench.cluster` ({datetime.now(timezone.utc):%Y-%m-%d}, {os.cpu_count()} cores): a master and one
2-core worker on loopback from the installed PySpark; the shop built into a Derby catalog through
it (`duckapi build --target cluster`), both endpoints run from processes of their own
(`duckapi run --target cluster --engine spark`): /customers/ byte-identical to the API's answer,
/orders/ written by the executors as a Parquet dataset holding the API's rows in its order; the
bundled project run there; a Spark Connect server on the cluster with the same catalog answering
through `--spark-remote`; a rebuild with doubled prices on both engines picked up by the next run; a PostgreSQL metastore shared
at once by a Connect server and a build in another JVM.

Result: **{lines[-1]}**, in {seconds:.0f} s (exit code {done.returncode}).

{outcomes}
"""
    (BENCH / "CLUSTER_RESULTS.md").write_text(text)
    print(text)
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
