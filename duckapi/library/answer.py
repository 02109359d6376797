"""What a call answers: the served model's rows, in the forms callers want them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import pyarrow as pa

from duckapi.pipeline import provenance

if TYPE_CHECKING:
    import pandas
    import polars

    from duckapi.library.project import Call
    from duckapi.pipeline import Pipeline


class Answer:
    """The rows the served model computes for one call's rows.

    `Project.run` has checked the rows; the statement runs when the answer is first
    read, once per form: Arrow (`to_arrow`, and the forms made from it) or JSON
    (`json`, written by DuckDB's own JSON writer: the same bytes the HTTP API answers).
    So a caller who wants JSON pays for one statement, not two. A statement that fails
    on these rows raises ExecutionError there. Both forms read the same snapshot of the
    reference data: the one the call started with, even if the project reloads meanwhile.
    """

    __slots__ = ("_call", "_tables", "_arrow", "_json", "_pipeline")

    def __init__(self, call: "Call", tables: Sequence[Any]) -> None:
        self._call = call
        self._tables = tables
        #: The pipeline these rows run (a data-dependent endpoint's variant), when first needed.
        self._pipeline: "Pipeline | None" = None
        # Computed when first read. Not functools.cached_property: on Python 3.11 its lock
        # is one for every instance and is held while the statement runs, so threads
        # reading different answers would wait for each other. Two threads reading the
        # same answer at once may both run its statement; both get the same rows.
        self._arrow: pa.Table | None = None
        self._json: bytes | None = None

    @property
    def endpoint(self) -> str:
        return self._call.path

    def _resolved(self) -> "Pipeline":
        pipeline = self._pipeline
        if pipeline is None:
            pipeline = self._pipeline = self._call.resolved(self._tables)
        return pipeline

    @property
    def project_digest(self) -> str:
        """The digest of the compiled SQL that answers (the HTTP header Duckapi-Project)."""
        return self.provenance["Duckapi-Project"]

    @property
    def data_version(self) -> str:
        """The warehouse snapshot's data version (the HTTP header Duckapi-Data-Version)."""
        return self.provenance["Duckapi-Data-Version"]

    @property
    def provenance(self) -> dict[str, str]:
        """Both, as the HTTP API's headers: with the rows, enough to reproduce the answer."""
        return provenance(self._resolved())

    def _table(self) -> pa.Table:
        table = self._arrow
        if table is None:
            table = self._arrow = self._call.arrow(self._tables, self._resolved())
        return table

    @property
    def num_rows(self) -> int:
        return self._table().num_rows

    def __len__(self) -> int:
        return self._table().num_rows

    def __repr__(self) -> str:
        return f"<Answer of {self.endpoint}>"

    def to_arrow(self) -> pa.Table:
        """The rows as a pyarrow Table, in the model's column types."""
        return self._table()

    def to_pylist(self) -> list[dict[str, Any]]:
        """The rows as a list of dicts of Python values."""
        return self._table().to_pylist()

    def to_pandas(self) -> "pandas.DataFrame":
        """The rows as a pandas DataFrame (pandas must be installed)."""
        return self._table().to_pandas()

    def to_polars(self) -> "polars.DataFrame":
        """The rows as a Polars DataFrame (polars must be installed)."""
        import polars

        return polars.from_arrow(self._table())  # type: ignore[return-value]

    @property
    def json(self) -> bytes:
        """The answer as the HTTP API's JSON body: a JSON array of row objects."""
        answer = self._json
        if answer is None:
            answer = self._json = self._call.json(self._tables, self._resolved())
        return answer
