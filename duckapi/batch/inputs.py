"""The input files of a run: names, globs and folders expanded, each checked and given its format,
and (for an endpoint with several inputs) assigned to its inputs by `NAME=PATH` arguments."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from duckapi.batch.errors import InputError
from duckapi.pipeline import Input, Pipeline
from duckapi.rows.files import format_of, json_kind


@dataclass(frozen=True)
class InputFile:
    path: str
    format: str

    @property
    def local(self) -> bool:
        return "://" not in self.path


def resolve_inputs(patterns: Sequence[str], input_format: str = "auto") -> list[InputFile]:
    """Expand names, globs and folders into files with a known format, or raise InputError.

    Local files must exist and be readable; a URL (s3a://, hdfs://, ...) is passed to
    the engine as it is (Spark expands its globs itself).
    """
    if not patterns:
        raise InputError("no input: give one or more files, globs or folders")
    files: list[InputFile] = []
    seen: set[str] = set()
    for pattern in patterns:
        if "://" in pattern:
            fmt = input_format if input_format != "auto" else format_of(pattern)
            if fmt is None:
                raise InputError(f"{pattern}: cannot tell the format from the name; use --input-format")
            files.append(InputFile(pattern, fmt))
            continue
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise InputError(f"{pattern}: no file matches")
        else:
            matches = [pattern]
        for match in matches:
            path = Path(match)
            if path.is_dir():
                inside = sorted(p for p in path.rglob("*") if p.is_file() and (format_of(p.name) or input_format != "auto"))
                inside = [p for p in inside if not p.name.startswith((".", "_"))]  # _SUCCESS, .crc
                if not inside:
                    raise InputError(f"{match}: folder holds no CSV, Parquet or JSON file")
                candidates = [str(p) for p in inside]
            else:
                candidates = [match]
            for candidate in candidates:
                files.append(_check_file(candidate, input_format))
    unique = []
    for f in files:
        key = f.path if not f.local else str(Path(f.path).resolve())
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _check_file(name: str, input_format: str) -> InputFile:
    path = Path(name)
    if not path.exists():
        raise InputError(f"{name}: no such file")
    if not path.is_file():
        raise InputError(f"{name}: not a regular file")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    fmt = input_format if input_format != "auto" else format_of(path.name)
    if fmt is None:
        raise InputError(f"{name}: cannot tell the format from the name (.csv, .parquet, .json, .ndjson); use --input-format")
    if fmt == "json":
        fmt = json_kind(str(path))
    return InputFile(str(path.resolve()), fmt)


def _grouped(files: Sequence[InputFile]) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(f.format, []).append(f.path)
    return list(groups.items())


def describe_files(files: Sequence[InputFile]) -> str:
    size = sum(os.path.getsize(f.path) for f in files if f.local)
    return f"{len(files)} file{'s' if len(files) != 1 else ''}" + (f", {size / 2**20:,.1f} MiB" if size else "")



#: `NAME=PATH`: an input's name (a model or seed, or source_name.table_name), then its files.
_NAMED = re.compile(r"([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)?)=(.+)", re.DOTALL)

#: Input files by the name an argument gave them; None: arguments without a name.
NamedFiles = Mapping[Optional[str], Sequence[InputFile]]
#: Each input of a pipeline with its files, in the pipeline's order.
Assigned = Sequence[tuple[Input, Sequence[InputFile]]]


def split_argument(argument: str) -> tuple[str | None, str]:
    """`stg_orders=data/orders/` -> ("stg_orders", "data/orders/"); a plain path -> (None, path).

    An argument that names an existing file or folder as a whole is a path, even with
    an `=` in it (a Hive-style `day=1` folder).
    """
    match = _NAMED.fullmatch(argument)
    if match is None or "://" in match[1] or Path(argument).exists():
        return None, argument
    return match[1], match[2]


def resolve_arguments(arguments: Sequence[str], input_format: str = "auto") -> dict[str | None, list[InputFile]]:
    """The files of every argument, checked, grouped by the input name each gives (or None).

    A name given several times collects all of its files; each group is one input.
    """
    patterns: dict[str | None, list[str]] = {}
    for argument in arguments:
        name, pattern = split_argument(argument)
        patterns.setdefault(name, []).append(pattern)
    if not patterns:
        raise InputError("no input: give one or more files, globs or folders")
    return {name: resolve_inputs(group, input_format) for name, group in patterns.items()}


def assign_inputs(pipeline: Pipeline, named: NamedFiles) -> Assigned:
    """Each input of the pipeline with its files, in the pipeline's order, or InputError.

    One input takes every file (`NAME=` optional); several need `NAME=PATH` for each.
    """
    names = [item.name for item in pipeline.inputs]
    takes = f"{pipeline.endpoint.path} takes the input{'s' if len(names) > 1 else ''} {', '.join(names)}"
    unknown = [name for name in named if name is not None and name not in names]
    if unknown:
        raise InputError(f"unknown input {unknown[0]} in {unknown[0]}=...; {takes}")
    if len(names) == 1:
        return [(pipeline.inputs[0], [f for files in named.values() for f in files])]
    if None in named:
        raise InputError(f"{named[None][0].path}: which input is it? {takes}: give NAME=PATH for each, e.g. {names[0]}=PATH")
    missing = [name for name in names if name not in named]
    if missing:
        raise InputError(f"input {missing[0]} is missing: give {missing[0]}=PATH ({takes})")
    return [(item, named[item.name]) for item in pipeline.inputs]
