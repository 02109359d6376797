"""A lingering close: an answer sent before the request's body was read reaches the client,
whatever its Connection header.

duckapi answers some requests before reading their body (401, 404, 405, 406, 413, 415, and
the 503 of a full queue). On a keep-alive connection uvicorn then reads and drops the rest
of the body. But when the connection is to close (the client sent `Connection: close`, as
urllib always does, or spoke HTTP/1.0), uvicorn closes the socket at once, with body bytes
still unread in its receive buffer, and the kernel answers them with a reset: the client
gets "connection reset" instead of the answer.

So closing a connection whose request body has not all arrived is done as web servers
do it: after the answer, the write side is shut (the client sees the answer end), then
the rest of the body is read and dropped until the client is done (EOF), or until
`linger_bytes` or `linger_seconds` (Settings), then the socket is closed. Used as uvicorn's
HTTP protocol (`duckapi serve`); everything else is uvicorn's httptools protocol as it is.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from duckapi.settings import Settings


@lru_cache(maxsize=1)
def _limits() -> tuple[float, int]:
    settings = Settings.from_env()
    return settings.linger_seconds, settings.linger_bytes


class _Transport:
    """The connection's transport as uvicorn sees it: `close` lingers while the request
    body is still arriving; everything else is the transport's own."""

    def __init__(self, transport: asyncio.Transport, protocol: "LingeringHttpToolsProtocol") -> None:
        self._transport = transport
        self._protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._protocol.lingering or self._transport.is_closing()

    def close(self) -> None:
        protocol = self._protocol
        if protocol.lingering or protocol.body_done or self._transport.is_closing() or not self._transport.can_write_eof():
            self._transport.close()
            return
        protocol.linger()


class LingeringHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a lingering close (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.body_done = True  # no request yet: nothing to wait for
        self.lingering = False
        self._dropped = 0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._socket: asyncio.Transport = transport  # type: ignore[assignment]  # what really closes
        super().connection_made(_Transport(self._socket, self))  # type: ignore[arg-type]

    def on_message_begin(self) -> None:
        self.body_done = False
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self.body_done = True
        super().on_message_complete()

    def linger(self) -> None:
        """Stop writing (the answer is complete), then read and drop the rest of the body."""
        seconds, _ = _limits()
        self.lingering = True
        self._socket.write_eof()
        self._socket.resume_reading()
        self._timer = self.loop.call_later(seconds, self._socket.close)

    def data_received(self, data: bytes) -> None:
        if not self.lingering:
            super().data_received(data)
            return
        self._dropped += len(data)
        if self._dropped > _limits()[1]:
            self._socket.close()

    def eof_received(self) -> bool | None:
        if self.lingering:  # the client sent all it had: done
            self._socket.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        super().connection_lost(exc)
