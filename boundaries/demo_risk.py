"""Illustrative flood layers and vulnerable households for the Daqing demo.

The layers are placed where the real features are but drawn by rule, not surveyed:

- 嫩江 (Nen River) runs along the western edge of 杜尔伯特 and 肇源, where the county border
  follows it; 松花江 (Songhua) along 肇源's southern edge. Both are taken from the real division
  outlines. Flood zones are bands inland from them: high within 1.5 km, medium to 4 km, low
  to 8 km.
- 龙凤湿地 (Longfeng wetland, about 50 km²) in 龙凤区 as low-lying land; 红旗泡水库 north of
  让胡路, 大庆水库 in 红岗, 连环湖 (Lianhuan lakes) in 杜尔伯特 as reservoirs, at their real
  positions with simplified shapes; and a few low-lying urban patches.

Households echo 创安二号 (560,000 residents over 60 city-wide) at one in ten: about 40,000
households with 56,000 residents over 60, spread by grid population. Names and phone numbers
are synthetic. Everything is seeded and loads through the same paths as `riskgrid layers
import` (files written to the demo folder) and the household bulk loader.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point
from sqlalchemy import Engine, text

from boundaries.daqing import URBAN
from boundaries.risk_import import LayerOptions, import_layer
from geo.risk import households

SEED = 20230420  # 创安一号's start date
UTM = 32651  # Daqing lies in UTM zone 51N
OVER_60_CITY = 560_000
SCALE = 10  # one demo household stands for ten
NEN_BANDS_M = ((1500.0, 3), (4000.0, 2), (8000.0, 1))
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "秀英桂兰凤芝玉珍淑华建国志强德明永福海军文斌春梅丽娟秀云国庆振华金山宝林"


def _to_m(geom: shapely.Geometry) -> shapely.Geometry:
    return gpd.GeoSeries([geom], crs=4326).to_crs(UTM).iloc[0]


def _to_deg(geom: shapely.Geometry) -> shapely.Geometry:
    return gpd.GeoSeries([geom], crs=UTM).to_crs(4326).iloc[0]


def _edge(division: shapely.Geometry, city: shapely.Geometry, keep: Callable) -> shapely.Geometry:
    """Return the part of the city's outer edge that bounds `division` where `keep(x, y)`."""
    shared = shapely.intersection(division.boundary, city.exterior)
    segs = []
    for line in shapely.get_parts(shapely.line_merge(shared)):
        xy = shapely.get_coordinates(line)
        for a, b in itertools.pairwise(xy):
            mid = (a + b) / 2
            if keep(*mid):
                segs.append(shapely.LineString([a, b]))
    return shapely.line_merge(shapely.union_all(segs)).simplify(0.002)


