"""What a process serves: the compiled project, its variants and selections, reloads.

A `ProjectState` is everything derived from one compile of the project against one
snapshot of the warehouse. Requests take the current state when they start, so a
reload (new project files, or a rebuilt warehouse) swaps in a new one without
disturbing requests in flight, and each request reads one version of the reference
data; a project that fails to compile leaves the old one serving. Variants compiled
for per-request dbt vars (only those the served model lists in `meta.duckapi.vars`)
and pipelines pruned for a selection of parts are cached in bounded LRUs; new variants
compile on a single worker behind a short queue (503 beyond it).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Generic, Hashable, Sequence, TypeVar

import duckdb
import jsonschema

from duckapi.dbt import project
from duckapi.dbt import compiled
from duckapi.dbt.compiled import project_fingerprint
from duckapi.engines import ExecutionError
from duckapi.errors import CompileBusy, RequestError
from duckapi.engines.duckdb import DuckDBEngine
from duckapi.pipeline import Pipeline, PipelineError, Reference, Schema, build_pipelines
from duckapi.pipeline import relations
from duckapi.serving import rendering
from duckapi.serving.rendering import Renderer, Renderings
from duckapi.settings import Settings
from duckapi.dbt.warehouse import Snapshots, Warehouse, WarehouseBusy, WarehouseError

log = logging.getLogger("duckapi")
#: How long start-up and a reload wait for a `dbt build` that holds the warehouse.
STARTUP_WAIT_S = 60.0
RELOAD_WAIT_S = 120.0
K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small thread-safe LRU whose values are built once per key, even under races."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[K, threading.Lock] = {}

    def get(self, key: K, build: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = build()
            with self._lock:
                self._store(key, value)
                self._building.pop(key, None)
            return value

    def peek(self, key: K) -> V | None:
        """The value if it is cached (marked recently used), else None; never builds."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._store(key, value)

    def _store(self, key: K, value: V) -> None:
        """Keep `value` as the most recently used, the oldest beyond `size` dropped (lock held)."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, eq=False)
class Served:
    """One served endpoint of one compile: its pipeline and the shapes of its nodes."""

    pipeline: Pipeline
    schemas: dict[str, Schema]
    #: A data-dependent pipeline's rendered variants (serving/rendering.py); None for the others.
    renderings: Renderings | None = None

    @property
    def parts(self) -> tuple[str, ...]:
        return () if self.renderings is not None else self.pipeline.parts(self.schemas)


class ProjectState:
    """Everything derived from one compiled manifest and one warehouse snapshot."""

    def __init__(
        self, manifest: dict[str, Any], engine: DuckDBEngine, declared_vars: dict[str, Any],
        warehouse: Warehouse | None = None, settings: Settings | None = None, render: Renderer | None = None,
    ) -> None:
        self.declared_vars = declared_vars
        self.warehouse = warehouse
        #: The project's dbt unit tests (their given rows are examples of requests).
        self.unit_tests: dict[str, Any] = manifest.get("unit_tests") or {}
        project_dir = settings.project_dir if settings else None
        pipelines = build_pipelines(manifest, project_dir, lambda relation: engine.warehouse_schema(warehouse, relation))
        for pipeline in pipelines.values():
            undeclared = [name for name in pipeline.endpoint.vars if name not in declared_vars]
            if undeclared:
                raise PipelineError(
                    f"{pipeline.output_node.path}: meta.duckapi.vars of model {pipeline.endpoint.output} names "
                    f"{', '.join(undeclared)}, which dbt_project.yml does not declare under `vars:` "
                    f"(declared: {', '.join(sorted(declared_vars)) or 'none'})"
                )
        dependent = {p.endpoint.output: p.introspection.dependent for p in pipelines.values() if p.introspection.dependent}
        if dependent and settings is not None and settings.data_dependent == "off":
            raise PipelineError(
                "data-dependent models (their rendering queries the request's data) with DUCKAPI_DATA_DEPENDENT=off: "
                + "; ".join(f"{model} (renders {', '.join(models)} from the data)" for model, models in dependent.items())
            )
        self.endpoints = {
            path: _served(engine, replace(p, warehouse=warehouse), settings, render) for path, p in pipelines.items()
        }
        self._selections: LRU[tuple[str, frozenset[str]], Pipeline] = LRU(256)

    def settable_vars(self, path: str) -> dict[str, Any]:
        """The vars a request to `path` may set (`meta.duckapi.vars`), with their defaults."""
        return {name: self.declared_vars[name] for name in self.endpoints[path].pipeline.endpoint.vars}

    def var_schemas(self, path: str) -> dict[str, Any]:
        """The JSON schemas `meta.duckapi.vars` declares for some of those vars."""
        return {name: json.loads(text) for name, text in self.endpoints[path].pipeline.endpoint.var_schemas}

    def pipeline(self, path: str, parts: list[str] | None) -> Pipeline:
        served = self.endpoints[path]
        if not parts:
            return served.pipeline
        if served.renderings is not None:
            raise RequestError(
                f"{served.pipeline.endpoint.output} is data-dependent (its SQL is rendered from each request's rows): "
                "parts cannot be selected"
            )
        valid = served.parts
        unknown = [p for p in parts if p not in valid]
        if unknown:
            raise RequestError(
                f"unknown part(s) {', '.join(p or repr(p) for p in unknown)} in select; "
                f"valid: {', '.join(valid) or 'none (no column of '}"
                + ("" if valid else f"{served.pipeline.endpoint.output} is named after a parent model)")
            )
        key = (path, frozenset(parts))
        return self._selections.get(key, lambda: served.pipeline.select(parts, served.schemas))


def _served(
    engine: DuckDBEngine, pipeline: Pipeline, settings: Settings | None = None, render: Renderer | None = None,
) -> Served:
    """Run the pipeline once over no rows: a project whose SQL cannot run fails here,
    and so does one whose reference data is not in the warehouse. A data-dependent one
    gets its renderings (its compiled SQL is kept only to describe it)."""
    relations.check_input_types(pipeline.inputs)
    missing = engine.missing_references(pipeline) if pipeline.references else []
    if missing:
        raise missing_references_error(pipeline, missing, settings)
    pipeline = replace(pipeline, single_row=engine.at_most_one_row(pipeline))
    introspection = pipeline.introspection
    renderings = None
    for probe in introspection.probes if introspection.refusal is None else ():
        try:  # each probe's references can be pointed at the pipeline's CTEs
            pipeline.probe_sql(probe)
        except PipelineError as exc:
            refusal = f"model {probe.model} renders from a query duckapi cannot run over the request ({exc}): {probe.sql[:300]}"
            pipeline = replace(pipeline, introspection=replace(introspection, refusal=refusal))
            break
    introspection = pipeline.introspection
    if introspection.probes or introspection.refusal:
        if render is None:
            raise PipelineError(
                f"{pipeline.output_node.path}: model {pipeline.endpoint.output} is data-dependent and nothing here can "
                "render it per request"
            )
        renderings = Renderings(
            pipeline, engine.probe, render, lambda p: replace(p, single_row=engine.at_most_one_row(p)),
            settings or Settings(),
        )
        try:
            return Served(pipeline, engine.describe(pipeline), renderings)
        except ExecutionError:  # rendered from the warehouse's rows, it need not run over none
            return Served(pipeline, {}, renderings)
    pipeline = replace(pipeline, batchable=engine.batchable(pipeline))
    try:
        return Served(pipeline, engine.describe(pipeline))
    except ExecutionError as exc:
        raise PipelineError(
            f"{pipeline.output_node.path}: the compiled pipeline of {pipeline.endpoint.output} does not run: {exc}"
        ) from exc


def missing_references_error(
    pipeline: Pipeline, missing: Sequence[Reference], settings: Settings | None = None,
    where: str | None = None, remedy: str | None = None,
) -> PipelineError:
    """The pipeline reads relations that are not in `where` (default: its warehouse)."""
    remedy = remedy or f"run `{settings.build_command() if settings else 'duckapi build'}`"
    if where is None:
        where = f"the warehouse {settings.db_path}" if settings else "the warehouse"
        if pipeline.warehouse is None:
            where += " (no such file)"
    names = "; ".join(f"{r.kind} {r.name} ({r.relation_name})" for r in missing)
    return PipelineError(
        f"{pipeline.output_node.path}: model {pipeline.endpoint.output} reads {names}, "
        f"which {'is' if len(missing) == 1 else 'are'} not in {where}: {remedy}"
    )


def compile_project(settings: Settings, dbt_vars: dict[str, Any] | None = None, recompile: bool = False) -> dict[str, Any]:
    """`dbt compile` against a private copy of the warehouse (never the file itself), or
    the manifest of an earlier compile if nothing it read has changed (dbt/compiled.py).

    With vars, into a scratch target folder: the project's own target/manifest.json
    stays the one compiled with the defaults (`duckapi serve` and `load` read it).
    """

    def compile() -> dict[str, Any]:
        snapshots = Snapshots(settings.db_path)
        try:
            warehouse = snapshots.take(wait=STARTUP_WAIT_S)
            db_path = warehouse.path if warehouse else None
            if not dbt_vars:
                return project.compile_manifest(settings, None, db_path)
            with tempfile.TemporaryDirectory(prefix="duckapi-compile-") as scratch:
                return project.compile_manifest(replace(settings, target_path=Path(scratch) / "target"), dbt_vars, db_path)
        finally:
            snapshots.close()

    manifest, reused = compiled.reuse_or_compile(settings, "duckdb", dbt_vars, compile, recompile)
    if reused is not None and not dbt_vars:
        compiled.publish(settings, reused)
    return manifest


class Service:
    """The engine, the current project state, and the variants compiled for vars."""

    #: Told of each compile after start-up (api/ops/metrics.py): the kind ("vars" or
    #: "reload"), its seconds, and the compiled state (None when it failed).
    on_compile: Callable[[str, float, "ProjectState | None"], None] | None = None
    #: Called with a reloaded state before it takes requests (api/ops/warming.py).
    prepare: Callable[["ProjectState"], None] | None = None

    def __init__(self, settings: Settings, manifest: dict[str, Any], dbt_vars: dict[str, Any] | None = None) -> None:
        self.settings = settings
        #: The vars `manifest` was compiled with; per-request vars compile on top of them.
        self.base_vars = dict(dbt_vars or {})
        # New vars compile here, one at a time; at most `vars_compile_queue` more wait.
        self._compiler = ThreadPoolExecutor(1, thread_name_prefix="duckapi-compile")
        self._pending: dict[tuple[int, str], Future[ProjectState | RequestError]] = {}
        self._pending_lock = threading.Lock()
        self._compile_seconds = 4.0  # the last compile's duration: the Retry-After guess
        self.snapshots = Snapshots(settings.db_path)
        self.engine = DuckDBEngine(settings, self.snapshots.folder)
        self._renders = itertools.count()
        try:
            self.fingerprint = project_fingerprint(settings.project_dir, settings.db_path)
            warehouse = self.snapshots.take(wait=STARTUP_WAIT_S)
            self.state = ProjectState(
                manifest, self.engine, project.declared_vars(settings), warehouse, settings, self._renderer(self.base_vars),
            )
        except BaseException:
            self.close()
            raise
        self._variants: LRU[str, ProjectState | RequestError] = LRU(settings.vars_cache_size)
        self._reload_lock = threading.Lock()

    def state_for(self, dbt_vars: dict[str, Any] | None, path: str) -> ProjectState:
        """The current state, or the one compiled with these vars for a request to `path`.

        Only the vars `path` declares settable (`meta.duckapi.vars`) may be set. A known
        combination (cached, failures too) is answered at once; a new one is compiled by
        the single compile worker, behind at most `vars_compile_queue` others, else
        CompileBusy (503).
        """
        state = self.state
        if not dbt_vars:
            return state
        settable = state.settable_vars(path)
        refused = sorted(set(dbt_vars) - set(settable))
        if refused:
            allowed = ", ".join(settable) or "none (the model's meta.duckapi.vars declares none)"
            raise RequestError(f"var(s) {', '.join(refused)} cannot be set per request on {path}; settable: {allowed}")
        schemas = state.var_schemas(path)
        dbt_vars = {name: _integral(value, settable[name]) for name, value in dbt_vars.items()}
        for name, value in dbt_vars.items():
            if not _same_shape(value, settable[name]):
                default = json.dumps(settable[name])
                raise RequestError(f"var {name} must have the JSON type of its default {default[:100]}")
            if name in schemas:
                error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schemas[name]).iter_errors(value))
                if error is not None:
                    raise RequestError(f"var {name} does not match its schema (meta.duckapi.vars): {error.message[:200]}")
        key = json.dumps(dbt_vars, sort_keys=True, separators=(",", ":"))
        variants = self._variants
        variant = variants.peek(key)
        if variant is None:
            variant = self._queued_compile(variants, key, dbt_vars).result()
        if isinstance(variant, RequestError):
            raise variant
        return variant

    def _queued_compile(
        self, variants: LRU[str, ProjectState | RequestError], key: str, dbt_vars: dict[str, Any]
    ) -> Future[ProjectState | RequestError]:
        """The compile of `key` under way or queued (requests for the same vars share it)."""
        with self._pending_lock:
            cached = variants.peek(key)
            if cached is not None:
                done: Future[ProjectState | RequestError] = Future()
                done.set_result(cached)
                return done
            slot = (id(variants), key)
            future = self._pending.get(slot)
            if future is None:
                future = self._queued(slot, "compiles of new vars", "known vars are", self._compile_into, variants, key, dbt_vars)
            return future

    def _queued(self, slot: tuple[int, str], what: str, known: str, work: Callable[..., T], *args: Any) -> "Future[T]":
        """`work(*args)` on the compile worker, one at a time, at most `vars_compile_queue`
        waiting (else CompileBusy: 503 with a Retry-After from the last one's duration).
        Call with the pending lock held."""
        limit = 1 + self.settings.vars_compile_queue
        if len(self._pending) >= limit:
            retry = max(1, math.ceil(self._compile_seconds * len(self._pending)))
            raise CompileBusy(
                f"{len(self._pending)} {what} are running or queued (at most {limit}); "
                f"retry in {retry} s ({known} answered at once)", retry,
            )

        def timed() -> T:
            started = time.perf_counter()
            try:
                return work(*args)
            finally:
                self._compile_seconds = time.perf_counter() - started
                with self._pending_lock:
                    self._pending.pop(slot, None)

        future = self._compiler.submit(timed)
        self._pending[slot] = future  # type: ignore[assignment]
        return future

    def _compile_into(
        self, variants: LRU[str, ProjectState | RequestError], key: str, dbt_vars: dict[str, Any]
    ) -> ProjectState | RequestError:
        variant = self._compile_variant(dbt_vars)
        with self._pending_lock:
            variants.put(key, variant)
        return variant

    def _compile_variant(self, dbt_vars: dict[str, Any]) -> ProjectState | RequestError:
        """A variant, or why it fails: failures are cached too, so they cost one compile."""
        try:
            return self._compile(dbt_vars)
        except (project.ProjectError, PipelineError) as exc:
            message = str(exc).replace(str(self.settings.project_dir), self.settings.project_dir.name)
            return RequestError(f"the project does not compile with these vars: {message}")

    def _compile(self, dbt_vars: dict[str, Any] | None = None, warehouse: Warehouse | None = None) -> ProjectState:
        started, state = time.perf_counter(), None
        try:
            state = self._compile_state({**self.base_vars, **(dbt_vars or {})} or None, warehouse)
            return state
        finally:
            if self.on_compile is not None:
                self.on_compile("vars" if dbt_vars else "reload", time.perf_counter() - started, state)

    def _compile_state(self, dbt_vars: dict[str, Any] | None, warehouse: Warehouse | None) -> ProjectState:
        """Compile into a scratch target folder against a scratch copy of the snapshot;
        only the manifest is kept (in memory)."""
        warehouse = warehouse if warehouse is not None else self.state.warehouse
        scratch = Path(tempfile.mkdtemp(prefix="duckapi-compile-"))
        try:
            copy = self.snapshots.scratch_copy(warehouse, scratch)
            manifest = project.compile_manifest(replace(self.settings, target_path=scratch / "target"), dbt_vars, copy)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return ProjectState(
            manifest, self.engine, project.declared_vars(self.settings), warehouse, self.settings, self._renderer(dbt_vars),
        )

    def _renderer(self, dbt_vars: dict[str, Any] | None) -> Renderer:
        """How a state compiled with these vars renders a data-dependent pipeline over a
        request's rows: on the compile worker, behind the same short queue as vars."""

        def render(pipeline: Pipeline, tables: rendering.Tables) -> rendering.Rendered:
            with self._pending_lock:
                slot = (0, f"render {next(self._renders)}")
                future = self._queued(
                    slot, "compiles or renderings over new data", "data seen before is", self._render, pipeline, tables, dbt_vars,
                )
            return future.result()

        return render

    def _render(self, pipeline: Pipeline, tables: rendering.Tables, dbt_vars: dict[str, Any] | None) -> rendering.Rendered:
        return rendering.render_on_snapshot(self.settings, self.snapshots, pipeline, tables, dbt_vars)

    def reload(self) -> bool:
        """Snapshot the warehouse and recompile the project; keep serving the old state
        if that fails. A warehouse being rebuilt is waited for (RELOAD_WAIT_S)."""
        with self._reload_lock:
            fingerprint = project_fingerprint(self.settings.project_dir, self.settings.db_path)
            try:
                warehouse = self.snapshots.take(wait=RELOAD_WAIT_S)
                fingerprint = project_fingerprint(self.settings.project_dir, self.settings.db_path)
                state = self._compile(warehouse=warehouse)
            except WarehouseBusy as exc:
                log.error("reload postponed, still serving the previous version: %s", exc)
                return False  # fingerprint unchanged: the next poll or SIGHUP tries again
            except (project.ProjectError, PipelineError, WarehouseError, ValueError, OSError, duckdb.Error) as exc:
                log.error("reload failed, still serving the previous version: %s", exc)
                self.fingerprint = fingerprint  # do not retry until the files change again
                return False
            if self.prepare is not None:  # e.g. warm every lane (api/ops/warming.py) before it serves
                self.prepare(state)
            self.state = state
            self._variants = LRU(self.settings.vars_cache_size)
            self.fingerprint = fingerprint
            version = state.warehouse.version if state.warehouse else "none"
            log.info("reloaded %s (warehouse snapshot %s): serving %s", self.settings.project_dir, version, ", ".join(state.endpoints))
            return True

    def changed(self) -> bool:
        return project_fingerprint(self.settings.project_dir, self.settings.db_path) != self.fingerprint

    def close(self) -> None:
        self._compiler.shutdown(wait=False, cancel_futures=True)
        self.engine.close()
        self.snapshots.close()


def _integral(value: Any, default: Any) -> Any:
    """2.0 where the default is an integer is the integer 2, as JSON (and JSON Schema) count it."""
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _same_shape(value: Any, default: Any) -> bool:
    """A var override must have its default's JSON type (lists: element by element).

    dbt renders vars into SQL text, so a number must stay a number; strings stay free
    text, which is why pipelines run with DuckDB's external access off.
    """
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    if isinstance(default, list):
        return isinstance(value, list) and (not default or all(_same_shape(v, default[0]) for v in value))
    if isinstance(default, dict):
        return isinstance(value, dict) and all(k in default and _same_shape(v, default[k]) for k, v in value.items())
    return isinstance(value, type(default)) if default is not None else value is None or isinstance(value, str)
