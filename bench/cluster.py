"""The whole standalone-cluster check, timed: the suite's cluster tests (both shop endpoints,
the executors' Parquet dataset, the bundled project, Spark Connect) and the one too long for
the suite, a rebuild picked up by the next run (tests/spark_cluster_check.py).

    python -m bench.cluster     # writes bench/CLUSTER_RESULTS.md
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timezone

from bench.load import BENCH, ROOT


def main() -> None:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "tests/test_spark_cluster.py",
                           "tests/spark_cluster_check.py", "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True)
    (BENCH / ".work").mkdir(exist_ok=True)
    (BENCH / ".work" / "cluster.log").write_text(done.stdout + done.stderr)  # the failures in full
    seconds = time.perf_counter() - started
    lines = done.stdout.strip().splitlines() or ["(no output)"]
    last = lines[-1]
    outcomes = "\n".join(f"* {line}" for line in lines if line.startswith(("PASSED ", "FAILED ", "ERROR ")))
    (BENCH / "CLUSTER_RESULTS.md").write_text(f"""# A standalone Spark cluster with a persistent catalog

`python -m bench.cluster` ({datetime.now(timezone.utc):%Y-%m-%d}, {os.cpu_count()} cores): a master and one
2-core worker on loopback from the installed PySpark; the shop built into a Derby catalog through
it (`duckapi build --target cluster`), both endpoints run from processes of their own
(`duckapi run --target cluster --engine spark`): /customers/ byte-identical to the API's answer,
/orders/ written by the executors as a Parquet dataset holding the API's rows in its order; the
bundled project run there; a Spark Connect server on the cluster with the same catalog answering
through `--spark-remote`; a rebuild with doubled prices on both engines picked up by the next run; a PostgreSQL metastore shared
at once by a Connect server and a build in another JVM.

Result: **{last}**, in {seconds:.0f} s (exit code {done.returncode}).

{outcomes}
""")
    print((BENCH / "CLUSTER_RESULTS.md").read_text())
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
