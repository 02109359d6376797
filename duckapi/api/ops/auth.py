"""API keys: with a keys file, every endpoint but /healthz needs one.

`DUCKAPI_API_KEYS_FILE` (or `duckapi serve --api-keys-file PATH`) names a file of keys,
one per line; `#` starts a comment, blank lines are ignored. A request then needs
`Authorization: Bearer <key>` or `X-API-Key: <key>`, else 401 with
`WWW-Authenticate: Bearer` and a JSON detail (that never repeats what was sent). A
presented key is compared with every key (hmac.compare_digest, no early exit), so the
time taken tells nothing about which key, if any, came close. /healthz stays open, and
so do the web page at / and its assets (duckapi/web/: the key is typed into the page);
the docs (/docs, /redoc, /openapi.json) and /metrics are closed unless
DUCKAPI_PUBLIC_DOCS=1 / DUCKAPI_PUBLIC_METRICS=1. A missing, unreadable or empty file
stops start-up (KeysError); on a reload (SIGHUP, `--reload` seeing the file change)
such a file is logged and the previous keys stay in force. Keys are never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from pathlib import Path
from typing import Any

from duckapi.api.ops.early_answers import ASGIApp, Receive, Scope, Send
from duckapi.web import PATHS as PAGE_PATHS

log = logging.getLogger("duckapi")

#: Open without a key: /healthz, and the web page and its assets (the key is typed into the page).
OPEN_PATHS = frozenset({"/healthz"}) | PAGE_PATHS
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
METRICS_PATHS = frozenset({"/metrics"})
SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


class KeysError(ValueError):
    """The keys file cannot be used; the message says which file and why."""


def read_keys(path: Path) -> tuple[bytes, ...]:
    """The keys in `path`: one per line, `#` comments and blank lines ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeysError(f"API keys file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeysError(f"API keys file {path} cannot be read: {type(exc).__name__}") from None
    keys = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    keys = list(dict.fromkeys(k for k in keys if k))
    if not keys:
        raise KeysError(f"API keys file {path} holds no key (one per line; # starts a comment)")
    return tuple(k.encode() for k in keys)


class ApiKeys:
    """The current keys of one file, re-read on reload."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._stat()
        self._keys = read_keys(path)
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def __len__(self) -> int:
        return len(self._keys)

    def changed(self) -> bool:
        return self._stat() != self._stamp

    def reload(self) -> bool:
        """Re-read the file; keep the previous keys (and log why) if it cannot be used."""
        with self._lock:
            self._stamp = self._stat()
            try:
                keys = read_keys(self.path)
            except KeysError as exc:
                log.error("API keys not reloaded, the previous ones stay in force: %s", exc)
                return False
            if keys != self._keys:
                log.info("API keys reloaded from %s: %d key(s)", self.path, len(keys))
            self._keys = keys
            return True

    def valid(self, presented: bytes) -> bool:
        """Whether `presented` is one of the keys: compared with each, every time."""
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(presented, key)
        return found and bool(presented)


def presented_key(scope: Scope) -> bytes | None:
    """The key a request sends: `Authorization: Bearer <key>`, else `X-API-Key: <key>`."""
    bearer = api_key = None
    for name, value in scope.get("headers", []):
        if name == b"authorization" and bearer is None:
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                bearer = token.strip()
        elif name == b"x-api-key" and api_key is None:
            api_key = value.strip()
    return bearer if bearer is not None else api_key


class RequireKey:
    """ASGI middleware: 401 for requests without a valid key, except the open paths."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, public_docs: bool = False, public_metrics: bool = False) -> None:
        self.app = app
        self.keys = keys
        self.open = OPEN_PATHS | (DOCS_PATHS if public_docs else frozenset()) | (METRICS_PATHS if public_metrics else frozenset())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.open:
            await self.app(scope, receive, send)
            return
        key = presented_key(scope)
        if key is not None and self.keys.valid(key):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        detail = ("missing API key: send Authorization: Bearer <key> or X-API-Key: <key>" if not key
                  else "invalid API key")
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="duckapi"'),
        ]})
        await send({"type": "http.response.body", "body": body})


def declare(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the key schemes required everywhere but /healthz."""
    document.setdefault("components", {}).setdefault("securitySchemes", {}).update(SCHEMES)
    document["security"] = [{name: []} for name in SCHEMES]
    for path in OPEN_PATHS:
        for operation in document.get("paths", {}).get(path, {}).values():
            if isinstance(operation, dict):
                operation["security"] = []
    return document
