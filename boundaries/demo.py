"""The seeded Daqing demo: streets, communities, 4,880 comprehensive and 84 exclusive grids.

Division outlines are real (see boundaries/README.md); everything inside them is generated.
Grid seeds are drawn denser around each division's urban core, so urban grids are small and
rural ones large. Grids are Voronoi cells of those seeds clipped to the division; communities
and streets are unions of whole grids (k-means groups of seeds), so every level tiles the one
above it exactly. The same seed gives the same data, and `load_demo` imports it through the
same path as `riskgrid boundaries import`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.cluster.vq import kmeans2
from scipy.spatial import cKDTree
from sqlalchemy import Connection, Engine, text

from boundaries.daqing import (
    CITY,
    DIVISIONS,
    EXCLUSIVE_KINDS,
    GRID_COUNTS,
    NAMED_COMMUNITIES,
    POPULATION,
    STREETS,
    URBAN,
)
from boundaries.demo_campaigns import campaign_rows, load_demo_campaign_work, today
from boundaries.demo_photos import load_demo_photos
from boundaries.demo_reports import SEED as REPORTS_SEED
from boundaries.demo_reports import assign_handlers, demo_ids, load_demo_reports
from boundaries.demo_risk import load_demo_risk
from boundaries.importer import ImportOptions, import_file
from boundaries.outlines import OUTLINES_PATH
from geo.campaigns.store import upsert_campaigns
from geo.errors import SetupError
from geo.geometry import polygonal
from geo.identity.principal import SYSTEM
from geo.identity.users import NewUser, add_user
from geo.photo_store import PhotoStore
from geo.reports import taxonomy
from geo.settings import AuthSettings, ImportSettings, PhotoSettings, ReportSettings
from geo.vocabulary import Role

SEED = 20230420  # 创安一号's start date
METRIC_CRS = 32651  # UTM 51N: Daqing spans 123.8-125.8°E, inside the zone

# Approximate urban cores (WGS-84); a core outside its division falls back to an inner point.
CORES: dict[str, tuple[float, float]] = {
    "230602": (125.03, 46.61),
    "230603": (125.12, 46.55),
    "230604": (124.87, 46.65),
    "230605": (124.89, 46.41),
    "230606": (124.82, 46.03),
    "230621": (125.27, 45.70),
    "230622": (125.08, 45.52),
    "230623": (124.87, 47.18),
    "230624": (124.44, 46.87),
}

NAME_STEMS = (
    "东风",
    "红旗",
    "胜利",
    "友谊",
    "和平",
    "建设",
    "新华",
    "向阳",
    "团结",
    "光明",
    "幸福",
    "长青",
    "春雷",
    "铁人",
    "石油",
    "奋斗",
    "创业",
    "富强",
    "民主",
    "前进",
    "永安",
    "兴隆",
    "太平",
    "长胜",
    "龙岗",
    "银浪",
    "景园",
    "阳光",
    "康宁",
    "万宝",
    "庆丰",
    "福地",
    "安居",
    "丰收",
    "新兴",
    "振兴",
    "宏伟",
    "青山",
    "绿园",
    "湖滨",
    "黎明",
    "朝阳",
    "东升",
    "西湖",
    "南岗",
    "北苑",
    "中心",
    "育才",
)

EXCLUSIVE_SHAPES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[str, ...]]] = {
    # kind: (half-width range m, half-height range m, name endings)
    "school": ((110, 200), (80, 150), ("实验小学", "中学", "第二小学", "职业技术学校")),
    "hospital": ((100, 170), (80, 130), ("人民医院", "中医院", "妇幼保健院", "社区卫生服务中心")),
    "oilfield": ((300, 700), (300, 700), ("采油作业区", "联合站", "注水站", "井场")),
    "market": ((60, 120), (50, 90), ("农贸市场", "综合市场", "早市")),
    "industrial_park": ((600, 1400), (500, 1100), ("工业园区", "物流园区", "化工园区")),
}
# Where each kind is placed: division → weight.
EXCLUSIVE_PLACES: dict[str, dict[str, float]] = {
    "school": {d: (3.0 if d in URBAN else 1.0) for d in DIVISIONS},
    "hospital": {d: (3.0 if d in URBAN else 1.0) for d in DIVISIONS},
    "market": {d: (2.0 if d in URBAN else 1.0) for d in DIVISIONS},
    "oilfield": {"230604": 3.0, "230605": 3.0, "230606": 2.0, "230602": 1.0, "230624": 1.0},
    "industrial_park": {"230603": 3.0, "230606": 1.0, "230621": 1.0, "230622": 1.0, "230604": 1.0},
}


@dataclass
class DemoData:
    """The generated layers, in EPSG:4326."""

    areas: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame


def load_divisions() -> gpd.GeoDataFrame:
    """Return Daqing's nine county-level divisions (WGS-84) from the committed outline file."""
    return gpd.read_file(OUTLINES_PATH, engine="pyogrio").sort_values("code").reset_index(drop=True)


