"""Shared bench helpers: a throwaway cluster with the demo loaded, a server, timing."""

from __future__ import annotations

import contextlib
import http.client
import os
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
import numpy as np
import psycopg
import shapely

from geo.db.local_cluster import Cluster

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RISKGRID = str(Path(sys.executable).parent / "riskgrid")

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
        env = {**os.environ, "RISKGRID_CLUSTER__HOME": str(home)}
        env.pop("DATABASE_URL", None)
        b = Bench(home, env, Cluster(home))
        try:
            run([RISKGRID, "db", "up"], env)
            if demo:
                run([RISKGRID, "demo", "--out", str(Path(tmp) / "demo")], env)
            yield b
        finally:
            Cluster(home).down()


@contextlib.contextmanager
def server(b: Bench, workers: int = 1) -> Iterator[int]:
    """Run `riskgrid serve` against the bench database; yield its port."""
    port = free_port()
    proc = subprocess.Popen(
        [RISKGRID, "serve", "--port", str(port), "--workers", str(workers)],
        env=b.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(400):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def admin_token(url: str) -> str:
    """Store a bench administrator (no password) and return a session token of theirs."""
    from sqlalchemy import create_engine, text

    from geo.identity import tokens
    from geo.vocabulary import TokenKind

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        uid = conn.execute(
            text(
                "INSERT INTO users (username, name, role) VALUES ('bench', 'bench', 'admin') "
                "ON CONFLICT (username) DO UPDATE SET role = 'admin' RETURNING id"
            )
        ).scalar_one()
        token = tokens.issue(conn, uid, TokenKind.SESSION, 86_400)
    engine.dispose()
    return token


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
