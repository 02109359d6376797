"""The whole standalone-cluster check, too long for the suite: both shop endpoints, a rebuild
picked up by the next run, the bundled project (tests/spark_cluster_check.py, which the
suite does not collect), timed.

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
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/spark_cluster_check.py", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    (BENCH / "CLUSTER_RESULTS.md").write_text(f"""# A standalone Spark cluster with a persistent catalog

`python -m bench.cluster` ({datetime.now(timezone.utc):%Y-%m-%d}, {os.cpu_count()} cores): a master and one
2-core worker on loopback from the installed PySpark; the shop built into a Derby catalog through
it (`duckapi build --target cluster`), both endpoints run from processes of their own
(`duckapi run --target cluster --engine spark`), each answer byte-identical to the DuckDB run; a
rebuild with doubled prices on both engines picked up by the next run; the bundled project run
there too.

Result: **{last}**, in {seconds:.0f} s (exit code {done.returncode}).
""")
    print((BENCH / "CLUSTER_RESULTS.md").read_text())
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
