"""Seeded random request payloads that exercise the awkward corners of the contract."""

from __future__ import annotations

import io
import random
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
AWKWARD_IDS = [
    "🦆", "🐇", "🐰", "a", "A", "", " ", "tab\there", "new\nline", 'quo"te', "it's", "back\\slash",
    "'; drop view analysis; --", "Ωμέγα", "日本語", "zero\u0000byte", "e\u0301", "🏳️‍🌈",
]


def random_rows(rng: random.Random, n: int, groups: int = 8, big: bool = False) -> list[dict[str, Any]]:
    """n rows over a few groups; duplicates are likely, values may be negative or huge."""
    ids = rng.sample(AWKWARD_IDS, min(groups, len(AWKWARD_IDS)))
    if big:
        values = [INT64_MIN, INT64_MAX, INT64_MAX - 1, -1, 0, 1, 2**40]
    else:
        values = list(range(-5, 30))
    return [{"group_id": rng.choice(ids), "event_value": rng.choice(values)} for _ in range(n)]


def parquet_body(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def arrow_body(table: pa.Table) -> bytes:
    """An Arrow IPC stream, as application/vnd.apache.arrow.stream bodies are."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()