def _blob(lon: float, lat: float, rx: float, ry: float, angle: float, seed: int) -> shapely.Polygon:
    """Return an irregular oval (radii in metres) around a WGS-84 point."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    wobble = 1 + 0.12 * np.sin(3 * t + rng.uniform(0, 6)) + 0.06 * np.sin(5 * t + rng.uniform(0, 6))
    x, y = rx * wobble * np.cos(t), ry * wobble * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    centre = _to_m(Point(lon, lat))
    ring = np.column_stack([centre.x + c * x - s * y, centre.y + s * x + c * y])
    return _to_deg(shapely.Polygon(ring))


def layers(divisions: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    """Return the demo risk layers per kind (WGS-84) drawn from the county `divisions`."""
    div = divisions.set_index("code")
    city = shapely.union_all(div.geometry.values)
    city = max(shapely.get_parts(city), key=lambda p: p.area)
    dorbod, zhaoyuan = div.geometry["230624"], div.geometry["230622"]
    nen = shapely.union_all(
        [
            _edge(dorbod, city, lambda x, y: x < 124.25),
            _edge(zhaoyuan, city, lambda x, y: x < 124.45),
        ]
    )
    songhua = _edge(zhaoyuan, city, lambda x, y: x >= 124.45 and y < 45.62)
    rivers = gpd.GeoDataFrame(
        {"code": ["nen", "songhua"], "name": ["嫩江", "松花江"]},
        geometry=[shapely.line_merge(nen), songhua],
        crs=4326,
    )
    city_m = _to_m(city)
    water_m = _to_m(shapely.union_all([nen, songhua]))
    zones, inner = [], None
    for width, level in NEN_BANDS_M:
        band = shapely.intersection(water_m.buffer(width), city_m)
        ring = band if inner is None else band.difference(inner)
        zones.append(
            {
                "code": f"nen-songhua-{level}",
                "name": f"嫩江-松花江沿岸{['', '低', '中', '高'][level]}风险区",
                "level": level,
                "return_period": {3: 10, 2: 20, 1: 50}[level],
                "geometry": _to_deg(ring),
            }
        )
        inner = band
    flood = gpd.GeoDataFrame(zones, crs=4326)
    reservoirs = gpd.GeoDataFrame(
        [
            {"code": "hongqipao", "name": "红旗泡水库",
             "geometry": _blob(124.885, 46.785, 4200, 2600, 0.5, 1)},
            {"code": "daqing", "name": "大庆水库",
             "geometry": _blob(124.97, 46.33, 3000, 2000, -0.3, 2)},
            {"code": "lianhuan", "name": "连环湖",
             "geometry": _blob(124.15, 46.62, 7000, 3500, 1.1, 3)},
        ],
        crs=4326,
    )  # fmt: skip
    low = [
        {"code": "longfeng-wetland", "name": "龙凤湿地", "level": 2,
         "geometry": _blob(125.14, 46.555, 4500, 3500, 0.2, 4)},
    ]  # fmt: skip
    # Low-lying urban patches where streets flood after heavy rain.
    for i, (lon, lat, level) in enumerate(
        [(125.02, 46.60, 3), (124.86, 46.64, 2), (125.06, 46.52, 3), (124.95, 46.42, 1)]
    ):
        low.append(
            {
                "code": f"urban-low-{i + 1}",
                "name": f"城区低洼易涝点{i + 1}",
                "level": level,
                "geometry": _blob(lon, lat, 900, 600, i * 0.7, 10 + i),
            }
        )
    low_lying = gpd.GeoDataFrame(low, crs=4326)
    # Keep every shape inside the city.
    for frame in (reservoirs, low_lying):
        frame["geometry"] = frame.geometry.intersection(city)
    return {"river": rivers, "flood_zone": flood, "reservoir": reservoirs, "low_lying": low_lying}


def write_layers(out_dir: Path, divisions: gpd.GeoDataFrame) -> dict[str, Path]:
    """Write the demo layers as GeoJSON files, one per kind; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, frame in layers(divisions).items():
        path = out_dir / f"daqing_{kind}.geojson"
        frame.to_file(path, driver="GeoJSON", engine="pyogrio")
        paths[kind] = path
    return paths


