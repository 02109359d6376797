"""SIGTERM drains: `/healthz` says draining (503) at once, requests keep being answered
for a short delay (so a load balancer sees the 503 and stops sending), then uvicorn
stops accepting, finishes the requests in flight (up to its graceful-shutdown timeout)
and the process exits 0. A second SIGTERM skips the delay.

uvicorn catches SIGTERM with its own handler (`Server.handle_exit`, installed with
signal.signal); this replaces it on the event loop for the life of the app and, when
the delay is over, asks that same server to exit the way its handler would, but
without re-raising the signal afterwards (which would end the process with status
-15 instead of 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

log = logging.getLogger("duckapi")


class Draining:
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.active = False
        self._installed: asyncio.AbstractEventLoop | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take over SIGTERM from the uvicorn server running this app (if there is one)."""
        server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
        if server is None or not hasattr(server, "should_exit"):
            return  # not under uvicorn's signal handling (tests, other servers)

        def stop() -> None:
            server.should_exit = True

        def on_sigterm() -> None:
            if self.active:
                stop()
                return
            self.active = True
            log.info("SIGTERM: draining for %.1f s, then finishing the requests in flight", self.delay_s)
            loop.call_later(self.delay_s, stop)

        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(signal.SIGTERM, on_sigterm)
            self._installed = loop

    def uninstall(self) -> None:
        if self._installed is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                self._installed.remove_signal_handler(signal.SIGTERM)
            self._installed = None
