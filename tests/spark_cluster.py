"""A real Spark standalone cluster on loopback for the tests: a master and one worker,
started from the installed PySpark (it ships both), stopped by pid with every executor
the worker started; and a Spark Connect server (PySpark ships its jar) on that cluster."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.servers import free_port, stop_process


def _wait(what: str, ready, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready after {timeout} s: {log.read_text()[-2000:]}")


def _spark_env(folder: Path) -> tuple[Path, dict[str, str]]:
    import pyspark

    home = Path(pyspark.__file__).parent
    folder.mkdir(parents=True, exist_ok=True)
    return home, {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
                  "SPARK_LOG_DIR": str(folder / "logs"), "SPARK_WORKER_DIR": str(folder / "work"),
                  "SPARK_NO_DAEMONIZE": "1"}


@contextmanager
def standalone_cluster(folder: Path, cores: int = 2, memory: str = "2g") -> Iterator[str]:
    """`spark://127.0.0.1:PORT` of a master with one worker of `cores` cores, for the block."""
    home, env = _spark_env(folder)
    port, ui = free_port(), free_port()
    spark_class = str(home / "bin" / "spark-class")
    master_log, worker_log = folder / "master.log", folder / "worker.log"
    with master_log.open("wb") as out:
        master = subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
             "--webui-port", str(ui)], env=env, stdout=out, stderr=subprocess.STDOUT)
    worker = None
    try:
        status = f"http://127.0.0.1:{ui}/json/"
        _wait("the Spark master", lambda: urllib.request.urlopen(status, timeout=2).status == 200, master, master_log)
        with worker_log.open("wb") as out:
            worker = subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", str(cores),
                 "--memory", memory, "--webui-port", str(free_port()), "--work-dir", str(folder / "work"),
                 f"spark://127.0.0.1:{port}"], env=env, stdout=out, stderr=subprocess.STDOUT)

        def registered() -> bool:
            answer = json.loads(urllib.request.urlopen(status, timeout=2).read())
            return any(w.get("state") == "ALIVE" for w in answer.get("workers", []))

        _wait("the Spark worker", registered, worker, worker_log)
        yield f"spark://127.0.0.1:{port}"
    finally:
        if worker is not None:
            stop_process(worker)
        stop_process(master)


@contextmanager
def connect_server(folder: Path, master: str, conf: dict[str, str]) -> Iterator[str]:
    """`sc://127.0.0.1:PORT` of a Spark Connect server whose driver runs on `master` with
    `conf` (the catalog's settings), for the block; stopped by pid with its children."""
    home, env = _spark_env(folder)
    port = free_port()
    settings = {**conf, "spark.connect.grpc.binding.address": "127.0.0.1", "spark.connect.grpc.binding.port": str(port),
                "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1", "spark.ui.enabled": "false"}
    command = [str(home / "bin" / "spark-submit"), "--master", master,
               "--class", "org.apache.spark.sql.connect.service.SparkConnectServer"]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    log = folder / "connect.log"
    with log.open("wb") as out:
        server = subprocess.Popen([*command, "spark-internal"], env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    try:
        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return True

        _wait("the Spark Connect server", listening, server, log)
        yield f"sc://127.0.0.1:{port}"
    finally:
        stop_process(server)


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server on loopback with an empty database `metastore`, for the block:
    its JDBC URL. From Debian's packages (apt-get install postgresql libpostgresql-jdbc-java),
    run as the `postgres` user when this process is root (in a temporary folder of its own,
    which that user can reach); stopped with pg_ctl, its folder removed."""
    import glob
    import shutil
    import tempfile

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found or not Path("/usr/share/java/postgresql.jar").exists():
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql libpostgresql-jdbc-java")
    bin_dir = Path(found[-1]).parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="duckapi-postgres-"))
    if as_postgres:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_postgres, *command], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "start",
        "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "metastore")
        yield f"jdbc:postgresql://127.0.0.1:{port}/metastore"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop")
        shutil.rmtree(folder, ignore_errors=True)
