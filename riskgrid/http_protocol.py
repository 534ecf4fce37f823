"""The HTTP protocol of `riskgrid serve`: uvicorn's httptools protocol with a bounded head.

Plain uvicorn waits for ever for a request's headers (500 connections sending theirs a byte
at a time were all held for 30 s), keeps any number of header bytes in memory, and after an
answer goes on reading a body the app did not want. Here the request line and headers must
arrive within `header_timeout_s` (else 408), stay under `max_header_bytes` and `max_headers`
(else 431), and a connection whose body was not read whole is closed after the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from geo.settings import ServerSettings


class HeadRefused(Exception):
    """A request head over its limits; carries the answer's status and detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class BoundedHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a deadline, a size and a count limit on each request head."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.door: ServerSettings = config.door  # type: ignore[attr-defined]  # ServeConfig
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = True  # between a request's first byte (or the connection) and its headers
        self._raw_head = 0  # bytes received while in the head, parsed or not
        self._head_size = 0
        self._header_count = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # a connection that sends nothing is cut too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._raw_head += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            # httptools wraps what a callback raises; ours says why the head is refused.
            if isinstance(exc.__context__, HeadRefused):
                self._refuse(exc.__context__)
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        # httptools buffers a header until its end: bound what a head may hold unparsed.
        if self._in_head and self._raw_head > self.door.max_header_bytes:
            self._refuse(self._too_large())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_size = self._header_count = 0
        self._arm_head_timer()  # on a kept-alive connection: from the request's first byte

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4  # ": " and the line end
        self._header_count += 1
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        self._in_head, self._raw_head = False, 0
        if self._head_size > self.door.max_header_bytes:
            raise self._too_large()
        if self._header_count > self.door.max_headers:
            raise HeadRefused(
                431, f"the request has {self._header_count} header lines, more than the "
                f"{self.door.max_headers} allowed: send fewer",
            )  # fmt: skip
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._raw_head = True, 0  # what comes next is the next request's head

    def on_response_complete(self) -> None:
        # The app answered (a 401, 413, 429) without the whole body: reading on would let a
        # huge or slow body hold the connection, so close it instead.
        if not self.pipeline and self.cycle is not None and self.cycle.more_body:
            self.transport.close()
        super().on_response_complete()

    def _too_large(self) -> HeadRefused:
        return HeadRefused(
            431, f"the request line and headers are over {self.door.max_header_bytes:,} "
            "bytes: send shorter headers (cookies) or a shorter address",
        )  # fmt: skip

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self.door.header_timeout_s, self._head_timed_out
            )

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        seconds = f"{self.door.header_timeout_s:g}"
        self._refuse(HeadRefused(408, f"the request headers took over {seconds} s: send again"))

    def _refuse(self, refusal: HeadRefused) -> None:
        """Answer a head refused before any app saw it, and close the connection."""
        self._disarm_head_timer()
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head refused while the answer before it is being written: an answer
            # of ours would land inside that one.
            self.transport.close()
            return
        body = orjson.dumps({"detail": refusal.detail})
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[refusal.status],
                    *(n + b": " + v + b"\r\n" for n, v in self.server_state.default_headers),
                    b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()
