"""Reading a request body within the size limit, without buffering past it.

The limit applies to the bytes on the wire and again to the decompressed body, so a
small compressed body that inflates past the limit (a zip bomb) is a 413, found
while inflating, never an out-of-memory.
"""

from __future__ import annotations

import io
import zlib

import zstandard
from starlette.requests import Request

from duckapi.api.inputs import FORMATS, InputError

ENCODINGS = ("gzip", "zstd")


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def body_format(request: Request) -> str:
    """The body's format from its Content-Type (none means JSON), or "multipart" for
    multipart/form-data (a part per input, api/request_rows.py); 415 for others."""
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
    try:
        if encoding == "gzip":
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = inflater.decompress(body, limit + 1)
            if len(out) <= limit and not inflater.eof:
                raise InputError(400, "gzip body is truncated")
        else:
            parts, size = [], 0
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True) as reader:
                while size <= limit and (chunk := reader.read(1 << 20)):
                    parts.append(chunk)
                    size += len(chunk)
            out = b"".join(parts)
    except (zlib.error, zstandard.ZstdError) as exc:
        raise InputError(400, f"body is not valid {encoding}: {str(exc)[:100]}") from None
    if len(out) > limit:
        raise InputError(413, f"decompressed body exceeds the limit of {limit} bytes")
    return out


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
