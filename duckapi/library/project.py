"""A dbt project served in-process: the one path from rows to answer.

`duckapi.load` compiles the project once (or reads the manifest `duckapi build` wrote),
snapshots its warehouse, and returns a `Project`. `Project.run` reads the rows into
Arrow per input, runs the endpoint's pipeline in DuckDB and returns an `Answer`. The
HTTP app and `duckapi run` are clients of this module: the app reads request bodies
through `Call.read` and answers with `Call.json` or `Call.arrow`, so an answer over
HTTP and an answer in Python are the same bytes.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from duckapi.dbt import project as dbt_project
from duckapi.engines.duckdb import DuckDBEngine
from duckapi.errors import RequestError
from duckapi.library.answer import Answer
from duckapi.library.endpoints import Column, Endpoint, EndpointInput
from duckapi.library.examples import examples
from duckapi.pipeline import Input, Pipeline, digest, find_endpoint
from duckapi.rows import python
from duckapi.rows.bodies import RequestReader
from duckapi.rows.columns import InputRows
from duckapi.rows.parsing import BodyParser
from duckapi.dbt.project import QUERIES_KEY
from duckapi.serving.rendering import Renderings
from duckapi.serving.service import ProjectState, Served, Service, compile_project
from duckapi.settings import Settings
from duckapi.dbt.warehouse import data_version

Tables = Sequence[InputRows]


def load_manifest(settings: Settings) -> dict[str, Any]:
    """The manifest `duckapi build`/`serve` wrote, else compile the project now (once).

    A manifest without the record of the queries its models' renderings ran (one a plain
    `dbt compile` wrote) cannot tell which models are data-dependent: compiled anew."""
    if settings.manifest_path.exists():
        manifest = dbt_project.load_manifest(settings)
        if QUERIES_KEY in manifest:
            return manifest
    return compile_project(settings)


@dataclass(frozen=True, eq=False)
class Call:
    """One endpoint with one selection of parts and one set of vars, in one state of the
    project: what a request runs. Made by `Project.call`; safe to share between threads."""

    path: str
    pipeline: Pipeline
    reader: RequestReader
    engine: DuckDBEngine
    max_bytes: int
    #: For a data-dependent endpoint: its variants rendered over the rows (serving/rendering.py).
    renderings: Renderings | None = None

    def read(self, body: bytes, fmt: str, content_type: str = "") -> tuple[InputRows, ...]:
        """A request body (any format, or JSON/multipart keyed by input) as input tables."""
        return self.reader.read(body, fmt, content_type)

    def rows(self, rows: Any) -> tuple[InputRows, ...]:
        """Python rows (rows/python.py) as input tables."""
        return python.tables(self.reader, rows, self.max_bytes)

    def resolved(self, tables: Tables) -> Pipeline:
        """The pipeline these rows run: the compiled one, or for a data-dependent endpoint
        the variant dbt renders over them (RequestError, CompileBusy while rendering)."""
        return self.pipeline if self.renderings is None else self.renderings.resolve(tables)

    def json(self, tables: Tables, pipeline: Pipeline | None = None) -> bytes:
        """The answer as JSON text, written by DuckDB: the HTTP API's body. `pipeline`: the
        one `resolved` gave for these rows, if known."""
        return self.engine.execute_json(pipeline or self.resolved(tables), tables)

    def arrow(self, tables: Tables, pipeline: Pipeline | None = None) -> pa.Table:
        return self.engine.execute_arrow(pipeline or self.resolved(tables), tables)



class Project:
    """A compiled dbt project whose served models run in this process.

    Safe to use from many threads at once: each thread runs its statements on a DuckDB
    database of its own; reference data is read from a private read-only snapshot of
    the warehouse. Close it (or use it as a context manager) to free the snapshots.
    """

    def __init__(
        self, settings: Settings, manifest: dict[str, Any] | None = None, vars: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        if manifest is None:
            manifest = compile_project(settings, vars) if vars else load_manifest(settings)
        #: The compiled state, vars variants and reloads (duckapi/serving/service.py).
        self.service = Service(settings, manifest, vars)
        #: The plain calls (no parts selected) of each state in use: dropped with the state.
        self._calls: weakref.WeakKeyDictionary[ProjectState, dict[str, Call]] = weakref.WeakKeyDictionary()
        #: Those of the state now served, for the common call: no weak-dictionary lookup.
        self._current: tuple[weakref.ref[ProjectState] | None, dict[str, Call]] = (None, {})
        self._described: tuple[ProjectState, dict[str, Endpoint]] | None = None
        self._reader = lru_cache(maxsize=64)(self._new_reader)
        #: Large JSON, NDJSON and CSV bodies are parsed in DuckDB databases of their own.
        self._parser = BodyParser(self.service.engine.config)

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Project {self.settings.project_dir.name}: {', '.join(self.service.state.endpoints)}>"

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        """The served endpoints by path: their inputs, parts, columns and settable vars."""
        state = self.service.state
        described = self._described
        if described is None or described[0] is not state:
            described = (state, {
                path: describe(state, path, served, self.settings.project_dir) for path, served in sorted(state.endpoints.items())
            })
            self._described = described
        return described[1]

    def path(self, endpoint: str) -> str:
        """The served path `endpoint` names (a path, with or without slashes, or the served
        model's name), else RequestError listing the served ones."""
        endpoints = self.service.state.endpoints
        path = find_endpoint(endpoint, endpoints, lambda served: served.pipeline.endpoint.output)
        if path is not None:
            return path
        raise RequestError(f"no endpoint {endpoint!r}; the project serves {', '.join(sorted(endpoints)) or 'none'}")

    def call(self, endpoint: str, select: Sequence[str] | None = None, vars: dict[str, Any] | None = None) -> Call:
        """What a request to `endpoint` with these parts and vars runs.

        Without vars this never waits; new vars are compiled once (one at a time, behind
        a short queue: `CompileBusy` beyond it), known ones are cached.
        """
        state = self.service.state
        if not select and not vars:  # the common call: one dict lookup
            ref, calls = self._current
            call = calls.get(endpoint) if ref is not None and ref() is state else None
            if call is not None:
                return call
        path = self.path(endpoint)
        if vars:
            state = self.service.state_for(vars, path)
            if path not in state.endpoints:
                raise RequestError(f"with these vars the project does not serve {path}")
        if not select:
            return self._plain_call(state, path, None if vars else endpoint)
        return self._new_call(path, state.pipeline(path, list(dict.fromkeys(select))))

    def run(
        self, endpoint: str, rows: Any, *, select: Sequence[str] | None = None, vars: dict[str, Any] | None = None,
    ) -> Answer:
        """Run `endpoint` over `rows` and return its answer.

        `rows` is a list of dicts, a pyarrow Table or RecordBatchReader, a pandas or
        Polars DataFrame, or a path or list of paths (CSV, Parquet, JSON, NDJSON, also
        .gz/.zst); for an endpoint with several inputs, a dict of those keyed by input
        name. `select` names parts to compute (see `Endpoint.parts`), `vars` sets
        request-settable dbt vars. Raises InputError (rows against the contract, naming
        input, row and field) or RequestError (endpoint, part or var unknown). The
        statement runs when the answer is first read, in the form asked for; it raises
        ExecutionError there if the SQL fails on these rows.
        """
        call = self.call(endpoint, select, vars)
        return Answer(call, call.rows(rows))

    def reload(self) -> bool:
        """Recompile the project and take a new snapshot of its warehouse; True when the
        new version is in use (on failure the old one keeps answering, and the error is
        logged). Calls under way finish on the version they started with."""
        return self.service.reload()

    def changed(self) -> bool:
        """Whether the project's files or its warehouse changed since the last (re)load."""
        return self.service.changed()

    def close(self) -> None:
        self.service.close()
        self._parser.close()

    def call_in(self, state: ProjectState, path: str) -> Call:
        """The plain call of `path` in a given state of the project (one not yet served)."""
        return self._plain_call(state, path)

    def _plain_call(self, state: ProjectState, path: str, endpoint: str | None = None) -> Call:
        """The cached call of `path`, also under the name `endpoint` it was asked by."""
        calls = self._calls.get(state)
        if calls is None:
            calls = self._calls.setdefault(state, {})
        if state is self.service.state:
            self._current = (weakref.ref(state), calls)
        call = calls.get(path)
        if call is None:
            served = state.endpoints[path]
            call = calls[path] = self._new_call(path, served.pipeline, served.renderings)
        if endpoint is not None and endpoint not in calls and len(calls) < 256:
            calls[endpoint] = call
        return call

    def _new_call(self, path: str, pipeline: Pipeline, renderings: Renderings | None = None) -> Call:
        return Call(
            path, pipeline, self._reader(pipeline.inputs), self.service.engine, self.settings.max_body_bytes, renderings,
        )

    def _new_reader(self, inputs: tuple[Input, ...]) -> RequestReader:
        return RequestReader(inputs, self._parser)


def describe(state: ProjectState, path: str, served: Served, project_dir: Path | None = None) -> Endpoint:
    pipeline = served.pipeline
    return Endpoint(
        path=path,
        model=pipeline.endpoint.output,
        inputs=tuple(
            EndpointInput(item.name, item.node.relation_name, item.columns)
            for item in pipeline.inputs
        ),
        parts=served.parts,
        columns=tuple(Column(n, t, False) for n, t in served.schemas.get(pipeline.output_node.name, ())),
        vars=state.settable_vars(path),
        references=pipeline.references,
        materialized={n.name: n.materialized for n in pipeline.nodes},
        data_dependent={
            model: pipeline.introspection.queries(model) for model in pipeline.introspection.dependent
        },
        examples=examples(pipeline, project_dir, state.unit_tests),
        project_digest=digest(pipeline),
        data_version=data_version(pipeline.warehouse),
    )


def load(
    project_dir: str | os.PathLike[str] = ".", *, db: str | os.PathLike[str] | None = None, target: str | None = None,
    vars: dict[str, Any] | None = None, settings: Settings | None = None,
) -> Project:
    """Load the dbt project in `project_dir`: read the manifest `duckapi build` wrote
    (`target/manifest.json`), else compile it once with dbt.

    `db` is the dbt-built DuckDB file the project's reference data is read from (default:
    the `path` of the project's profile, else `<project>/dev.duckdb`); `target` the
    profile target. It is read through a private snapshot, never written. `vars` are
    dbt vars for the whole project (like `dbt --vars`: any declared var; the project is
    then compiled with them). `settings` gives every other knob
    (duckapi.settings.Settings); environment variables are not read. Raises
    ProjectError when the project does not compile or its reference data is not in the
    warehouse.
    """
    if settings is None:
        settings = Settings.from_env(env={}, project_dir=Path(project_dir), db_path=db, target=target)
    return Project(settings, vars=vars)
