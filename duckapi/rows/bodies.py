"""Which rows of a request belong to which input of the endpoint.

An endpoint with one input takes its rows as the whole body, in any format
(rows/formats.py). An endpoint with several takes a JSON object keyed by input name,
each value an array of rows in that input's schema, or `multipart/form-data` with one
part per input, named after it, each with its own Content-Type (any row format).
Every input must be present (an empty array means no rows); an unknown name is a 422.
Errors name the input, then the row and field as for one input.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence, TypeVar

import msgspec
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from duckapi.errors import InputError
from duckapi.rows.columns import InputRows
from duckapi.rows.formats import FORMATS, RowsReader
from duckapi.rows.parsing import BodyParser
from duckapi.pipeline import Input

MULTIPART = "multipart/form-data"
V = TypeVar("V")
_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])


class RequestReader:
    """Reads a body into one Arrow table per input of an endpoint, in the endpoint's order."""

    def __init__(self, inputs: Sequence[Input], parser: BodyParser) -> None:
        self.inputs = tuple(inputs)
        self.readers = {item.name: RowsReader(item.columns, parser) for item in inputs}
        #: The one input's reader (None with several inputs): the common case, one lookup.
        self.single = self.readers[self.inputs[0].name] if len(self.inputs) == 1 else None

    def read(self, body: bytes, fmt: str, content_type: str = "") -> tuple[InputRows, ...]:
        if fmt == "multipart":
            return self._assemble(_parts(body, content_type))
        if self.single is not None:
            return (self.single.read(body, fmt),)
        if fmt != "json":
            raise InputError(415, self._how(f"a {fmt.upper()} body"))
        return self._json_object(body)

    def _how(self, what: str) -> str:
        names = ", ".join(i.name for i in self.inputs)
        return (f"{what} cannot hold several inputs ({names}): send a JSON object keyed by input name, "
                f"or {MULTIPART} with one part per input")

    def _json_object(self, body: bytes) -> tuple[InputRows, ...]:
        try:
            members = _OBJECT.decode(body)
        except msgspec.ValidationError:
            raise InputError(422, self._how("this JSON body")) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise InputError(400, f"malformed JSON: {str(exc)[:200]}") from None
        return self._assemble({name: (bytes(raw), "json") for name, raw in members.items()})

    def _assemble(self, given: dict[str, tuple[bytes, str]]) -> tuple[InputRows, ...]:
        return self.assemble(given, lambda reader, part: reader.read(*part))

    def assemble(self, given: Mapping[str, V], read: Callable[[RowsReader, V], InputRows]) -> tuple[InputRows, ...]:
        """Each input's rows read by `read(its reader, what was given for it)`; every input
        must be given, none other. Errors name the input."""
        known = [i.name for i in self.inputs]
        unknown = [str(name) for name in given if name not in known]
        if unknown:
            raise InputError(422, f"unknown input(s) {', '.join(map(repr, unknown))}; this endpoint takes: {', '.join(known)}",
                             input=unknown[0])
        missing = [name for name in known if name not in given]
        if missing:
            raise InputError(422, f"input '{missing[0]}' is missing (send [] for no rows); this endpoint takes: "
                             f"{', '.join(known)}", input=missing[0])
        tables = []
        for name in known:
            try:
                tables.append(read(self.readers[name], given[name]))
            except InputError as exc:
                raise exc.within(name) from None
        return tuple(tables)


def _parts(body: bytes, content_type: str) -> dict[str, tuple[bytes, str]]:
    """multipart/form-data -> {part name: (content, row format)}; the body is already in memory."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InputError(400, f"{MULTIPART} needs a boundary parameter in its Content-Type")
    parts: dict[str, tuple[bytes, str]] = {}
    headers: dict[bytes, bytes] = {}
    field, value, chunks = bytearray(), bytearray(), []

    def header_field(data: bytes, start: int, end: int) -> None:
        field.extend(data[start:end])

    def header_value(data: bytes, start: int, end: int) -> None:
        value.extend(data[start:end])

    def header_end() -> None:
        headers[bytes(field).lower()] = bytes(value)
        field.clear()
        value.clear()

    def part_data(data: bytes, start: int, end: int) -> None:
        chunks.append(data[start:end])

    def part_end() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            raise InputError(400, f"a {MULTIPART} part has no name: name each part after its input")
        if name in parts:
            raise InputError(422, f"input '{name}' is sent twice", input=name)
        kind = parse_options_header(headers.get(b"content-type", b"application/json"))[0].decode().lower()
        if kind not in FORMATS:
            raise InputError(415, f"input '{name}': unsupported Content-Type {kind[:100]!r}; send one of: "
                             f"{', '.join(FORMATS)}", input=name)
        parts[name] = (b"".join(chunks), FORMATS[kind])
        headers.clear()
        chunks.clear()

    parser = MultipartParser(boundary, {
        "on_header_field": header_field, "on_header_value": header_value, "on_header_end": header_end,
        "on_part_data": part_data, "on_part_end": part_end,
    })
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise InputError(400, f"malformed {MULTIPART} body: {str(exc)[:200]}") from None
    return parts