def _seeds(
    poly: shapely.Geometry, core: np.ndarray, n: int, urban: bool, rng: np.random.Generator
) -> np.ndarray:
    """Return n points inside `poly`, denser around `core`, no two closer than a minimum spacing."""
    share, sigma = (0.75, 3500.0) if urban else (0.4, 3000.0)
    min_gap = 120.0 if urban else 400.0
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    pts: list[np.ndarray] = []
    arr = np.empty((0, 2))
    while len(pts) < n:
        k = 4 * n
        near = rng.random(k) < share
        cand = np.where(
            near[:, None],
            core + rng.normal(0.0, sigma, (k, 2)),
            np.column_stack([rng.uniform(minx, maxx, k), rng.uniform(miny, maxy, k)]),
        )
        cand = cand[shapely.contains_xy(poly, cand[:, 0], cand[:, 1])]
        for p in cand:
            if len(arr) and np.min(np.hypot(*(arr - p).T)) < min_gap:
                continue
            pts.append(p)
            arr = np.vstack([arr, p])
            if len(pts) == n:
                break
    return np.asarray(pts)


def _tessellate(
    pts: np.ndarray, poly_m: shapely.Geometry, outline: shapely.Geometry
) -> list[shapely.Geometry]:
    """Return, per seed, its Voronoi cell clipped to `outline` (WGS-84), tiling it exactly.

    Clipping each cell on its own lets GEOS's fallback snapping shift a vertex here and there,
    leaving slivers. Instead all cell edges and the outline are noded once together and
    polygonized: every face then shares its edges exactly with its neighbours. Edges are drawn
    in metres and reprojected at their end points, so neighbouring districts, clipped to the
    same stored border, meet in the CRS PostGIS tests them in.
    """
    frame = shapely.box(*poly_m.bounds).buffer(10_000, join_style="mitre")
    edges_m = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame, only_edges=True)
    edges = gpd.GeoSeries([edges_m], crs=METRIC_CRS).to_crs(4326).iat[0]
    faces = shapely.get_parts(
        shapely.polygonize(shapely.get_parts(shapely.union_all([edges, outline.boundary])))
    )
    inner = faces[shapely.contains_properly(outline, shapely.point_on_surface(faces))]
    # A face belongs to the seed nearest to any point inside it: that is what a Voronoi cell is.
    probe = gpd.GeoSeries(shapely.point_on_surface(inner), crs=4326).to_crs(METRIC_CRS)
    owner = cKDTree(pts).query(np.column_stack([probe.x, probe.y]))[1]
    cells: list[shapely.Geometry] = []
    for k in range(len(pts)):
        mine = inner[owner == k]
        if not len(mine):
            raise RuntimeError("a grid seed was left without a face")
        cells.append(shapely.multipolygons(mine) if len(mine) > 1 else mine[0])
    return cells


