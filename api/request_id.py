"""Every request gets an id: the client's `X-Request-ID` when it is a sane one, else a new one.
It is echoed on every response, written into the audit log with each act, and carried by every
log line emitted while the request is served (`current()`, read by `riskgrid.logs`)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_SANE = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
# Request threads see it too: anyio copies the context into to_thread.run_sync.
_current: ContextVar[str | None] = ContextVar("riskgrid_request_id", default=None)


def current() -> str | None:
    """Return the id of the request this code is serving, or None outside a request."""
    return _current.get()


def bind(rid: str) -> None:
    """Make `rid` the current request id for the rest of this task."""
    _current.set(rid)


class RequestId:
    """Pure ASGI middleware (no per-request task or body copy, unlike BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(HEADER, b"")
        rid = sent if _SANE.match(sent) else uuid.uuid4().hex.encode()
        scope.setdefault("state", {})["request_id"] = rid.decode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER, rid)]
            await send(message)

        token = _current.set(rid.decode())
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _current.reset(token)
