"""What a call answers: the served model's rows, in the forms callers want them."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable

import pyarrow as pa

if TYPE_CHECKING:
    import pandas
    import polars


class Answer:
    """The rows the served model computed for one call.

    The Arrow table is computed by `Project.run`; `json` is written by DuckDB's own JSON
    writer on first use: the same bytes the HTTP API answers for the same rows (one
    more statement over the same rows and the same reference data).
    """

    def __init__(self, endpoint: str, table: pa.Table, json: Callable[[], bytes]) -> None:
        self.endpoint = endpoint
        self._table = table
        self._json = json

    @property
    def num_rows(self) -> int:
        return self._table.num_rows

    def __len__(self) -> int:
        return self._table.num_rows

    def __repr__(self) -> str:
        return f"<Answer {self.endpoint}: {self._table.num_rows} row(s), columns {', '.join(self._table.column_names)}>"

    def to_arrow(self) -> pa.Table:
        """The rows as a pyarrow Table, in the model's column types."""
        return self._table

    def to_pylist(self) -> list[dict[str, Any]]:
        """The rows as a list of dicts of Python values."""
        return self._table.to_pylist()

    def to_pandas(self) -> "pandas.DataFrame":
        """The rows as a pandas DataFrame (pandas must be installed)."""
        return self._table.to_pandas()

    def to_polars(self) -> "polars.DataFrame":
        """The rows as a Polars DataFrame (polars must be installed)."""
        import polars

        return polars.from_arrow(self._table)  # type: ignore[return-value]

    @cached_property
    def json(self) -> bytes:
        """The answer as the HTTP API's JSON body: a JSON array of row objects."""
        return self._json()
