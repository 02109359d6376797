"""Why a batch run stops with exit code 2: bad arguments or input, named, also when an engine finds it mid-run."""

from __future__ import annotations

from typing import Sequence

from duckapi.engines import ExecutionError
from duckapi.pipeline import Reference


class InputError(ValueError):
    """Bad arguments or an unreadable input file (exit code 2); names the file."""


#: How the engines' errors about bad input data start or what they contain: such a
#: failure during the run is unreadable input (exit code 2), not a pipeline error.
INPUT_ERROR_MARKERS = (
    NULL_MESSAGE_START := "input column ",
    "CSV Error on Line", "Malformed JSON", "JSON transform error", "file = ", "in file",
    "MALFORMED_RECORD_IN_PARSING", "FAILED_READ_FILE", "CANNOT_READ_FILE", "PATH_NOT_FOUND",
)


def is_input_error(message: str) -> bool:
    return message.startswith(NULL_MESSAGE_START) or any(m in message for m in INPUT_ERROR_MARKERS[1:])


def _input_error(exc: ExecutionError) -> ExecutionError | InputError:
    return InputError(str(exc)) if is_input_error(str(exc)) else exc



def missing_columns(where: str, missing: list[str], input_name: str, contract: list[str]) -> InputError:
    """A file of an input lacks columns its contract needs (both engines say it the same way)."""
    return InputError(f"{where}: no column {', '.join(missing)} (input {input_name} needs {', '.join(contract)})")


class MissingReferences(Exception):
    """Reference relations the pipeline reads are not where the engine reads them from
    (the warehouse snapshot, the Spark catalog); found before any input is read (exit code 1)."""

    def __init__(self, missing: Sequence[Reference]) -> None:
        super().__init__(", ".join(r.relation_name for r in missing))
        self.missing = list(missing)
