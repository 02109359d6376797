"""Reading a request body within the size limit, without buffering past it."""

from __future__ import annotations

from starlette.requests import Request

from duckapi.api.inputs import InputError

JSON_TYPES = ("application/json",)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def check_content_type(request: Request, accepted: tuple[str, ...] = JSON_TYPES) -> str:
    """415 unless the body is declared as one of `accepted` (no header means JSON)."""
    kind = media_type(request) or accepted[0]
    if kind not in accepted:
        raise InputError(415, f"unsupported Content-Type {kind[:100]!r}; send one of: {', '.join(accepted)}")
    return kind


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InputError(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise InputError(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise InputError(413, f"body exceeds the limit of {limit} bytes")
    return bytes(body)
