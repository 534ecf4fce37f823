"""The body limit at the door, driven with ASGI messages (the real server: tests/test_serve.py)."""

import json
import time

import anyio
import pytest

from api.body_limit import BodyLimit, limit_for
from geo.settings import ServerSettings, Settings

SETTINGS = Settings(
    server=ServerSettings(max_body_bytes=2048, max_batch_body_bytes=4096, body_timeout_s=0.3)
)


async def reading_app(scope, receive, send):
    """Read the whole body, then answer its length."""
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def run(path, chunks, headers=(), stall_after=None):
    """Send `chunks` of a body to `path`; return the answers and how many chunks were pulled."""
    sent, pulled = [], 0

    async def receive():
        nonlocal pulled
        if pulled == stall_after:
            await anyio.sleep(30)
        pulled += 1
        return {
            "type": "http.request",
            "body": chunks[pulled - 1],
            "more_body": pulled < len(chunks),
        }

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": list(headers)}
    anyio.run(BodyLimit(reading_app, settings=SETTINGS), scope, receive, send)
    return sent, pulled


def answer(sent):
    headers = dict(sent[0]["headers"])
    return sent[0]["status"], json.loads(sent[1]["body"])["detail"], headers


@pytest.mark.parametrize(
    ("path", "size"),
    [
        ("/api/v1/reports:batch", 8_000_000),
        ("/api/v1/reports/42/photos", 20_000_000),
        ("/api/v1/reports", 1_000_000),
        ("/api/v1/risk/query", 1_000_000),
    ],
)
def test_each_route_has_its_limit(path, size):
    assert limit_for(path, ServerSettings()).size == size


def test_a_declared_length_over_the_limit_answers_413_before_reading():
    sent, pulled = run("/api/v1/reports:batch", [b"x"], [(b"content-length", b"5000")])
    status, detail, headers = answer(sent)
    assert status == 413 and pulled == 0
    assert "4,096 bytes" in detail and "split the batch" in detail
    assert headers[b"connection"] == b"close"


def test_a_streamed_body_is_cut_when_it_passes_the_limit():
    sent, pulled = run("/api/v1/reports", [b"x" * 1000] * 10)
    status, detail, _ = answer(sent)
    assert status == 413 and "2,048 bytes" in detail
    assert pulled == 3  # the chunk that passed the limit was the last one read
    assert len(sent) == 2  # the app, told the client left, answered nothing more


def test_a_body_within_the_limit_reaches_the_app_whole():
    sent, _ = run("/api/v1/reports:batch", [b"x" * 1000] * 4, [(b"content-length", b"4000")])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"4000"


def test_a_stalled_body_answers_408_after_the_timeout():
    t0 = time.monotonic()
    sent, pulled = run("/api/v1/reports", [b"x" * 100] * 3, stall_after=1)
    elapsed = time.monotonic() - t0
    status, detail, headers = answer(sent)
    assert status == 408 and "0.3 s" in detail and headers[b"connection"] == b"close"
    assert pulled == 1 and 0.25 <= elapsed < 10  # cut after the timeout, not the 30 s stall
