"""The record of one request that metrics and request logs share, and the ASGI
middleware that fills it in: request id, endpoint label, formats, status, duration.

The middleware wraps the whole app (every route, every error answer): it takes the
client's `X-Request-ID` when valid (printable ASCII, 1 to 128 characters) or makes one
(uuid4 hex), puts it on every answer, and when the answer has gone out hands the
record to the metrics (ops/metrics.py) and the request log (ops/request_log.py). The
app adds what only it knows with `note_rows` (rows decoded from the body).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Collection, MutableMapping, Sequence

from starlette.datastructures import Headers

from duckapi.errors import InputError
from duckapi.rows.formats import FORMATS
from duckapi.api.outputs import negotiate
from duckapi.pipeline import endpoint_path
from duckapi.web import PATHS as PAGE_PATHS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

KEY = "duckapi.request"
HEADER = b"x-request-id"
MAX_ID = 128
#: Routes other than served models, labelled by their path; anything else is "other",
#: so unknown paths cannot multiply metric series.
FIXED_ENDPOINTS = frozenset({"/healthz", "/models", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}) | PAGE_PATHS
METHODS = frozenset({"GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Status recorded when the client went away before any answer (nginx's convention).
CLIENT_GONE = 499


def valid_request_id(raw: str | None) -> bool:
    return bool(raw) and len(raw) <= MAX_ID and all(" " <= c <= "~" for c in raw)  # type: ignore[arg-type]


def request_id(raw: str | None) -> str:
    """The client's id if it is printable ASCII of at most 128 characters, else a new one."""
    return raw if raw is not None and valid_request_id(raw) else uuid.uuid4().hex


def endpoint_label(path: str, endpoints: Collection[str]) -> str:
    """A served path (`/analyse_data/`, or its `/sql/` view), a fixed route, or "other"."""
    if path in FIXED_ENDPOINTS:
        return path
    key = endpoint_path(path)
    if key in endpoints or (key.endswith("/sql/") and key[: -len("sql/")] in endpoints):
        return key
    return "other"


def body_label(content_type: str) -> str:
    kind = content_type.split(";", 1)[0].strip().lower() or "application/json"
    if kind == "multipart/form-data":
        return "multipart"
    return FORMATS.get(kind, "unsupported")


def answer_label(accept: str | None) -> str:
    try:
        return negotiate(accept)
    except InputError:
        return "unacceptable"


@dataclass
class RequestInfo:
    request_id: str
    method: str
    path: str
    endpoint: str
    body_format: str = "none"  # "none" unless a POST to a served endpoint
    answer_format: str = "none"
    status: int = 0
    rows_in: int | None = None
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def of(cls, scope: Scope, endpoints: Collection[str]) -> "RequestInfo":
        headers = Headers(scope=scope)
        method = scope.get("method", "GET")
        path = scope.get("path", "/")
        endpoint = endpoint_label(path, endpoints)
        info = cls(request_id(headers.get("x-request-id")), method if method in METHODS else "other", path, endpoint)
        if method == "POST" and endpoint not in FIXED_ENDPOINTS and endpoint != "other" and not endpoint.endswith("/sql/"):
            info.body_format = body_label(headers.get("content-type", ""))
            info.answer_format = answer_label(headers.get("accept"))
        return info


def note_rows(request: Any, tables: Sequence[Any]) -> None:
    """Record the rows a request sent (the decoded tables of all its inputs)."""
    info = request.scope.get(KEY)
    if info is not None:
        info.rows_in = sum(t.num_rows for t in tables)


Observer = Callable[[RequestInfo, float], None]


class RequestOps:
    """ASGI middleware: request ids on every answer, then each observer(info, seconds).

    `on_start()`/`on_end(info, seconds)` bracket a request (in-flight gauge, counters,
    logs); `on_shutdown()` runs when the app's lifespan ends.
    """

    def __init__(
        self, app: ASGIApp, endpoints: Callable[[], Collection[str]], on_start: Callable[[], None],
        on_end: Sequence[Observer], on_shutdown: Callable[[], None],
    ) -> None:
        self.app = app
        self.endpoints = endpoints
        self.on_start = on_start
        self.on_end = tuple(on_end)
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = RequestInfo.of(scope, self.endpoints())
        scope[KEY] = info
        id_header = (HEADER, info.request_id.encode("ascii"))

        observed = False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                seconds = time.perf_counter() - info.started
                for observer in self.on_end:
                    observer(info, seconds)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                info.status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != HEADER]
                message = {**message, "headers": [*headers, id_header]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                observe()  # before the last byte leaves: a client that got its answer sees it counted
            await send(message)

        self.on_start()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if not info.status:  # answer the 500 here so that it carries the id too
                info.status = 500
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json"), id_header]})
                observe()
                await send({"type": "http.response.body", "body": b'{"detail":"Internal Server Error"}'})
            raise
        finally:
            if not info.status:
                info.status = CLIENT_GONE
            observe()

    def _lifespan_send(self, send: Callable[[Message], Awaitable[None]]) -> Callable[[Message], Awaitable[None]]:
        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self.on_shutdown()
            await send(message)

        return lifespan_send
