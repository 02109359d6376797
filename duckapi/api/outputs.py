"""Answers in the format the client accepts: JSON (default), Arrow IPC stream, Parquet."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq

from duckapi.rows.formats import InputError

#: Accept media type -> answer format; JSON first: it is the default.
ANSWERS = {
    "application/json": "json",
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
MEDIA_TYPES = {"json": "application/json", "arrow": "application/vnd.apache.arrow.stream",
               "parquet": "application/vnd.apache.parquet"}


def negotiate(accept: str | None) -> str:
    """The answer format for an Accept header (highest q first, then header order); else 406."""
    if not accept or not accept.strip():
        return "json"
    offers = []
    for position, item in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in item.split(";")]
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        offers.append((-quality, position, media.lower()))
    for negative_quality, _, media in sorted(offers):
        if negative_quality >= 0:
            continue
        if media in ANSWERS:
            return ANSWERS[media]
        if media in ("*/*", "application/*"):
            return "json"
    raise InputError(406, f"cannot answer as {accept[:100]!r}; accepted: {', '.join(ANSWERS)}")


def encode(table: pa.Table, fmt: str) -> bytes:
    """An Arrow answer as IPC stream or Parquet bytes."""
    sink = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, sink)
    else:
        with pyarrow.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    return sink.getvalue()
