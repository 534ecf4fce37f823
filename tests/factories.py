"""Builders for test boundary data: square grids laid out in metres near Daqing."""

from __future__ import annotations

import contextlib
import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import shapely
from pyproj import Transformer

ORIGIN = (125.00, 46.60)  # lon, lat in 萨尔图区
UTM = 32651
_to_utm = Transformer.from_crs(4326, UTM, always_xy=True)
_to_ll = Transformer.from_crs(UTM, 4326, always_xy=True)


def square_m(x0: float, y0: float, size: float) -> shapely.Polygon:
    """Return a WGS-84 square whose south-west corner is (x0, y0) metres from ORIGIN."""
    ox, oy = _to_utm.transform(*ORIGIN)
    box = shapely.box(ox + x0, oy + y0, ox + x0 + size, oy + y0 + size)
    return shapely.transform(box, lambda xy: _ll(xy))


def _ll(xy):
    import numpy as np

    lon, lat = _to_ll.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def point_m(x: float, y: float) -> tuple[float, float]:
    """Return the WGS-84 (lon, lat) of a point (x, y) metres from ORIGIN."""
    ox, oy = _to_utm.transform(*ORIGIN)
    return _to_ll.transform(ox + x, oy + y)


def grid_frame(rows: list[dict], crs: int = 4326) -> gpd.GeoDataFrame:
    """Return a GeoDataFrame of grid rows ({code, name, kind?, geometry, ...})."""
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326).to_crs(crs)


def tiled(n: int = 3, size: float = 500.0, prefix: str = "230602001001") -> list[dict]:
    """Return n×n comprehensive grids tiling a square, codes prefix+001…, community = prefix."""
    rows = []
    k = 0
    for j in range(n):
        for i in range(n):
            k += 1
            rows.append(
                {
                    "code": f"{prefix}{k:03d}",
                    "name": f"测试网格{k}",
                    "kind": "comprehensive",
                    "community_code": prefix,
                    "geometry": square_m(i * size, j * size, size),
                }
            )
    return rows


def write(frame: gpd.GeoDataFrame, path: Path, **kwargs) -> Path:
    """Write `frame` with pyogrio, the driver chosen from the suffix."""
    drivers = {
        ".geojson": "GeoJSON",
        ".gpkg": "GPKG",
        ".shp": "ESRI Shapefile",
        ".fgb": "FlatGeobuf",
    }
    with warnings.catch_warnings():
        # Shapefiles cut column names to 10 characters; the reader knows the cut names.
        warnings.simplefilter("ignore")
        frame.to_file(path, driver=drivers[path.suffix], engine="pyogrio", **kwargs)
    return path


BLOCK_N = 10  # the hotspot block: 10 x 10 grids of 500 m
BLOCK_SIZE = 500.0


def block_code(i: int, j: int) -> str:
    """Return the code of grid (col i, row j) of the hotspot block."""
    return f"230602001001{j * BLOCK_N + i + 1:03d}"


def put_points(db, xy, theme="fire", category="electrical", reported_at=None) -> None:
    """Load one report at each (x, y) metres from ORIGIN."""
    import uuid

    import pandas as pd

    from geo.reports.bulk import load
    from geo.settings import ReportSettings

    pts = [point_m(x, y) for x, y in xy]
    frame = pd.DataFrame(
        {
            "id": [str(uuid.uuid4()) for _ in pts],
            "lon": [p[0] for p in pts],
            "lat": [p[1] for p in pts],
            "theme": theme,
            "category": category,
            "reported_at": reported_at if reported_at is not None else pd.Timestamp.now(tz="UTC"),
            "reporter": "t",
        }
    )
    with db.begin() as conn:
        load(conn, frame, ReportSettings())


def put_reports(db, cells: dict[tuple[int, int], int], rng, theme="flood", category="waterlogging"):
    """Load `count` reports at random spots inside each (col, row) grid of the block."""
    xy = [
        ((i + rng.uniform(0.1, 0.9)) * BLOCK_SIZE, (j + rng.uniform(0.1, 0.9)) * BLOCK_SIZE)
        for (i, j), n in cells.items()
        for _ in range(n)
    ]
    put_points(db, xy, theme, category)


def login_as(
    engine,
    role: str,
    username: str | None = None,
    grids: tuple[str, ...] = (),
    districts: tuple[str, ...] = (),
    department: str | None = None,
    ttl_s: float = 3600.0,
) -> str:
    """Store a user with `role` and scope (no password: fast) and return a session token."""
    from sqlalchemy import text

    from geo.identity import tokens
    from geo.vocabulary import TokenKind

    name = username or f"{role}-{next(_users)}"
    with engine.begin() as conn:
        uid = conn.execute(
            text(
                "INSERT INTO users (username, name, role, department) VALUES (:u, :u, :r, :d) "
                "ON CONFLICT (username) DO UPDATE SET role = EXCLUDED.role RETURNING id"
            ),
            {"u": name, "r": role, "d": department},
        ).scalar_one()
        for code in grids:
            conn.execute(
                text("INSERT INTO user_grids VALUES (:i, :c) ON CONFLICT DO NOTHING"),
                {"i": uid, "c": code},
            )
        for code in districts:
            conn.execute(
                text("INSERT INTO user_districts VALUES (:i, :c) ON CONFLICT DO NOTHING"),
                {"i": uid, "c": code},
            )
        return tokens.issue(conn, uid, TokenKind.SESSION, ttl_s)


_users = itertools.count(1)


@contextlib.contextmanager
def clients_for(app, tokens: dict[str, str]) -> Iterator[dict]:
    """Yield a started API client per person of `tokens`, each sending their bearer token."""
    from fastapi.testclient import TestClient

    with contextlib.ExitStack() as stack:
        yield {
            who: stack.enter_context(TestClient(app, headers={"Authorization": f"Bearer {t}"}))
            for who, t in tokens.items()
        }


def truncate(conn, tables) -> None:
    """Empty `tables`: the audit log refuses TRUNCATE by trigger, so triggers are switched off
    for this transaction (the test server's superuser may)."""
    from sqlalchemy import text

    conn.execute(text("SET LOCAL session_replication_role = replica"))
    conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


def after_photo(engine, report_id) -> None:
    """Record an `after` photo of a report (its row only: what the resolve check reads)."""
    import hashlib
    import uuid

    from sqlalchemy import text

    digest = hashlib.sha256(f"after-{report_id}-{uuid.uuid4()}".encode()).hexdigest()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO report_photos (id, report_id, kind, sha256, upload_sha256, "
                "thumb_sha256, phash, content_type, bytes, width, height) VALUES (:id, :r, "
                "'after', :d, :d, :d, '0000000000000000', 'image/jpeg', 1, 1, 1)"
            ),
            {"id": uuid.uuid4(), "r": report_id, "d": digest},
        )


def at_once(fn, args, catch: tuple[type[BaseException], ...] = ()) -> list:
    """Run fn(arg) for every arg in its own thread, all released together by a barrier;
    return the results in the order of `args` (an exception of `catch` as the result)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    args = list(args)
    gate = threading.Barrier(len(args))

    def run(arg):
        gate.wait()
        try:
            return fn(arg)
        except catch as exc:
            return exc

    with ThreadPoolExecutor(len(args)) as pool:
        return list(pool.map(run, args))
