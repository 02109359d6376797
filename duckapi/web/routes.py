"""`GET /` and its assets, added to the app ahead of the catch-all routes.

The charting library is the `plotly.min.js` that the pinned PyPI package `plotly`
ships (plotly/package_data/), served from the installed package: never copied into
the repository, never fetched from a CDN. Without it the page still answers with
tables only.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

log = logging.getLogger("duckapi")

STATIC = Path(__file__).resolve().parent / "static"
#: Scripts, styles, images and requests from this server only; Plotly writes its own
#: <style> element and draws heatmaps into data: URLs.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
          "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def plotly_js() -> Path | None:
    """plotly.min.js inside the installed plotly package (found without importing it)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def mount(app: FastAPI) -> None:
    """Add the page's routes in front of the app's routes (so the catch-all GET does not take `/`)."""
    chart_library = plotly_js()
    if chart_library is None:
        log.warning("plotly is not installed: the web page at / shows tables without charts")
    files = {
        "/": (STATIC / "index.html", "text/html; charset=utf-8"),
        "/web/app.js": (STATIC / "app.js", "text/javascript; charset=utf-8"),
        "/web/app.css": (STATIC / "app.css", "text/css; charset=utf-8"),
    }

    def static(path: Path, media_type: str):  # type: ignore[no-untyped-def]
        async def answer(request: Request) -> Response:
            return FileResponse(path, media_type=media_type, headers=PAGE_HEADERS)

        return answer

    async def chart_js(request: Request) -> Response:
        if chart_library is None:
            return JSONResponse({"detail": "the charting library (the plotly package) is not installed"}, status_code=404)
        return FileResponse(chart_library, media_type="text/javascript; charset=utf-8", headers=PAGE_HEADERS)

    before = len(app.router.routes)
    for route_path, (path, media_type) in files.items():
        app.add_api_route(route_path, static(path, media_type), methods=["GET"], include_in_schema=False)
    app.add_api_route("/web/plotly.min.js", chart_js, methods=["GET"], include_in_schema=False)
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[:0] = added
