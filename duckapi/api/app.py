"""The ASGI app: one POST route per served dbt model, plus health.

The pipeline is compiled before the app is returned, so a listening server is a
ready one. Decoding and execution run on a thread pool: DuckDB releases the GIL
and the event loop stays free for other requests.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, AsyncIterator, Callable, TypeVar

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from duckapi import project
from duckapi.api.body import check_content_type, read_body
from duckapi.api.inputs import InputError, JsonRowsDecoder, column_type
from duckapi.engines.duckdb import DuckDBEngine
from duckapi.pipeline import Pipeline, build_pipelines
from duckapi.settings import Settings

log = logging.getLogger("duckapi")
T = TypeVar("T")
# Below this size decoding in the event loop is cheaper than a thread hop.
INLINE_DECODE_BYTES = 64 * 1024


class Service:
    """What one process serves: pipelines, their decoders, the engine and its threads."""

    def __init__(self, settings: Settings, manifest: dict[str, Any]) -> None:
        self.settings = settings
        self.pipelines: dict[str, Pipeline] = build_pipelines(manifest)
        self.decoders = {path: JsonRowsDecoder(p.input_columns) for path, p in self.pipelines.items()}
        self.engine = DuckDBEngine(settings)
        self.executor = ThreadPoolExecutor(settings.pipeline_threads, thread_name_prefix="duckapi")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(fn, *args))

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.engine.close()


def load_manifest(settings: Settings) -> dict[str, Any]:
    """The manifest `duckapi build`/`serve` wrote, else compile the project now (once)."""
    if settings.manifest_path.exists():
        return project.load_manifest(settings)
    return project.compile_manifest(settings)


def _error(exc: InputError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def _openapi_body(pipeline: Pipeline) -> dict[str, Any]:
    properties = {}
    for col in pipeline.input_columns:
        schema = dict(column_type(col.data_type).json_schema)
        if not col.not_null:
            schema = {"anyOf": [schema, {"type": "null"}]}
        properties[col.name] = schema
    required = [c.name for c in pipeline.input_columns if c.not_null]
    row = {"type": "object", "properties": properties, "required": required}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "array", "items": row}}},
        }
    }


def _route(service: Service, path: str) -> Callable[[Request], Any]:
    pipeline = service.pipelines[path]
    decoder = service.decoders[path]
    limit = service.settings.max_body_bytes

    async def serve_model(request: Request) -> Response:
        try:
            check_content_type(request)
            body = await read_body(request, limit)
            if len(body) < INLINE_DECODE_BYTES:
                table = decoder.decode(body)
            else:
                table = await service.run(decoder.decode, body)
        except InputError as exc:
            return _error(exc)
        result = await service.run(service.engine.execute_json, pipeline, table)
        return Response(result, media_type="application/json")

    serve_model.__doc__ = (
        f"Runs dbt model `{pipeline.endpoint.output}` over the posted rows, which stand in "
        f"for model `{pipeline.endpoint.input}`."
    )
    return serve_model


def create_app(settings: Settings | None = None, manifest: dict[str, Any] | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    service = Service(settings, manifest if manifest is not None else load_manifest(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(title="duckapi", version="0.1.0", lifespan=lifespan)
    app.state.service = service

    for path, pipeline in service.pipelines.items():
        app.add_api_route(
            path,
            _route(service, path),
            methods=["POST"],
            name=pipeline.endpoint.output,
            summary=f"Analyse rows with dbt model {pipeline.endpoint.output}",
            openapi_extra=_openapi_body(pipeline),
        )
        log.info("serving model %s at POST %s", pipeline.endpoint.output, path)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "endpoints": sorted(service.pipelines)}

    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory duckapi.api.app:app_from_env` (one per worker)."""
    return create_app(Settings.from_env())
