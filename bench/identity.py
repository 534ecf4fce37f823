"""Identity benchmark: what a login and a token cost an intake request.

`python -m bench.identity`. In one run, on the demo database:
- POST /api/v1/reports with a token, the token check cached per process (the default) and
  looked up on every request (`RISKGRID_AUTH__TOKEN_CACHE_S=0`); the difference is what the
  look-up costs, given as a share of the cached intake request;
- GET /api/v1/auth/me, the same two ways (a request that is nothing but the token check);
- POST /api/v1/auth/token (argon2id verification), against argon2 verifying alone.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import psycopg

from bench.assignment import sample_points
from bench.common import RESULTS, Bench, bench_database, ms, server
from geo.identity import tokens
from geo.identity.passwords import hash_password, verify_password
from geo.identity.principal import SYSTEM
from geo.identity.users import NewUser, add_user
from geo.vocabulary import Role, TokenKind

PASSWORD = "bench: a long enough passphrase"  # noqa: S105 - a throwaway bench user


def _engine(b: Bench):
    from geo.db.engine import make_engine
    from geo.settings import Settings

    return make_engine(Settings(database_url=b.cluster.url()))


def _in_process(b: Bench, token: str, n: int = 2000) -> dict:
    """Time the token check itself: the prepared look-up, and the per-process cache."""
    engine = _engine(b)
    looked, hit = [], []
    with engine.connect() as conn:
        for _ in range(n):
            t0 = time.perf_counter()
            tokens.authenticate(conn, token)
            looked.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            tokens.cached(token, 2.0)
            hit.append(time.perf_counter() - t0)
    engine.dispose()
    return {"lookup": looked, "cached": hit}


def _users(b: Bench) -> str:
    """Add a worker with a password and return a session token of another worker."""
    engine = _engine(b)
    with engine.begin() as conn:
        grid = conn.exec_driver_sql(
            "SELECT code FROM grids WHERE kind = 'comprehensive' ORDER BY code LIMIT 1"
        ).scalar_one()
        add_user(
            conn,
            SYSTEM,
            NewUser("bench-login", Role.WORKER, grids=(grid,), password=PASSWORD),
            departments=(),
            min_length=10,
        )
        added = add_user(conn, SYSTEM, NewUser("bench-worker", Role.WORKER, grids=(grid,)), (), 10)
        token = tokens.issue(conn, added.id, TokenKind.SESSION, 86_400)
    engine.dispose()
    return token


@contextmanager
def _server(b: Bench, cache_s: float) -> Iterator[int]:
    env = {**b.env, "RISKGRID_AUTH__TOKEN_CACHE_S": str(cache_s)}
    with server(replace(b, env=env)) as port:
        yield port


def _time(port: int, method: str, path: str, bodies: list, headers: dict, ok: int) -> list:
    c = http.client.HTTPConnection("127.0.0.1", port)
    out = []
    for i, body in enumerate(bodies):
        t0 = time.perf_counter()
        c.request(method, path, body, headers)
        r = c.getresponse()
        r.read()
        if r.status != ok:
            raise RuntimeError(f"{method} {path} answered {r.status}")
        if i >= len(bodies) // 5:  # the first fifth warms up
            out.append(time.perf_counter() - t0)
    return out


def _intake(port: int, pts: np.ndarray, token: str) -> dict:
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    bodies = [
        json.dumps({"lon": lon, "lat": lat, "theme": "fire", "category": "electrical"})
        for lon, lat in pts
    ]
    post = _time(port, "POST", "/api/v1/reports", bodies, headers, 201)
    me = _time(port, "GET", "/api/v1/auth/me", [None] * 1500, headers, 200)
    return {"post": post, "me": me}


def _login(port: int, n: int = 40) -> list:
    form = urllib.parse.urlencode({"username": "bench-login", "password": PASSWORD})
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return _time(port, "POST", "/api/v1/auth/token", [form] * n, headers, 200)


def main() -> dict:
    with bench_database() as b:
        token = _users(b)
        with psycopg.connect(**b.dsn()) as conn:
            pts = sample_points(conn, 4000)
        with _server(b, 2.0) as port:
            cached = _intake(port, pts[:2000], token)
            login = _login(port)
        with _server(b, 0.0) as port:
            looked_up = _intake(port, pts[2000:], token)
        check = _in_process(b, token)
    stored = hash_password(PASSWORD)
    argon = []
    for _ in range(40):
        t0 = time.perf_counter()
        verify_password(stored, PASSWORD)
        argon.append(time.perf_counter() - t0)
    post_c, post_l = statistics.median(cached["post"]), statistics.median(looked_up["post"])
    out = {
        "intake_cached_p50_ms": ms(cached["post"], 50),
        "intake_cached_p99_ms": ms(cached["post"], 99),
        "intake_lookup_p50_ms": ms(looked_up["post"], 50),
        "token_lookup_share_of_intake": (post_l - post_c) / post_c,
        "check_lookup_p50_us": ms(check["lookup"], 50) * 1000,
        "check_cached_p50_us": ms(check["cached"], 50) * 1000,
        "cached_check_share_of_intake": statistics.median(check["cached"]) / post_c,
        "me_cached_p50_ms": ms(cached["me"], 50),
        "me_lookup_p50_ms": ms(looked_up["me"], 50),
        "login_p50_ms": ms(login, 50),
        "login_p99_ms": ms(login, 99),
        "argon2_verify_p50_ms": ms(argon, 50),
        "ratio_login_to_argon2": statistics.median(login) / statistics.median(argon),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "identity.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def _print(r: dict) -> None:
    print(
        f"POST /reports with a token: p50 {r['intake_cached_p50_ms']:.2f} ms "
        f"(p99 {r['intake_cached_p99_ms']:.2f}); token looked up every request: p50 "
        f"{r['intake_lookup_p50_ms']:.2f} ms -> look-up = "
        f"{100 * r['token_lookup_share_of_intake']:.1f} % of an intake request"
    )
    print(
        f"token check in process: look-up p50 {r['check_lookup_p50_us']:.0f} us, cached p50 "
        f"{r['check_cached_p50_us']:.1f} us -> {100 * r['cached_check_share_of_intake']:.2f} % "
        "of an intake request"
    )
    print(
        f"GET /auth/me: p50 {r['me_cached_p50_ms']:.2f} ms cached, "
        f"{r['me_lookup_p50_ms']:.2f} ms looked up"
    )
    print(
        f"POST /auth/token (argon2id): p50 {r['login_p50_ms']:.0f} ms, p99 "
        f"{r['login_p99_ms']:.0f} ms; argon2 verify alone p50 {r['argon2_verify_p50_ms']:.0f} ms "
        f"-> {r['ratio_login_to_argon2']:.2f}x"
    )


if __name__ == "__main__":
    _print(main())
