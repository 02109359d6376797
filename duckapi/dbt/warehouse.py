"""Read-only snapshots of the dbt-built DuckDB file: the reference data requests read.

A process that holds a DuckDB file open, even read-only, stops `dbt build` from
writing it ("Conflicting lock is held"). So the server never keeps the warehouse
open: it copies the file into a private folder while holding a read-only
connection for the length of the copy (no writer can be active then, so the copy
is consistent), lets go, and attaches the copy. Each reload takes a new numbered
copy; requests keep the copy their project state names, so every request sees one
version of the data. The newest few copies are kept for requests still in flight.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from duckapi.errors import ProjectError

log = logging.getLogger("duckapi")

#: Copies kept on disk: the current one and those requests of earlier states may use.
KEEP = 3


class WarehouseError(ProjectError):
    """The warehouse file cannot be read; the message names it."""


class WarehouseBusy(WarehouseError):
    """A writer (dbt build) holds the warehouse; try again when it is done."""


@dataclass(frozen=True)
class Warehouse:
    """One snapshot: where it is, and the catalog name dbt's compiled SQL uses for it."""

    path: Path
    version: int
    #: Derived from the file's bytes (not a counter): the same for the same data in every
    #: worker, after restarts, on other machines. Answers carry it (Duckapi-Data-Version).
    data_version: str = ""

    @property
    def database(self) -> str:
        return self.path.stem


#: The data version of answers that read no warehouse (there is no file yet).
NO_DATA = "none"


def data_version(warehouse: "Warehouse | None") -> str:
    return warehouse.data_version if warehouse is not None and warehouse.data_version else NO_DATA


def _copy_hashed(source: Path, target: Path, digest: "hashlib._Hash") -> None:
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)


def _copy_consistent(source: Path, target: Path) -> str:
    """Copy the file (and its WAL) while no writer can be active; the copy's data version."""
    try:
        con = duckdb.connect(str(source), read_only=True)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(f"{source} is being written (dbt build?): {exc}") from exc
        raise WarehouseError(f"cannot read the warehouse {source}: {exc}") from exc
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.blake2b(digest_size=8)
        _copy_hashed(source, target, digest)
        wal = source.with_name(source.name + ".wal")
        if wal.exists():
            _copy_hashed(wal, target.with_name(target.name + ".wal"), digest)
        return digest.hexdigest()
    finally:
        con.close()


class Snapshots:
    """Numbered private copies of one warehouse file, in a folder of their own."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.folder = Path(tempfile.mkdtemp(prefix="duckapi-warehouse-"))
        self._version = 0
        self._lock = threading.Lock()

    def take(self, wait: float = 0.0) -> Warehouse | None:
        """A new copy of the warehouse (None if there is no warehouse file yet).

        Retries for `wait` seconds while a writer holds the file, then raises WarehouseBusy.
        """
        if not self.source.exists():
            return None
        deadline = time.monotonic() + wait
        with self._lock:
            self._version += 1
            target = self.folder / str(self._version) / self.source.name
            while True:
                try:
                    version = _copy_consistent(self.source, target)
                    break
                except WarehouseBusy:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.2)
            for old in sorted((p for p in self.folder.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))[:-KEEP]:
                shutil.rmtree(old, ignore_errors=True)  # attached copies stay readable until detached
            return Warehouse(target, self._version, version)

    def scratch_copy(self, warehouse: Warehouse | None, folder: Path) -> Path:
        """A throwaway copy of a snapshot for dbt to compile against (it opens files read-write)."""
        target = folder / (warehouse.path.name if warehouse else self.source.name)
        if warehouse is not None:
            shutil.copyfile(warehouse.path, target)
        return target

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
