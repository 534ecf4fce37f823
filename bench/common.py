"""Shared bench helpers: a throwaway cluster with the demo loaded, a server, timing."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import httptools
import numpy as np
import psycopg
import shapely

from geo.db.local_cluster import Cluster

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RISKGRID = str(Path(sys.executable).parent / "riskgrid")
# Benches measure the service, not the rate limiter (thousands of requests a second).
UNLIMITED = {"RISKGRID_RATES__ENABLED": "false"}

# A new flood report in a random comprehensive grid: every count-based result is stale.
NEW_REPORT = """
    INSERT INTO reports (id, theme, category, severity, status, geom, source_crs,
                         assignment_method, reported_at, grid_code)
    SELECT %s, 'flood', 'waterlogging', 2, 'reported', ST_PointOnSurface(geom), 'wgs84',
           'inside', now(), code
    FROM grids WHERE kind = 'comprehensive' ORDER BY random() LIMIT 1"""


def free_port() -> int:
    """Return a free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ms(samples: list[float], q: float) -> float:
    """Return the q-th percentile of samples (seconds) in milliseconds."""
    return float(np.percentile(np.asarray(samples) * 1000.0, q))


def run(cmd: list[str], env: dict) -> float:
    """Run a command, return its wall time in seconds."""
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


@dataclass
class Bench:
    """A throwaway riskgrid database (its own cluster) and the environment pointing at it."""

    home: Path
    env: dict
    cluster: Cluster

    def token(self) -> str:
        """Return an administrator's session token for the bench database (made once)."""
        if not hasattr(self, "_token"):
            self._token = admin_token(self.cluster.url())
        return self._token

    def dsn(self) -> dict:
        return {
            "host": str(self.cluster.socket_dir),
            "port": self.cluster.port,
            "user": "postgres",
            "password": self.cluster.password(),
            "dbname": "riskgrid",
        }


@contextlib.contextmanager
def bench_database(demo: bool = True) -> Iterator[Bench]:
    """Yield a fresh cluster under a temporary folder (with the demo loaded), removed after."""
    with tempfile.TemporaryDirectory(prefix="riskgrid-bench-", dir="/var/tmp") as tmp:
        home = Path(tmp) / ".riskgrid"
        env = {**os.environ, "RISKGRID_CLUSTER__HOME": str(home), **UNLIMITED}
        env.pop("DATABASE_URL", None)
        b = Bench(home, env, Cluster(home))
        try:
            run([RISKGRID, "db", "up"], env)
            if demo:
                run([RISKGRID, "demo", "--out", str(Path(tmp) / "demo")], env)
            yield b
        finally:
            Cluster(home).down()


def spawn_server(env: dict, port: int, workers: int | None = 1) -> subprocess.Popen:
    """Start `riskgrid serve` (workers None: the settings' default) and wait for /health.

    It runs in its own process group, so that one signal reaches its worker processes and
    their statistics processes too (`kill_server`)."""
    cmd = [RISKGRID, "serve", "--port", str(port)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.05)
    kill_server(proc)
    raise RuntimeError(f"riskgrid serve did not answer /health on port {port} within 60 s")


