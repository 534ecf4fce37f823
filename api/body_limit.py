"""Request bodies at the door: a limit per route, counted as the body streams, and a deadline.

Without it uvicorn handed FastAPI a 200 MB body whole before anything refused it (the server
grew from 330 to 1,275 MB). A declared Content-Length over the limit answers 413 before the
app runs; a chunked body is cut with 413 the moment it passes the limit; a body that is not
all there `body_timeout_s` after the app starts reading it answers 408. Each of these answers
closes the connection, so the rest of the body is never read.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import anyio
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo.settings import ServerSettings, Settings

log = logging.getLogger("riskgrid.api")

BATCH_PATHS = frozenset({"/api/v1/reports:batch"})
# Files: report photos, and a risk letter's reply with its attachments.
_UPLOAD = re.compile(r"/photos(/|$)|^/api/v1/letters/[^/]+/reply$")
_DISCONNECT: Message = {"type": "http.disconnect"}


@dataclass(frozen=True)
class Limit:
    """The largest body a route takes, and what a client with a larger one should do."""

    size: int
    what: str
    advice: str

    def refusal(self) -> str:
        """Return the 413 detail: the limit, and how to stay under it."""
        over = _size(self.size)
        return f"the request body is over {over}, the limit for {self.what}: {self.advice}"


def limit_for(path: str, door: ServerSettings) -> Limit:
    """Return the body limit of the route at `path`."""
    if path in BATCH_PATHS:
        return Limit(door.max_batch_body_bytes, "a batch", "split the batch into smaller ones")
    if _UPLOAD.search(path):
        return Limit(door.max_upload_bytes, "an upload", "send a smaller or more compressed file")
    return Limit(door.max_body_bytes, "this request", "send less in one request")


def _size(n: int) -> str:
    return f"{n // 1_000_000} MB" if n % 1_000_000 == 0 else f"{n:,} bytes"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _answer(send: Send, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The client may still be sending: closing is the only way not to read the rest.
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Gate:
    """One request's receive and send: counts the body, keeps the deadline, and once it has
    answered for the app, tells the app the client is gone and drops what the app sends."""

    def __init__(self, receive: Receive, send: Send, limit: Limit, timeout_s: float) -> None:
        self._receive, self._send = receive, send
        self.limit, self.timeout_s = limit, timeout_s
        self.received = 0
        self.deadline: float | None = None
        self.complete = False
        self.started = False
        self.answered = False

    async def receive(self) -> Message:
        if self.answered:
            return _DISCONNECT
        if self.complete:  # the app waits for a disconnect: no deadline on that
            return await self._receive()
        if self.deadline is None:
            self.deadline = anyio.current_time() + self.timeout_s
        message: Message | None = None
        with anyio.move_on_at(self.deadline):
            message = await self._receive()
        if message is None:
            detail = f"the request body did not arrive within {self.timeout_s:g} s: send it again"
            await self._refuse(408, detail)
            return _DISCONNECT
        return await self._count(message)

    async def _count(self, message: Message) -> Message:
        if message["type"] != "http.request":
            self.complete = True
            return message
        self.received += len(message.get("body", b""))
        self.complete = not message.get("more_body", False)
        if self.received > self.limit.size:
            await self._refuse(413, self.limit.refusal())
            return _DISCONNECT
        return message

    async def _refuse(self, status: int, detail: str) -> None:
        self.answered = True
        if not self.started:  # else the answer is under way: the app only stops reading
            await _answer(self._send, status, detail)

    async def send(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class BodyLimit:
    """Pure ASGI middleware: the body limit of the route, and the body deadline."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        door = self.settings.server
        limit = limit_for(scope["path"], door)
        declared = _content_length(scope)
        if declared is not None and declared > limit.size:
            await _answer(send, 413, limit.refusal())
            return
        gate = _Gate(receive, send, limit, door.body_timeout_s)
        try:
            await self.app(scope, gate.receive, gate.send)
        except Exception:
            if not gate.answered:
                raise
            # The app failed on the body it was refused (a "client disconnect"): the client
            # has its answer already.
            log.debug("after a refused body", exc_info=True)
