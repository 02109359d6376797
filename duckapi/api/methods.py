"""Exact HTTP methods: what each path answers, before any route runs.

Starlette answers a method a route lacks with the first matching route's methods (or,
here, with the catch-all routes of the served paths), so this ASGI middleware decides
instead, from the app's own routes and the current project state:

* a fixed route (`/healthz`, `/models`, `/openapi.json`, `/docs`, ...): its methods;
* a served path (`/analyse_data/`): POST; its `/<path>/sql`: GET;
* anything else: 404, whatever the method.

GET comes with HEAD (the GET answer's headers, no body) and every known path answers
OPTIONS with 204 and its `Allow`. Any other method is a 405 naming them, with `Allow`.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from duckapi.pipeline import endpoint_path

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The order methods are listed in `Allow`.
ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: The path pattern of the catch-all routes that serve the project's endpoints.
CATCH_ALL = "/{path:path}"
PASS = frozenset({"*"})  # a route this module does not know (a mount): left alone


def allow_header(methods: frozenset[str]) -> str:
    return ", ".join(sorted(methods, key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m)))


def allowed_methods(app: Any, scope: Scope) -> frozenset[str] | None:
    """The methods `scope`'s path answers (HEAD and OPTIONS included), None if no such path."""
    methods: set[str] = set()
    for route in app.routes:
        if getattr(route, "path", None) == CATCH_ALL:
            continue
        match, _ = route.matches(scope)
        if match is Match.NONE:
            continue
        route_methods = getattr(route, "methods", None)
        if not isinstance(route, Route) and not route_methods:
            return PASS
        methods |= set(route_methods or ())
    if not methods:
        state = app.state.service.state
        key = endpoint_path(scope["path"])
        if key in state.endpoints:
            methods = {"POST"}
        elif key.endswith("/sql/") and key[: -len("sql/")] in state.endpoints:
            methods = {"GET"}
        else:
            return None
    if "GET" in methods:
        methods.add("HEAD")
    return frozenset(methods | {"OPTIONS"})


class MethodGuard:
    """ASGI middleware: 404 for unknown paths, 405 + Allow, HEAD as a bodiless GET, OPTIONS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        methods = allowed_methods(scope["app"], scope)
        method = scope["method"]
        if methods is PASS:
            await self.app(scope, receive, send)
            return
        if methods is None:
            response: Response = JSONResponse({"detail": "Not Found"}, status_code=404)
        elif method == "OPTIONS":
            response = Response(status_code=204, headers={"Allow": allow_header(methods)})
        elif method not in methods:
            allow = allow_header(methods)
            response = JSONResponse(
                {"detail": f"{scope['path']} answers {allow}, not {method}"}, status_code=405, headers={"Allow": allow}
            )
        elif method == "HEAD":
            await self.app({**scope, "method": "GET"}, receive, _without_body(send))
            return
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def _without_body(send: Send) -> Send:
    async def send_headers_only(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_headers_only
