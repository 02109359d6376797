"""Answers given before the request body is read reach the client, and refused uploads
are never sent.

duckapi answers some requests from their headers alone (404, 405, 406, 413 by
Content-Length, 415, 401). A client that honours `Expect: 100-continue` waits for
"100 Continue" before it uploads; uvicorn sends that only when the app first reads the
body, so such a refusal goes out before any of the body is sent. The connection then
still expects a body the client will never send, so the answer says `Connection:
close`. A client that sends its body anyway gets the answer too: uvicorn keeps reading
(and discarding) the rest of the body after the answer instead of closing on it
(tests/test_early_answers.py shows both with 12 MB bodies).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class EarlyAnswers:
    """ASGI middleware: `Connection: close` on an answer sent before a 100-continue body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _expects_continue(scope):
            await self.app(scope, receive, send)
            return
        body_asked = False

        async def receive_body() -> Message:
            nonlocal body_asked
            body_asked = True  # uvicorn sends "100 Continue" now
            return await receive()

        async def send_answer(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_asked:
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive_body, send_answer)


def _expects_continue(scope: Scope) -> bool:
    return any(name == b"expect" and value.lower() == b"100-continue" for name, value in scope.get("headers", []))
