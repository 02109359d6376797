"""The ASGI app: one POST route per served dbt model, introspection, health, reload.

The project is compiled before the app is returned, so a listening server is a
ready one. Served paths are looked up in the current project state on every
request (a reload may add or remove them), and the OpenAPI document is generated
from that state. Decoding and execution run on a thread pool: DuckDB releases the
GIL and the event loop stays free for other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, TypeVar

import msgspec
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from duckapi import __version__
from duckapi.api import openapi
from duckapi.api.batcher import Batcher
from duckapi.api.body import body_format, decompress, read_body
from duckapi.api.methods import MethodGuard
from duckapi.api.ops import auth, limits, request_log, warming
from duckapi.api.ops.draining import Draining
from duckapi.api.ops.early_answers import EarlyAnswers
from duckapi.api.ops.timing import Timing
from duckapi.api.ops.metrics import Metrics
from duckapi.api.ops.requests import RequestOps, note_rows
from duckapi.api.outputs import MEDIA_TYPES, encode, negotiate
from duckapi.errors import (
    CompileBusy, ExecutionError, InputError, ProjectError, RequestError, ResourceError, StatementTimeout,
)
from duckapi.library.project import Call, Project
from duckapi.dbt.warehouse import data_version
from duckapi.pipeline import Pipeline, digest, endpoint_path, provenance
from duckapi.settings import Settings

log = logging.getLogger("duckapi")
T = TypeVar("T")
# Below this size decoding in the event loop is cheaper than a thread hop.
INLINE_DECODE_BYTES = 64 * 1024


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status)


def _busy(exc: CompileBusy) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after)})


def _parts(request: Request) -> list[str] | None:
    """`?select=a,b` (or repeated `select=`): the parts to compute; None means all. An empty
    item (`?select=`, `?select=a,`) is kept, so it is refused as no part (the OpenAPI
    document allows only part names)."""
    names = [n.strip() for value in request.query_params.getlist("select") for n in value.split(",")]
    return list(dict.fromkeys(names)) or None


def _vars(request: Request) -> dict[str, Any] | None:
    """`?vars={"name": value}`: dbt vars for this request."""
    raw = request.query_params.get("vars")
    if not raw:
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise RequestError("vars must be a JSON object, e.g. vars={\"min_value\": 5}") from None
    if not isinstance(value, dict):
        raise RequestError("vars must be a JSON object, e.g. vars={\"min_value\": 5}")
    return value


def _decode(request: Request, body: bytes, call: Call, fmt: str, limit: int) -> Any:
    return call.read(decompress(request, body, limit), fmt, request.headers.get("content-type", ""))


def _arrow_answer(call: Call, tables: Any, fmt: str, pipeline: Pipeline) -> bytes:
    return encode(call.arrow(tables, pipeline), fmt)


def _stamped(response: Response, origin: dict[str, str], timing: "Timing") -> Response:
    """An answer from a pipeline says where it came from (the compiled SQL's digest and the
    warehouse's data version, library.project.provenance) and where its time went."""
    response.headers.update(origin)
    response.headers["Server-Timing"] = timing.header()
    return response


def create_app(settings: Settings | None = None, manifest: dict[str, Any] | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    served = Project(settings, manifest)  # the Python API: this app is one of its clients
    service = served.service
    metrics = Metrics()
    executor = metrics.executor(settings.pipeline_threads, thread_name_prefix="duckapi",
                                initializer=limits.lower_priority(settings.executor_nice))
    batcher = Batcher(service.engine, executor, settings.pipeline_threads, settings.max_batch)
    metrics.attach(service, batcher)
    keys = auth.ApiKeys(settings.api_keys_file) if settings.api_keys_file else None

    async def run(fn: Callable[..., T], *args: Any) -> T:
        # The request's deadline goes with the work (api/ops/limits.py).
        return await limits.bounded(asyncio.get_running_loop().run_in_executor(executor, limits.in_thread(fn, *args)))

    async def reload() -> bool:
        if keys:
            keys.reload()
        # Compiling spawns dbt in a child process; keep it off the pipeline threads.
        return await asyncio.to_thread(service.reload)

    async def watch() -> None:
        while True:
            await asyncio.sleep(settings.reload_interval)
            if keys and keys.changed():
                keys.reload()
            if await asyncio.to_thread(service.changed):
                await reload()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload()))
        draining.install(loop)
        # Everything built so far lives as long as the app: out of the collector's sight, a
        # full collection under load scans only what requests made (no 50-100 ms pauses).
        gc.collect()
        gc.freeze()
        # Every lane warm before the first connection is taken, and before a reload serves.
        if settings.warm_lanes:
            await asyncio.to_thread(warming.warm, served, service.state, executor, settings.pipeline_threads)
            service.prepare = lambda state: warming.warm(served, state, executor, settings.pipeline_threads)
        watcher = loop.create_task(watch()) if settings.reload else None
        try:
            yield
        finally:
            draining.uninstall()
            if watcher:
                watcher.cancel()
            executor.shutdown(wait=True)
            service.close()

    draining = Draining(settings.drain_seconds)
    app = FastAPI(title="duckapi", version=__version__, lifespan=lifespan)
    app.add_middleware(MethodGuard)  # 404 / 405 + Allow / HEAD / OPTIONS before any route
    app.add_middleware(limits.Queue, threads=settings.pipeline_threads, max_queue=settings.max_queue,
                       timeout=settings.request_timeout)
    if keys:  # outside the queue: requests without a key take no place in it
        app.add_middleware(auth.RequireKey, keys=keys, public_docs=settings.public_docs,
                           public_metrics=settings.public_metrics)
    app.add_middleware(EarlyAnswers)
    # Outermost: request ids, metrics and request logs see every answer (api/ops/requests.py).
    app.add_middleware(
        RequestOps, endpoints=lambda: service.state.endpoints, on_start=metrics.start,
        on_end=[metrics.finish, *request_log.observers(settings.request_log)], on_shutdown=metrics.shutdown,
    )
    app.state.project = served
    app.state.service = service
    app.state.batcher = batcher

    def call_for(request: Request, key: str) -> Call:
        if key not in service.state.endpoints:
            raise KeyError(key)
        return served.call(key, _parts(request), _vars(request))

    @app.get("/healthz", summary="200 once the project is compiled and served; 503 while draining for shutdown")
    async def healthz() -> JSONResponse:
        state = service.state
        return JSONResponse({
            "status": "draining" if draining.active else "ok",
            "endpoints": sorted(state.endpoints),
            # What each endpoint's answers carry (Duckapi-Project, Duckapi-Data-Version).
            "project_digests": {path: digest(e.pipeline) for path, e in sorted(state.endpoints.items())},
            "data_version": data_version(state.warehouse),
            # This worker's snapshot number: it moves when a reload starts serving.
            "snapshot": state.warehouse.version if state.warehouse is not None else 0,
            "batched": {"statements": batcher.statements, "requests": batcher.batched_requests},
        }, status_code=503 if draining.active else 200)

    @app.get("/models", summary="Served endpoints: input contract, selectable parts, vars")
    async def models() -> list[dict[str, Any]]:
        return [endpoint.to_dict() for endpoint in served.endpoints.values()]

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return metrics.response()

    @app.get("/{path:path}", include_in_schema=False)
    async def introspect(request: Request, path: str) -> Response:
        key = endpoint_path(path)
        if key in service.state.endpoints:
            return _error(405, f"{key} answers POST", allow="POST")
        if not key.endswith("/sql/"):
            return _error(404, "Not Found")
        try:
            call = await asyncio.to_thread(call_for, request, key[: -len("sql/")])
        except KeyError:
            return _error(404, "Not Found")
        except (RequestError, ProjectError) as exc:
            return _error(422, str(exc)[:2000])
        except CompileBusy as exc:
            return _busy(exc)
        return PlainTextResponse(_dependence_note(call.pipeline) + call.pipeline.select_sql("to_json(o)::varchar") + ";\n")

    @app.post("/{path:path}", include_in_schema=False)
    async def serve_model(request: Request, path: str) -> Response:
        key = endpoint_path(path)
        try:
            if key not in service.state.endpoints:
                return _error(404, "Not Found")
            fmt = body_format(request)
            answer = negotiate(request.headers.get("accept"))
            body = await read_body(request, settings.max_body_bytes)
            started = time.perf_counter()
            if request.query_params:  # vars may wait for a compile: off the event loop
                call = await asyncio.to_thread(call_for, request, key)
            else:
                call = served.call(key)
            if fmt == "json" and len(body) < INLINE_DECODE_BYTES and "content-encoding" not in request.headers:
                tables = call.read(body, fmt)
            else:
                tables = await run(_decode, request, body, call, fmt, settings.max_body_bytes)
            note_rows(request, tables)
            limits.check_rows(tables, settings.max_rows)
        except InputError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        except KeyError:
            return _error(404, "Not Found")
        except (RequestError, ProjectError) as exc:
            return _error(422, str(exc)[:2000])
        except CompileBusy as exc:
            return _busy(exc)
        except TimeoutError:
            return _error(504, limits.timeout_detail(settings.request_timeout))
        timing = Timing(decode=time.perf_counter() - started)
        pipeline, origin = call.pipeline, provenance(call.pipeline)
        try:
            if call.renderings is not None:  # a data-dependent endpoint: the variant for these rows
                pipeline = await run(call.resolved, tables)
                origin = provenance(pipeline)
            if answer == "json" and batcher.accepts(pipeline, tables):
                result = await timing.statement(limits.bounded(batcher.execute_json(pipeline, tables[0], limits.deadline())))
            elif answer == "json":
                result = await run(timing.in_thread(call.json), tables, pipeline)
            else:
                result = await run(timing.in_thread(_arrow_answer), call, tables, answer, pipeline)
        except (StatementTimeout, TimeoutError):
            return _stamped(_error(504, limits.timeout_detail(settings.request_timeout)), origin, timing)
        except ResourceError as exc:
            return _stamped(_error(503, f"not enough resources for this request: {exc}"), origin, timing)
        except ExecutionError as exc:
            return _stamped(_error(422, f"the pipeline failed on these rows: {exc}"), origin, timing)
        except RequestError as exc:  # a data-dependent model dbt cannot render over these rows
            return _stamped(_error(422, str(exc)[:2000]), origin, timing)
        except CompileBusy as exc:
            return _stamped(_busy(exc), origin, timing)
        return _stamped(Response(result, media_type=MEDIA_TYPES[answer]), origin, timing)

    def custom_openapi() -> dict[str, Any]:
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        document = openapi.extend(
            document, service.state, {path: endpoint.examples for path, endpoint in served.endpoints.items()},
        )
        return auth.declare(document) if keys else document

    app.openapi = custom_openapi  # type: ignore[method-assign]
    from duckapi.web.routes import mount as mount_web_page  # GET /: the web page (duckapi/web/)
    mount_web_page(app)
    return app


def _dependence_note(pipeline: Pipeline) -> str:
    """SQL comments naming the data-dependent models and the queries they render from."""
    introspection = pipeline.introspection
    if not introspection.dependent:
        return ""
    lines = ["-- Data-dependent: dbt renders these models from each request's rows; this is the SQL compiled",
             "-- over the warehouse's rows, and each request runs the variant rendered over its own."]
    for model in introspection.dependent:
        queries = introspection.queries(model)
        lines.append(f"-- {model}: " + (" | ".join(" ".join(q.split()) for q in queries) or "reads the columns of one above"))
    return "\n".join(lines) + "\n"


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory duckapi.api.app:app_from_env` (one per worker)."""
    return create_app(Settings.from_env())
