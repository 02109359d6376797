"""What a file's name says about its rows (format, compression), and inflating bytes.

Shared by `duckapi run` (which hands files to its engine) and the Python API (which
reads them like request bodies): the same names mean the same formats everywhere.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib

import zstandard

from duckapi.errors import InputError

#: File name endings -> input format. `json` is a file holding one JSON array of rows
#: (or, for DuckDB, rows one per line too); `ndjson` is one JSON object per line.
SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet", ".parq": "parquet", ".pq": "parquet",
    ".json": "json",
    ".ndjson": "ndjson", ".jsonl": "ndjson",
}
#: Compressed file endings -> their Content-Encoding name.
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
ENCODINGS = tuple(COMPRESSIONS.values())


def compression_of(path: str) -> str | None:
    """gzip or zstd when the name ends with .gz or .zst, else None."""
    name = path.lower()
    return next((encoding for ending, encoding in COMPRESSIONS.items() if name.endswith(ending)), None)


def format_of(path: str) -> str | None:
    """The rows format a file name says (compression endings looked through), else None."""
    name = path.lower()
    for ending in COMPRESSIONS:
        if name.endswith(ending):
            name = name[: -len(ending)]
    return SUFFIXES.get(os.path.splitext(name)[1])


def json_kind(path: str) -> str:
    """`json` when the file holds a JSON array, else `ndjson` (a row per line)."""
    try:
        if path.lower().endswith(".zst"):
            with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as handle:
                head = handle.read(4096)
        else:
            with (gzip.open if path.lower().endswith(".gz") else open)(path, "rb") as handle:
                head = handle.read(4096)
    except (OSError, EOFError, ValueError, zstandard.ZstdError):
        return "json"  # let the reader say what is wrong with it
    return "json" if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"[" else "ndjson"


def inflate(data: bytes, encoding: str, limit: int) -> bytes:
    """Undo gzip or zstd, stopping as soon as the output passes `limit` bytes (413), so a
    small input that inflates past the limit (a zip bomb) never runs out of memory."""
    try:
        if encoding == "gzip":
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = inflater.decompress(data, limit + 1)
            if len(out) <= limit and not inflater.eof:
                raise InputError(400, "gzip body is truncated")
        else:
            parts, size = [], 0
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
                while size <= limit and (chunk := reader.read(1 << 20)):
                    parts.append(chunk)
                    size += len(chunk)
            out = b"".join(parts)
    except (zlib.error, zstandard.ZstdError) as exc:
        raise InputError(400, f"body is not valid {encoding}: {str(exc)[:100]}") from None
    if len(out) > limit:
        raise InputError(413, f"decompressed body exceeds the limit of {limit} bytes")
    return out
