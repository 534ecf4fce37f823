"""Admission control: a server process runs a bounded number of requests and sheds the rest.

Without it, a burst deadlocked the process: FastAPI takes a request's connection in one thread
hop (the `get_conn` dependency) and runs the endpoint in another, so with every request thread
waiting for a connection held by requests that waited for a thread, 40 concurrent clients got
nothing for 35 s. Now at most `slots` requests run at once, each using one request thread at a
time and at most two pooled connections; the threads and the pool are sized above that
(`thread_tokens`, and Settings' check of the pool), so an admitted request never waits for
either. Up to `server.max_queue` more wait at most `server.queue_timeout_s` for a slot; any
others answer 503 with Retry-After at once.

`/health` has slots of its own, so it answers during a burst; `/static` (files, no database)
is not counted.
"""

from __future__ import annotations

import math

import anyio
import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from geo.settings import Settings

HEALTH_SLOTS = 2
_UNCOUNTED = ("/static/",)


def slots(settings: Settings) -> int:
    """Return how many requests a server process runs at once: one per pooled connection."""
    return settings.db.pool_size


def thread_tokens(settings: Settings) -> int:
    """Return the request threads a process needs: one per slot, /health's included."""
    return slots(settings) + HEALTH_SLOTS


class Admission:
    """Pure ASGI middleware: run, queue briefly, or answer 503 with Retry-After."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.slots = slots(settings)
        self.max_queue = settings.server.max_queue
        self.queue_timeout_s = settings.server.queue_timeout_s
        self.retry_after = str(max(1, math.ceil(self.queue_timeout_s)))
        self.waiting = 0
        # Made on first use: they belong to the event loop that serves.
        self._work: anyio.Semaphore | None = None
        self._health: anyio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(_UNCOUNTED):
            await self.app(scope, receive, send)
            return
        if self._work is None or self._health is None:
            self._work = anyio.Semaphore(self.slots)
            self._health = anyio.Semaphore(HEALTH_SLOTS)
        gate = self._health if path == "/health" else self._work
        try:
            gate.acquire_nowait()
        except anyio.WouldBlock:
            if gate is self._health or self.waiting >= self.max_queue:
                await self._shed(send, "busy")
                return
            self.waiting += 1
            try:
                with anyio.move_on_after(self.queue_timeout_s) as waited:
                    await gate.acquire()
            finally:
                self.waiting -= 1
            if waited.cancelled_caught:
                await self._shed(send, "still busy after waiting")
                return
        try:
            await self.app(scope, receive, send)
        finally:
            gate.release()

    async def _shed(self, send: Send, why: str) -> None:
        detail = (
            f"the server is {why}: {self.slots} requests are running and {self.waiting} "
            f"waiting; try again in {self.retry_after} s"
        )
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", self.retry_after.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps({"detail": detail})})
