"""One JSON line per request on stderr, when DUCKAPI_ACCESS_LOG=json
(Settings.request_log): time, request id, method, endpoint, path, status, rows in,
formats, duration in ms. Never row data, headers, query strings or keys.

The lines go to the `duckapi.requests` logger, which has a handler of its own that
writes the bare JSON (no level prefix) and does not pass them on to the root logger
(uvicorn workers have no handler there).
"""

from __future__ import annotations

import datetime
import logging
import sys

from typing import Callable

import msgspec

from duckapi.api.ops.requests import RequestInfo

log = logging.getLogger("duckapi.requests")
MAX_PATH = 200
_encoder = msgspec.json.Encoder()


def enable() -> None:
    """Install the handler (once per process) and let INFO lines through."""
    if not any(getattr(h, "duckapi_request_log", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.duckapi_request_log = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def record(info: RequestInfo, seconds: float) -> dict[str, object]:
    return {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
        "request_id": info.request_id,
        "method": info.method,
        "endpoint": info.endpoint,
        "path": info.path[:MAX_PATH],
        "status": info.status,
        "rows_in": info.rows_in,
        "body_format": info.body_format,
        "answer_format": info.answer_format,
        "duration_ms": round(seconds * 1000, 3),
    }


def write(info: RequestInfo, seconds: float) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info(_encoder.encode(record(info, seconds)).decode())


def observers(enabled: bool) -> list[Callable[[RequestInfo, float], None]]:
    """[write] (the handler installed) when the request log is on, else []."""
    if not enabled:
        return []
    enable()
    return [write]