def _points_in(geom: shapely.Geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    minx, miny, maxx, maxy = geom.bounds
    out = np.empty((0, 2))
    while len(out) < n:
        cand = np.column_stack(
            [rng.uniform(minx, maxx, 3 * n + 8), rng.uniform(miny, maxy, 3 * n + 8)]
        )
        out = np.vstack([out, cand[shapely.contains_xy(geom, cand[:, 0], cand[:, 1])]])
    return out[:n]


def generate_households(engine: Engine, seed: int = SEED) -> pd.DataFrame:
    """Return the demo households (WGS-84), spread over the grids by population."""
    rng = np.random.default_rng(seed)
    with engine.connect() as conn:
        grids = conn.execute(
            text(
                "SELECT g.code, g.name, g.district_code, COALESCE(g.population, 0) AS population, "
                "ST_AsBinary(g.geom) AS wkb, COALESCE(c.name, g.name) AS community "
                "FROM grids g LEFT JOIN areas c ON c.code = g.community_code "
                "WHERE g.kind = 'comprehensive' ORDER BY g.code"
            )
        ).all()
    # Kinds of household: (share, members range, over-60 rule, living alone).
    kinds = ["alone", "couple", "family", "disabled"]
    share = np.array([0.22, 0.33, 0.35, 0.10])
    per_over_60 = share @ np.array([1.0, 2.0, 1.5, 0.0])
    n = round(OVER_60_CITY / SCALE / per_over_60)
    pop = np.array([g.population for g in grids], dtype=float)
    counts = rng.multinomial(n, pop / pop.sum())
    kind = rng.choice(kinds, n, p=share)
    members = np.select(
        [kind == "alone", kind == "couple", kind == "family"],
        [1, 2, rng.integers(3, 6, n)],
        rng.integers(2, 5, n),
    )
    over_60 = np.select(
        [kind == "alone", kind == "couple", kind == "family"],
        [1, 2, rng.integers(1, 3, n)],
        0,
    )
    elderly = over_60 > 0
    oldest = np.where(
        elderly,
        np.minimum(60 + rng.gamma(2.0, 6.0, n), 101).astype(int),
        rng.integers(30, 60, n),
    )
    mobility = np.where(kind == "disabled", True, rng.random(n) < 0.12 * (oldest - 55) / 20)
    lonlat = np.vstack(
        [
            _points_in(shapely.from_wkb(bytes(g.wkb)), int(k), rng)
            for g, k in zip(grids, counts, strict=True)
            if k
        ]
    )
    grid_of = np.repeat(np.arange(len(grids)), counts)
    names = [
        SURNAMES[rng.integers(len(SURNAMES))]
        + GIVEN[rng.integers(len(GIVEN))]
        + (GIVEN[rng.integers(len(GIVEN))] if rng.random() < 0.7 else "")
        for _ in range(n)
    ]
    ids = [uuid.UUID(bytes=rng.bytes(16), version=4) for _ in range(n)]
    return pd.DataFrame(
        {
            "id": [str(i) for i in ids],
            "code": [f"HH{grids[g].code}-{k:04d}" for k, g in enumerate(grid_of)],
            "head_name": names,
            # 1380000xxxx-style numbers: well-formed, obviously made up.
            "phone": [f"1380000{rng.integers(10_000):04d}" for _ in range(n)],
            "address": [
                f"{grids[g].community}{rng.integers(1, 40)}号楼{rng.integers(1, 7)}单元"
                f"{rng.integers(1, 7)}0{rng.integers(1, 5)}"
                if grids[g].district_code in URBAN
                else f"{grids[g].community}{rng.integers(1, 300)}号"
                for g in grid_of
            ],
            "members": members,
            "over_60": over_60,
            "oldest_age": oldest,
            "living_alone": kind == "alone",
            "mobility_needs": mobility,
            "contact_worker": [f"{grids[g].name}网格员" for g in grid_of],
            "lon": np.round(lonlat[:, 0], 7),
            "lat": np.round(lonlat[:, 1], 7),
        }
    )


def load_demo_risk(
    engine: Engine,
    out_dir: Path,
    divisions: gpd.GeoDataFrame,
    snap_m: float,
    echo: Callable[[str], None] = print,
) -> dict:
    """Import the demo layers (as files, like `riskgrid layers import`) and the households.

    `divisions` are the county outlines the demo grids were cut from (`demo.load_divisions`),
    handed in so that this module does not import the demo that imports it.
    """
    summary: dict = {"layers": {}}
    for kind, path in write_layers(out_dir, divisions).items():
        outcome = import_layer(engine, path, LayerOptions(kind=kind, prune=True))
        s = outcome.stored
        assert s is not None  # noqa: S101 - import_layer stores or raises
        summary["layers"][kind] = {"added": s.added, "changed": s.changed, "parts": s.parts}
        echo(f"{kind}: {s.added} added, {s.changed} changed, {s.unchanged} unchanged")
    frame = generate_households(engine)
    with engine.begin() as conn:
        # The demo owns its households: drop those an older generator made.
        conn.execute(
            text("DELETE FROM households WHERE code LIKE 'HH%' AND NOT (code = ANY(:codes))"),
            {"codes": list(frame["code"])},
        )
        stored = households.load(conn, frame, snap_m)
    echo(
        f"households: {stored['received']} ({stored['stored']} added or changed; "
        f"{int(frame['over_60'].sum())} residents over 60, one in {SCALE} of 创安二号's "
        f"{OVER_60_CITY:,})"
    )
    summary["households"] = stored
    return summary
