"""`riskgrid serve` at the door, as a real server: slow clients, header and body limits,
X-Forwarded-For from the trusted proxy only, and a SIGKILL of the supervisor."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from geo.settings import get_settings
from riskgrid.cli import app
from tests.servers import (
    MB,
    STARTUP_S,
    answers,
    exchange,
    free_port,
    listening,
    logged_client,
    post,
    serve_env,
    serving,
    start_serve,
    stop_group,
    wait_until,
)

TIMEOUT_S = 1.0  # the server's header and body timeouts here


@pytest.fixture(scope="module")
def door(test_database) -> int:
    settings, _ = test_database
    env = serve_env(
        settings.database_url,
        header_timeout_s=TIMEOUT_S,
        body_timeout_s=TIMEOUT_S,
        trusted_proxies='["127.0.0.1"]',
    )
    with serving(env, "--workers", "1", "--proxy-headers") as port:
        yield port


def test_slow_and_silent_connections_are_cut_after_the_header_timeout(door):
    partial = b"GET /health HTTP/1.1\r\nHost: riskgrid\r\n"  # the blank line never comes
    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(lambda i: exchange(door, partial if i % 2 else b""), range(40)))
    for r in results:  # every one answered 408 and closed, none held for the 15 s we wait
        assert r["status"] == 408 and r["closed"] and "headers" in r["detail"]
        assert TIMEOUT_S * 0.9 <= r["s"] < TIMEOUT_S + 10


def test_a_stalled_body_answers_408_and_is_closed(door):
    r = exchange(door, post("/api/v1/reports", 100, b'{"lon": 125.1'))
    assert r["status"] == 408 and r["closed"] and "did not arrive within 1 s" in r["detail"]
    assert TIMEOUT_S * 0.9 <= r["s"] < TIMEOUT_S + 10


def test_a_declared_200_mb_body_answers_413_without_being_sent(door):
    r = exchange(door, post("/api/v1/reports", 200 * MB))  # only the headers are sent
    assert r["status"] == 413 and r["closed"] and "over 1 MB" in r["detail"]
    batch = exchange(door, post("/api/v1/reports:batch", 9 * MB))
    assert batch["status"] == 413 and "split the batch" in batch["detail"]


def test_a_chunked_body_is_cut_once_it_passes_the_limit(door):
    head = (
        b"POST /api/v1/reports HTTP/1.1\r\nHost: riskgrid\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    # 16 chunks of 64 KiB pass 1 MB; the last chunk and the body's end are never sent.
    r = exchange(door, head + chunk * 16)
    assert r["status"] == 413 and r["closed"] and "over 1 MB" in r["detail"]


def test_oversized_heads_answer_431(door):
    long_line = b"GET /health HTTP/1.1\r\nHost: riskgrid\r\nCookie: " + b"a" * 20_000 + b"\r\n\r\n"
    many = b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150))
    for data, words in ((long_line, "over 16,384 bytes"), (many + b"\r\n", "150 header lines")):
        r = exchange(door, data)
        assert r["status"] == 431 and r["closed"] and words in r["detail"]


def test_a_body_the_app_does_not_read_closes_the_connection(door):
    # /health answers 405 to a POST without reading it: the rest of the body is not awaited.
    r = exchange(door, post("/health", 500_000, b"x" * 1000))
    assert r["status"] == 405 and r["closed"] and r["s"] < 10


def test_kept_alive_connections_still_serve_request_after_request(door):
    with httpx.Client(base_url=f"http://127.0.0.1:{door}") as client:
        answers_ = [client.get("/health") for _ in range(3)]
    assert [a.status_code for a in answers_] == [200, 200, 200]


def _failed_login(port: int, source: str, username: str) -> int:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, base_url=f"http://127.0.0.1:{port}") as client:
        return client.post(
            "/api/v1/auth/token",
            data={"username": username, "password": "not-the-password"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        ).status_code


def test_x_forwarded_for_is_believed_from_the_trusted_proxy_only(door, db):
    # 127.0.0.2 is not the configured proxy: its X-Forwarded-For is a forgery.
    assert _failed_login(door, "127.0.0.2", "forger") == 401
    assert logged_client(db, "forger") == "127.0.0.2"
    assert _failed_login(door, "127.0.0.1", "proxied") == 401
    assert logged_client(db, "proxied") == "203.0.113.9"


@pytest.mark.parametrize(
    ("trusted", "words"),
    [("[]", "needs the proxy's address"), ('["*"]', "not an address or network")],
)
def test_proxy_headers_need_a_trusted_proxy_address(trusted, words, monkeypatch):
    monkeypatch.setenv("RISKGRID_SERVER__TRUSTED_PROXIES", trusted)
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(app, ["serve", "--proxy-headers"])
    finally:
        get_settings.cache_clear()
    assert r.exit_code == 1 and words in r.output


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _running(pid: int) -> bool:
    try:  # a zombie is dead, waiting for whoever adopted it to reap it
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_sigkill_of_serve_leaves_nothing_serving_and_serve_starts_again(test_database):
    env = serve_env(test_database[0].database_url)
    port = free_port()
    first = start_serve(env, port, "--workers", "2")
    again = None
    try:
        wait_until(lambda: answers(port), STARTUP_S, "serve with 2 server processes")
        servers = _children(first.pid)
        os.kill(first.pid, signal.SIGKILL)
        wait_until(lambda: not listening(port), 10, "the port closed after the SIGKILL")
        wait_until(lambda: not any(map(_running, servers)), 10, "the server processes ended")
        again = start_serve(env, port, "--workers", "1")
        wait_until(lambda: answers(port) or again.poll() is not None, STARTUP_S, "serve again")
        assert again.poll() is None, again.stderr.read().decode() if again.stderr else ""
    finally:
        for proc in (first, again):
            if proc is not None:
                stop_group(proc)