def _groups(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Return a k-means label per point, every label used (re-seeded until none is empty)."""
    if k <= 1:
        return np.zeros(len(points), dtype=int)
    for _ in range(50):
        _, labels = kmeans2(points, k, minit="++", seed=rng)
        if len(np.unique(labels)) == k:
            return labels
    raise RuntimeError("k-means left a group empty 50 times")  # pragma: no cover


def _order_by_distance(points: np.ndarray, labels: np.ndarray, core: np.ndarray) -> list[int]:
    centres = {lab: points[labels == lab].mean(axis=0) for lab in np.unique(labels)}
    return sorted(centres, key=lambda lab: float(np.hypot(*(centres[lab] - core))))


def _community_names(street: str, count: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """Return (name, type) per community: 社区 in streets, a 社区 and villages in towns."""
    named = NAMED_COMMUNITIES.get(street, [])
    stems = list(rng.permutation(NAME_STEMS))
    out: list[tuple[str, str]] = []
    for i in range(count):
        if street.endswith("街道"):
            kind = "社区"
        elif street.endswith("镇"):
            kind = "社区" if i == 0 else "村"
        else:
            kind = "村"
        if i < len(named):
            name = named[i]
            kind = "村" if name.endswith("村") else "社区"
        else:
            stem = stems[i % len(stems)] + ("" if i < len(stems) else "二")
            name = stem + kind
        out.append((name, kind))
    return out


def _street_code(division: str, street: str, index: dict[str, int]) -> str:
    base = 0 if street.endswith("街道") else (100 if street.endswith("镇") else 200)
    index[str(base)] = index.get(str(base), 0) + 1
    return f"{division}{base + index[str(base)]:03d}"


def generate(seed: int = SEED) -> DemoData:
    """Return the demo areas and grids, the same for the same seed."""
    rng = np.random.default_rng(seed)
    divisions = load_divisions()
    metric = divisions.to_crs(METRIC_CRS)
    area_rows: list[dict] = []
    grid_rows: list[dict] = []
    for i, code in enumerate(divisions["code"]):
        poly = metric.geometry.iat[i]
        outline = divisions.geometry.iat[i]  # WGS-84, as stored
        core_ll = shapely.Point(*CORES[code])
        core_m = gpd.GeoSeries([core_ll], crs=4326).to_crs(METRIC_CRS).iat[0]
        if not poly.contains(core_m):
            core_m = poly.point_on_surface()
        core = np.array([core_m.x, core_m.y])
        n = GRID_COUNTS[code]
        pts = _seeds(poly, core, n, code in URBAN, rng)
        cells = _tessellate(pts, poly, outline)
        cells_arr = np.asarray(cells, dtype=object)

        streets = STREETS[code]
        s_labels = _groups(pts, len(streets), rng)
        street_index: dict[str, int] = {}
        for s_rank, s_lab in enumerate(_order_by_distance(pts, s_labels, core)):
            s_name = streets[s_rank]
            s_code = _street_code(code, s_name, street_index)
            s_mask = s_labels == s_lab
            s_pts, s_cells = pts[s_mask], cells_arr[s_mask]
            per = 8 if code in URBAN else 5
            n_comm = max(1, round(len(s_pts) / per))
            c_labels = _groups(s_pts, n_comm, rng)
            c_order = _order_by_distance(s_pts, c_labels, core)
            names = _community_names(s_name, len(c_order), rng)
            next_no = {"社区": 1, "村": 201}
            for c_rank, c_lab in enumerate(c_order):
                c_name, c_kind = names[c_rank]
                c_code = f"{s_code}{next_no[c_kind]:03d}"
                next_no[c_kind] += 1
                c_mask = c_labels == c_lab
                # Codes run north to south, then west to east, as grid maps are read.
                order = np.lexsort((s_pts[c_mask][:, 0], -s_pts[c_mask][:, 1]))
                for g_no, j in enumerate(order, 1):
                    grid_rows.append(
                        {
                            "code": f"{c_code}{g_no:03d}",
                            "name": f"{c_name}第{g_no}网格",
                            "kind": "comprehensive",
                            "category": None,
                            "community_code": c_code,
                            "district_code": code,
                            "geometry": s_cells[c_mask][j],
                        }
                    )
                area_rows.append(
                    {
                        "code": c_code,
                        "name": c_name,
                        "level": "community",
                        "parent_code": s_code,
                        "geometry": shapely.coverage_union_all(s_cells[c_mask]),
                    }
                )
            area_rows.append(
                {
                    "code": s_code,
                    "name": s_name,
                    "level": "street",
                    "parent_code": code,
                    "geometry": shapely.coverage_union_all(s_cells),
                }
            )
        area_rows.append(
            {
                "code": code,
                "name": DIVISIONS[code],
                "level": "district",
                "parent_code": CITY[0],
                "geometry": outline,
            }
        )
    area_rows.append(
        {
            "code": CITY[0],
            "name": CITY[1],
            "level": "city",
            "parent_code": None,
            "geometry": shapely.union_all(divisions.geometry.values),
        }
    )

    grids = gpd.GeoDataFrame(grid_rows, crs=4326)
    grids["population"] = _population(grids, rng)
    exclusive = _exclusive(grids, pd.DataFrame(area_rows), rng)
    grids = pd.concat([grids, exclusive], ignore_index=True)
    areas = gpd.GeoDataFrame(area_rows, crs=4326)
    pop = grids[grids["kind"] == "comprehensive"].set_index("community_code")["population"]
    by_comm = pop.groupby(level=0).sum()
    areas["population"] = _roll_up(areas, by_comm)
    areas["geometry"] = [shapely.multipolygons(shapely.get_parts(g)) for g in areas.geometry]
    grids["geometry"] = [shapely.multipolygons(shapely.get_parts(g)) for g in grids.geometry]
    return DemoData(areas, grids)


def _population(grids: gpd.GeoDataFrame, rng: np.random.Generator) -> np.ndarray:
    # Seeds follow density, so a grid's expected population is about equal everywhere
    # (real grids are drawn around ~300 households); lognormal noise makes it uneven.
    weights = rng.lognormal(0.0, 0.35, len(grids))
    pop = np.floor(weights / weights.sum() * POPULATION).astype(int)
    pop[: POPULATION - pop.sum()] += 1
    return pop


def _roll_up(areas: gpd.GeoDataFrame, by_comm: pd.Series) -> list[int]:
    totals: dict[str, int] = {str(k): int(v) for k, v in by_comm.items()}
    for level in ("community", "street", "district"):
        for code, parent in areas.loc[areas["level"] == level, ["code", "parent_code"]].itertuples(
            index=False
        ):
            totals[parent] = totals.get(parent, 0) + totals.get(code, 0)
    return [totals.get(c, 0) for c in areas["code"]]


def _exclusive(
    grids: gpd.GeoDataFrame, areas: pd.DataFrame, rng: np.random.Generator
) -> gpd.GeoDataFrame:
    """Return the 84 exclusive grids: rotated rectangles inside one community each."""
    communities = areas[areas["level"] == "community"].set_index("code")
    comm_names = communities["name"]
    placed: list[shapely.Geometry] = []
    rows: list[dict] = []
    seq: dict[str, int] = {}
    for kind, (_, count) in EXCLUSIVE_KINDS.items():
        places = EXCLUSIVE_PLACES[kind]
        wx, hy_range, endings = EXCLUSIVE_SHAPES[kind]
        candidates = grids[grids["district_code"].isin(list(places))]
        metric = candidates.geometry.to_crs(METRIC_CRS).values
        weights = candidates["district_code"].map(places).to_numpy(dtype=float)
        if kind == "oilfield":
            weights = weights * shapely.area(metric)  # sites lie out of town
        weights = weights / weights.sum()
        made = 0
        while made < count:
            pick = int(rng.choice(len(candidates), p=weights))
            g = candidates.iloc[pick]
            centre = metric[pick].point_on_surface()
            w, h = rng.uniform(*wx), rng.uniform(*hy_range)
            rect = shapely.box(centre.x - w, centre.y - h, centre.x + w, centre.y + h)
            rect = shapely.affinity.rotate(rect, float(rng.uniform(0, 90)), origin=centre)
            rect_ll = gpd.GeoSeries([rect], crs=METRIC_CRS).to_crs(4326).iat[0]
            shape = polygonal(rect_ll.intersection(communities.geometry[g["community_code"]]))
            if shape is None or any(shape.intersects(p) for p in placed):
                continue
            placed.append(shape)
            comm = g["community_code"]
            seq[comm] = seq.get(comm, 0) + 1
            stem = comm_names[comm].removesuffix("社区").removesuffix("村")
            rows.append(
                {
                    "code": f"{comm}9{seq[comm]:02d}",
                    "name": f"{stem}{endings[made % len(endings)]}",
                    "kind": "exclusive",
                    "category": kind,
                    "community_code": comm,
                    "district_code": g["district_code"],
                    "population": int(rng.integers(200, 2500)),
                    "geometry": shape,
                }
            )
            made += 1
    return gpd.GeoDataFrame(rows, crs=grids.crs)


def write(data: DemoData, out_dir: Path) -> Path:
    """Write the demo layers as one GeoPackage (layers `areas` and `grids`); return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "daqing_demo.gpkg"
    tmp = out_dir / "daqing_demo.partial.gpkg"
    tmp.unlink(missing_ok=True)
    data.areas.to_file(tmp, layer="areas", driver="GPKG", engine="pyogrio")
    data.grids.to_file(tmp, layer="grids", driver="GPKG", engine="pyogrio", append=True)
    tmp.replace(path)
    return path


# One demo user per role. The worker walks the grid of 旭园街道 with the most demo gas-leak
# reports, the district dispatcher that street's district; the department user is the one that
# 危旧房屋 reports are routed to (住房和城乡建设局 unless settings route them elsewhere).
WORKER_STREET = "旭园街道"
HOUSING_CATEGORY = ("flood", "dilapidated_housing")
USERS_HEADER = f"""\
# riskgrid demo users, written by `riskgrid demo` once, when each user was made (only a hash
# of each password is stored). Log in on the /login page (http://127.0.0.1:8000/login after
# `make demo`), or ask the API for a token:
#   curl -d username=USERNAME -d password=PASSWORD http://127.0.0.1:8000/api/v1/auth/token
# {"username":<18} {"role":<12} {"password":<21} name: scope
"""
# Handlers (处置人员): a few users of each department the demo routes to, named after it.
HANDLERS_PER_DEPARTMENT = 2
DEPARTMENT_SLUGS = {
    "水务局": "water",
    "住房和城乡建设局": "housing",
    "城市管理综合执法局": "city-mgmt",
    "应急管理局": "emergency",
    "交通运输局": "transport",
    "公安交警支队": "traffic",
    "消防救援支队": "fire",
    "燃气公司": "gas",
    "民政局": "civil",
    "卫生健康委员会": "health",
    "街道综治中心": "street-centre",
    "司法所": "justice",
    "人力资源和社会保障局": "labour",
    "信访局": "petitions",
    "公安局": "police",
    "网信办": "cyber",
}


def _street(conn: Connection, name: str) -> tuple[str, str, str]:
    """Return (code, district code, district name) of the stored street called `name`."""
    row = conn.execute(
        text(
            "SELECT s.code, d.code AS district, d.name AS district_name FROM areas s "
            "JOIN areas d ON d.code = s.parent_code WHERE s.level = 'street' AND s.name = :n"
        ),
        {"n": name},
    ).first()
    if row is None:
        raise SetupError(f"no street {name!r} among the stored areas: load the demo areas first")
    return row.code, row.district, row.district_name


def _gas_leak_grid(conn: Connection, street_code: str) -> str:
    """Return the code of the street's grid holding the most gas-leak reports."""
    code = conn.execute(
        text(
            "SELECT g.code FROM grids g JOIN areas c ON c.code = g.community_code "
            "JOIN reports r ON r.grid_code = g.code "
            "WHERE c.parent_code = :s AND r.theme = 'gas' AND r.category = 'gas_leak' "
            "GROUP BY g.code ORDER BY count(*) DESC, g.code LIMIT 1"
        ),
        {"s": street_code},
    ).scalar()
    if code is None:
        raise SetupError(
            f"no gas-leak report in any grid of {WORKER_STREET}: load the demo reports first"
        )
    return code


def demo_users(conn: Connection, rules: ReportSettings) -> list[NewUser]:
    """Return the demo's users, one per role, with their scope taken from the stored demo."""
    street, district, district_name = _street(conn, WORKER_STREET)
    housing = taxonomy.department(*HOUSING_CATEGORY, rules.departments)
    return [
        NewUser("admin", Role.ADMIN, "系统管理员"),
        NewUser("dispatcher", Role.DISPATCHER, "市综治中心调度员"),
        NewUser(
            "district-dispatcher",
            Role.DISPATCHER,
            f"{district_name}综治中心调度员",
            districts=(district,),
        ),
        NewUser("housing", Role.DEPARTMENT, f"{housing}工作人员", department=housing),
        NewUser(
            "worker",
            Role.WORKER,
            f"{WORKER_STREET}网格员",
            grids=(_gas_leak_grid(conn, street),),
        ),
        NewUser("coordinator", Role.COORDINATOR, "防汛协调员"),
        NewUser("planner", Role.PLANNER, "规划分析员"),
        *handlers(rules),
    ]


def handlers(rules: ReportSettings) -> list[NewUser]:
    """Return the demo's department users who handle reports, a few per department."""
    out = []
    for n, dept in enumerate(sorted(taxonomy.departments(rules.departments)), 1):
        slug = DEPARTMENT_SLUGS.get(dept, f"dept{n:02d}")  # a department settings added
        for i in range(1, HANDLERS_PER_DEPARTMENT + 1):
            name = f"{dept}处置人员{i}"
            out.append(NewUser(f"{slug}-{i}", Role.DEPARTMENT, name, department=dept))
    return out


def _scope(u: NewUser) -> str:
    parts = [*(f"grid {g}" for g in u.grids), *(f"district {d}" for d in u.districts)]
    if u.department:
        parts.append(u.department)
    return ", ".join(parts) or "city-wide"


def _append_private(path: Path, lines: list[str]) -> None:
    """Append `lines` to `path`, a file only its owner may read (0600), headed when new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        os.fchmod(fd, 0o600)  # also when the file was there before, with a looser mode
        fh.write((USERS_HEADER if os.fstat(fd).st_size == 0 else "") + "".join(lines))


def load_demo_users(
    engine: Engine,
    users_file: Path,
    rules: ReportSettings,
    auth: AuthSettings,
    echo: Callable[[str], None] = print,
) -> dict:
    """Add the demo users that do not exist yet, with random passwords appended to
    `users_file` (mode 0600) and echoed; never touch an existing user. Return the counts."""
    with engine.begin() as conn:
        wanted = demo_users(conn, rules)
        existing = set(
            conn.execute(
                text("SELECT username FROM users WHERE username = ANY(:u)"),
                {"u": [u.username for u in wanted]},
            ).scalars()
        )
        depts = taxonomy.departments(rules.departments)
        lines = []
        for u in wanted:
            if u.username in existing:
                continue
            added = add_user(conn, SYSTEM, u, depts, auth.min_password_length)
            lines.append(
                f"{u.username:<20} {u.role:<12} {added.generated_password:<21} "
                f"{u.name}: {_scope(u)}\n"
            )
        if lines:
            # Inside the transaction: if the file cannot be written, no user is made.
            _append_private(users_file, lines)
        handled = assign_handlers(conn, "dispatcher")
    for line in lines:
        echo(line.rstrip("\n"))
    if lines:
        echo(f"demo users: {len(lines)} added; passwords written to {users_file} (mode 0600)")
    if existing:
        names = ", ".join(u.username for u in wanted if u.username in existing)
        where = (
            f"their passwords are in {users_file}"
            if users_file.exists()
            else f"{users_file} is missing: set new passwords with `riskgrid users passwd NAME`"
        )
        echo(f"demo users already exist, passwords unchanged: {names} ({where})")
    if handled:
        echo(f"handlers: {handled} reports given one of their department's users")
    return {"added": len(lines), "existing": len(existing), "file": str(users_file)}


def load_demo(
    engine: Engine,
    out_dir: Path,
    tolerances: ImportSettings,
    echo: Callable[[str], None] = print,
    seed: int = SEED,
    reports: ReportSettings | None = None,
    users_file: Path | None = None,
    auth: AuthSettings | None = None,
    photos: PhotoStore | None = None,
    photo_rules: PhotoSettings | None = None,
) -> dict:
    """Generate, write and import the demo; return what was imported. Harmless to repeat.

    With `users_file`, also add one user per role and the departments' handlers
    (`load_demo_users`). Photos go to `photos` (default: a store under `out_dir`).
    """
    path = write(generate(seed), out_dir)
    summary: dict = {}
    for layer in ("areas", "grids"):
        # The demo owns its data: prune what an older generator left behind.
        opts = ImportOptions(layer=layer, file_layer=layer, prune=True)
        outcome = import_file(engine, path, opts, tolerances)
        a = outcome.applied
        assert a is not None  # noqa: S101 - import_file always applies or raises
        findings = len(outcome.report.findings)
        echo(
            f"{layer}: {a.added} added, {a.changed} changed, {a.unchanged} unchanged, "
            f"{a.removed} removed, {findings} finding(s)"
        )
        summary[layer] = {
            "added": a.added,
            "changed": a.changed,
            "unchanged": a.unchanged,
            "removed": a.removed,
            "findings": findings,
        }
    with engine.begin() as conn:
        summary["campaigns"] = upsert_campaigns(conn, campaign_rows(today()))
    loaded = load_demo_reports(engine, reports or ReportSettings())
    echo(
        f"reports: {loaded.inserted} added, {loaded.existing} already stored, "
        f"assignment {loaded.by_method}"
    )
    summary["reports"] = {
        "added": loaded.inserted,
        "existing": loaded.existing,
        "refused": len(loaded.refused),
    }
    summary["photos"] = load_demo_photos(
        engine,
        photos or PhotoStore(out_dir / "photos"),
        demo_ids(REPORTS_SEED),
        photo_rules or PhotoSettings(),
        REPORTS_SEED,
    )
    echo(
        f"photos: {summary['photos']['added']} added, {summary['photos']['existing']} "
        "already stored (drawn demo pictures, not real photographs)"
    )
    rules = reports or ReportSettings()
    summary["risk"] = load_demo_risk(
        engine, out_dir / "risk", load_divisions(), rules.snap_tolerance_m, echo
    )
    summary["campaign_work"] = load_demo_campaign_work(engine, rules.snap_tolerance_m, echo)
    if users_file is not None:
        summary["users"] = load_demo_users(engine, users_file, rules, auth or AuthSettings(), echo)
    return summary
