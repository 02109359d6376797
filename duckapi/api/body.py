"""Reading a request body within the size limit, without buffering past it.

The limit applies to the bytes on the wire and again to the decompressed body, so a
small compressed body that inflates past the limit (a zip bomb) is a 413, found
while inflating, never an out-of-memory.
"""

from __future__ import annotations

from starlette.requests import Request

from duckapi.errors import InputError
from duckapi.rows.files import ENCODINGS, inflate
from duckapi.rows.formats import FORMATS


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def body_format(request: Request) -> str:
    """The body's format from its Content-Type (none means JSON), or "multipart" for
    multipart/form-data (a part per input, rows/bodies.py); 415 for others."""
    kind = media_type(request) or "application/json"
    if kind == "multipart/form-data":
        return "multipart"
    if kind not in FORMATS:
        raise InputError(415, f"unsupported Content-Type {kind[:100]!r}; send one of: {', '.join(FORMATS)}, multipart/form-data")
    return FORMATS[kind]


def decompress(request: Request, body: bytes, limit: int) -> bytes:
    """Undo Content-Encoding (gzip, zstd), stopping as soon as the output passes `limit`."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ENCODINGS:
        raise InputError(415, f"unsupported Content-Encoding {encoding[:50]!r}; use one of: {', '.join(ENCODINGS)}")
    return inflate(body, encoding, limit)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InputError(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise InputError(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputError(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)  # one copy, not two
