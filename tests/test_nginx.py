"""deploy/nginx.conf in Debian's nginx, in front of a real `riskgrid serve`: body sizes, slow
clients, the login rate, proxy headers and static files."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from geo.settings import ServerSettings
from tests.servers import (
    MB,
    ROOT,
    SHIPPED_TIMEOUT_S,
    TEST_TIMEOUT_S,
    exchange,
    logged_client,
    nginx_in_front,
    post,
    serve_env,
    serving,
)


@pytest.fixture(scope="module")
def proxy(test_database, tmp_path_factory) -> int:
    env = serve_env(test_database[0].database_url, trusted_proxies='["127.0.0.1"]')
    with (
        serving(env, "--workers", "1", "--proxy-headers") as upstream,
        nginx_in_front(upstream, tmp_path_factory.mktemp("nginx")) as port,
    ):
        yield port


def test_riskgrid_answers_through_nginx(proxy):
    r = httpx.get(f"http://127.0.0.1:{proxy}/health")
    assert r.status_code == 200 and r.headers["x-request-id"]  # riskgrid's, not nginx's


def test_bodies_over_the_route_limit_are_refused_by_nginx(proxy):
    # Headers only: refused at once.
    small = exchange(proxy, post("/api/v1/reports", 2 * MB), until_close=False)
    assert small["status"] == 413 and "split the batch" in small["detail"]
    huge = exchange(proxy, post("/api/v1/reports:batch", 9 * MB), until_close=False)
    assert huge["status"] == 413


def test_a_batch_under_its_limit_reaches_riskgrid(proxy):
    r = httpx.post(
        f"http://127.0.0.1:{proxy}/api/v1/reports:batch",
        content=b"[" + b" " * (2 * MB) + b"]",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 401 and "log in first" in r.json()["detail"]


def test_slow_clients_are_cut_by_nginx_after_its_timeouts(proxy):
    stalled_head = b"GET /health HTTP/1.1\r\nHost: riskgrid\r\n"
    stalled_body = post("/api/v1/reports", 100, b'{"lon": 125.1')
    with ThreadPoolExecutor(2) as pool:
        cuts = list(
            pool.map(lambda data: exchange(proxy, data, wait_s=40), [stalled_head, stalled_body])
        )
    for cut in cuts:  # nginx closes (its 408 goes to the log only)
        assert cut["closed"] and TEST_TIMEOUT_S * 0.9 <= cut["s"] < TEST_TIMEOUT_S + 20
    # As shipped, nginx waits as long as riskgrid itself does for a client's headers.
    assert SHIPPED_TIMEOUT_S == ServerSettings().header_timeout_s


def test_nginx_overwrites_x_forwarded_for_with_the_client_address(proxy, db):
    transport = httpx.HTTPTransport(local_address="127.0.0.3")
    with httpx.Client(transport=transport, base_url=f"http://127.0.0.1:{proxy}") as client:
        r = client.post(
            "/api/v1/auth/token",
            data={"username": "behind-nginx", "password": "not-the-password"},
            headers={"X-Forwarded-For": "198.51.100.1"},
        )
    assert r.status_code == 401
    assert logged_client(db, "behind-nginx") == "127.0.0.3"


def test_logins_past_the_burst_get_429_from_nginx(proxy):
    transport = httpx.HTTPTransport(local_address="127.0.0.4")  # its own rate bucket
    with httpx.Client(transport=transport, base_url=f"http://127.0.0.1:{proxy}") as client:
        codes = [client.get("/api/v1/auth/token").status_code for _ in range(15)]
    # 1 + burst 10 pass (riskgrid answers 405 to a GET); then one per 6 s, the rest 429.
    assert codes[:11] == [405] * 11 and codes.count(429) >= 3


def test_static_files_come_from_disk_with_their_cache_rules(proxy):
    path = "js/session.js"
    hashed = httpx.get(f"http://127.0.0.1:{proxy}/static/{path}?v=abc123")
    assert hashed.status_code == 200 and hashed.content == (ROOT / "web/static" / path).read_bytes()
    assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "x-request-id" not in hashed.headers  # served by nginx, riskgrid never saw it
    plain = httpx.get(f"http://127.0.0.1:{proxy}/static/{path}")
    assert plain.headers["cache-control"] == "no-cache"