def kill_server(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to a server's process group (it leads it) and wait for the leader to exit;
    SIGKILL the group if it is still there after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextlib.contextmanager
def server(
    b: Bench, workers: int | None = 1, env: dict | None = None, port: int | None = None
) -> Iterator[int]:
    """Run `riskgrid serve` against the bench database (extra `env` on top); yield its port."""
    port = port or free_port()
    proc = spawn_server({**b.env, **(env or {})}, port, workers)
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            kill_server(proc)


def admin_token(url: str) -> str:
    """Store a bench administrator (no password) and return a session token of theirs."""
    return role_token(url, "bench", "admin")


def role_token(url: str, username: str, role: str, department: str | None = None) -> str:
    """Store a bench user of `role` (no password) and return a session token of theirs."""
    from sqlalchemy import create_engine, text

    from geo.identity import tokens
    from geo.vocabulary import TokenKind

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        uid = conn.execute(
            text(
                "INSERT INTO users (username, name, role, department) VALUES (:u, :u, :r, :d) "
                "ON CONFLICT (username) DO UPDATE SET role = :r, department = :d RETURNING id"
            ),
            {"u": username, "r": role, "d": department},
        ).scalar_one()
        token = tokens.issue(conn, uid, TokenKind.SESSION, 86_400)
    engine.dispose()
    return token


def worker_tokens(url: str, n: int) -> list[tuple[str, str]]:
    """Store n bench grid workers (no password), each bound to its own comprehensive grid, and
    return (session token, grid code) per worker, in grid code order."""
    from sqlalchemy import create_engine, text

    from geo.identity import tokens
    from geo.vocabulary import TokenKind

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    out = []
    with engine.begin() as conn:
        codes = conn.execute(
            text("SELECT code FROM grids WHERE kind = 'comprehensive' ORDER BY code LIMIT :n"),
            {"n": n},
        ).scalars()
        for i, code in enumerate(list(codes)):
            uid = conn.execute(
                text(
                    "INSERT INTO users (username, name, role) VALUES (:u, :u, 'worker') "
                    "ON CONFLICT (username) DO UPDATE SET role = 'worker' RETURNING id"
                ),
                {"u": f"bench-worker-{i:04d}"},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO user_grids (user_id, grid_code) VALUES (:i, :c) "
                    "ON CONFLICT DO NOTHING"
                ),
                {"i": uid, "c": code},
            )
            out.append((tokens.issue(conn, uid, TokenKind.SESSION, 86_400), code))
    engine.dispose()
    if len(out) < n:
        raise RuntimeError(f"the bench database has {len(out)} comprehensive grids, not {n}")
    return out


class _Answer:
    """httptools' callbacks for one response: headers (lower-case names) and body."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to loopback on asyncio streams, answers parsed by
    httptools (llhttp, in C): hundreds of them in one process cost the load generator little."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        """Send one request; return (status, headers, body). Any failure, a cancellation
        (a client timeout) too, drops the connection: the next request opens a new one."""
        try:
            # A keep-alive connection the server closed while idle reads as EOF: open anew.
            if self._reader is None or self._reader.at_eof():
                self.close()
                self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
            assert self._writer is not None
            lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}"
            self._writer.write(f"{head}\r\n{lines}\r\n".encode() + body)
            answer = _Answer()
            parser = httptools.HttpResponseParser(answer)
            while not answer.done:
                data = await self._reader.read(65536)
                if not data:
                    raise ConnectionResetError("the server closed the connection mid-answer")
                parser.feed_data(data)
            if not parser.should_keep_alive():
                self.close()
            return parser.get_status_code(), answer.headers, bytes(answer.body)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Drop the connection at once, unannounced (abort), as a phone losing signal does."""
        if self._writer is not None:
            self._writer.transport.abort()
        self._reader = self._writer = None


def http_get(port: int, path: str, token: str) -> tuple[float, bytes, str]:
    """GET on loopback with a token; return (seconds, body, X-Cache header). Raises unless 200."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.perf_counter()
    c.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    r = c.getresponse()
    body = r.read()
    dt = time.perf_counter() - t0
    if r.status != 200:
        raise RuntimeError(f"{path}: HTTP {r.status}")
    return dt, body, r.getheader("x-cache") or ""


def comprehensive_grids(conn: psycopg.Connection) -> gpd.GeoDataFrame:
    """Return the comprehensive grids (code, geometry) in code order, as riskgrid orders them."""
    rows = conn.execute(
        "SELECT code, ST_AsBinary(geom) FROM grids WHERE kind = 'comprehensive' ORDER BY code"
    ).fetchall()
    return gpd.GeoDataFrame(
        {"code": [r[0] for r in rows]},
        geometry=shapely.from_wkb([bytes(r[1]) for r in rows]),
        crs=4326,
    )


def time_esda_gistar(frame: gpd.GeoDataFrame, y: np.ndarray, n: int = 5) -> tuple[float, list]:
    """The baseline: esda called directly. Return (queen weights s, [G_Local 999 perms s])."""
    from esda import G_Local
    from libpysal.weights import Queen

    t0 = time.perf_counter()
    w = Queen.from_dataframe(frame, use_index=False, silence_warnings=True)
    t_w = time.perf_counter() - t0
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n):
            t0 = time.perf_counter()
            G_Local(y, w, transform="B", star=True, permutations=999, seed=i, n_jobs=1)
            times.append(time.perf_counter() - t0)
    return t_w, times
