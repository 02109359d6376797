"""The folder where prometheus-client's multiprocess mode keeps every worker's metric
values: `duckapi serve` makes a fresh one before uvicorn starts (so no values of an
earlier run count) and removes it when it exits.

prometheus-client reads PROMETHEUS_MULTIPROC_DIR itself when it is first imported,
so this module must not import it, and `serve` calls this before the app is loaded.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir() -> str:
    """A fresh folder in PROMETHEUS_MULTIPROC_DIR (replacing any given), removed at exit."""
    folder = tempfile.mkdtemp(prefix="duckapi-metrics-")
    os.environ[VARIABLE] = folder
    atexit.register(shutil.rmtree, folder, True)
    return folder
