"""The letter's map, drawn from PostGIS with no tiles: the scope's area in the grids' UTM zone,
scaled to the map's pixels, as SVG path data (`ST_AsSVG`) of district borders and grids
coloured by Gi* class, the open reports as dots, and a scale bar in metres.

The frame is the scope's districts when it names some, else the hot spots and open reports
(else every grid), padded and widened to the map's proportions. Small frames show every grid's
outline; large ones only the grids with a class, on the district borders. Reports of
sensitive themes stand at their grid's representative point, as masked reports do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import floor, log10

from sqlalchemy import Connection, text

from geo.cache import Versions
from geo.identity.scope import ReportScope
from geo.projection import grids_utm_srid
from geo.reports.fragments import masked_binds, point
from geo.reports.queries import ReportFilter, where_clause
from geo.vocabulary import OPEN_STATUSES

WIDTH, HEIGHT = 680, 440  # the map's size in CSS pixels (about 180 mm wide on A4)
PAD = 0.06
OUTLINES_UP_TO = 600  # grids in the frame drawn with their outlines; more: classes only
MAX_GRIDS = 4000
MAX_DOTS = 3000
SIMPLIFY_PX = 0.4  # below what a print shows

# Metres to the map's pixels (y down, which ST_AsSVG's negated y gives).
_PX = (
    "ST_Scale(ST_Translate(ST_Transform({g}, :srid), -CAST(:x0 AS float8), -CAST(:y1 AS float8)),"
    " CAST(:s AS float8), CAST(:s AS float8))"
)
_SHAPE = (
    f"ST_AsSVG(ST_SimplifyPreserveTopology(ST_ClipByBox2D({_PX.format(g='{g}')}, "
    "ST_MakeEnvelope(-2, -CAST(:h AS float8) - 2, CAST(:w AS float8) + 2, 2)::box2d), "
    f"{SIMPLIFY_PX}), 0, 1)"
)
# The frame in WGS-84 for the spatial index: the UTM box densified, so its edges bend as the
# projection bends them.
_FRAME = (
    "ST_Transform(ST_Segmentize(ST_MakeEnvelope(:fx0, :fy0, :fx1, :fy1, :srid), "
    "(CAST(:fx1 AS float8) - :fx0) / 16), 4326)"
)


@dataclass(frozen=True)
class Frame:
    """The map's area in UTM metres and its scale (pixels per metre)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def scale(self) -> float:
        """Return pixels per metre."""
        return WIDTH / (self.x1 - self.x0)

    def binds(self, srid: int) -> dict:
        """Return the bind values of the map's statements."""
        return {
            "srid": srid,
            "x0": self.x0,
            "y1": self.y1,
            "s": self.scale,
            "w": WIDTH,
            "h": HEIGHT,
            "fx0": self.x0,
            "fy0": self.y0,
            "fx1": self.x1,
            "fy1": self.y1,
        }


def fit(x0: float, y0: float, x1: float, y1: float) -> Frame:
    """Return a box padded and widened (or heightened) to the map's proportions."""
    w, h = max(x1 - x0, 200.0), max(y1 - y0, 200.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = w * (1 + 2 * PAD), h * (1 + 2 * PAD)
    if w / h < WIDTH / HEIGHT:
        w = h * WIDTH / HEIGHT
    else:
        h = w * HEIGHT / WIDTH
    return Frame(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def scale_bar(frame: Frame) -> dict:
    """Return a scale bar of a round length (1, 2 or 5 × 10^k m) about a fifth of the map."""
    target = (frame.x1 - frame.x0) / 5
    base = 10 ** floor(log10(target))
    metres = max(m * base for m in (1, 2, 5) if m * base <= target)
    return {"metres": int(metres), "px": round(metres * frame.scale, 1)}


def _extent(conn: Connection, sql: str, params: dict) -> tuple[float, ...] | None:
    row = conn.execute(
        text(f"SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ({sql}) e(b)"), params
    ).one()
    return None if row[0] is None else tuple(float(v) for v in row)


def frame_for(
    conn: Connection, srid: int, districts: tuple[str, ...], hot: list[str], open_f: ReportFilter
) -> Frame:
    """Return the map's frame: the districts, else the hot spots and open reports, else all."""
    found = None
    if districts:
        found = _extent(
            conn,
            "SELECT ST_Extent(ST_Transform(geom, :srid)) FROM grids WHERE district_code = ANY(:d)",
            {"srid": srid, "d": list(districts)},
        )
    if found is None:
        where, params = where_clause(open_f)
        found = _extent(
            conn,
            f"""SELECT ST_Extent(x) FROM (
                  SELECT ST_Transform(geom, :srid) AS x FROM grids WHERE code = ANY(:hot)
                  UNION ALL SELECT ST_Transform(r.geom, :srid) FROM reports r WHERE {where}) u""",
            {**params, "srid": srid, "hot": hot},
        )
    if found is None:
        found = _extent(
            conn, "SELECT ST_Extent(ST_Transform(geom, :srid)) FROM grids", {"srid": srid}
        )
    return fit(*(found or (0.0, 0.0, 1000.0, 1000.0)))


def _districts(conn: Connection, b: dict) -> list[dict]:
    rows = conn.execute(
        text(
            f"SELECT code, name, {_SHAPE.format(g='geom')} AS d FROM areas "
            f"WHERE level = 'district' AND geom && {_FRAME} ORDER BY code"
        ),
        b,
    ).all()
    return [{"code": r.code, "name": r.name, "d": r.d} for r in rows if r.d]


def _grids(conn: Connection, b: dict, classes: dict[str, str]) -> tuple[list[dict], bool]:
    n = conn.execute(
        text(f"SELECT count(*) FROM grids WHERE kind = 'comprehensive' AND geom && {_FRAME}"), b
    ).scalar_one()
    outlines = n <= OUTLINES_UP_TO
    only = "" if outlines else "AND code = ANY(:classed)"
    rows = conn.execute(
        text(
            f"SELECT code, {_SHAPE.format(g='geom')} AS d FROM grids "
            f"WHERE kind = 'comprehensive' AND geom && {_FRAME} {only} ORDER BY code LIMIT :n"
        ),
        {**b, "classed": list(classes), "n": MAX_GRIDS},
    ).all()
    grids = [{"code": r.code, "class": classes.get(r.code), "d": r.d} for r in rows if r.d]
    # Outlines first, classes over them, the strongest on top.
    grids.sort(key=lambda g: (g["class"] is not None, (g["class"] or "")[-2:]))
    return grids, outlines


def _dots(conn: Connection, b: dict, open_f: ReportFilter, sensitive: tuple[str, ...]) -> dict:
    where, params = where_clause(open_f)
    masked = ReportScope(masked_themes=sensitive)
    pt = _PX.format(g=point(masked))
    rows = conn.execute(
        text(
            f"""
            SELECT round(ST_X(p)::numeric, 1) AS x, round(-ST_Y(p)::numeric, 1) AS y, overdue
            FROM (SELECT {pt} AS p, (r.due_at < now()) AS overdue FROM reports r
                  WHERE {where} AND r.geom && {_FRAME}) d
            WHERE ST_X(p) BETWEEN 0 AND :w AND -ST_Y(p) BETWEEN 0 AND :h
            ORDER BY overdue, x LIMIT :n
            """
        ),
        {**b, **params, **masked_binds(masked), "n": MAX_DOTS},
    ).all()
    return {
        "dots": [{"x": float(r.x), "y": float(r.y), "overdue": bool(r.overdue)} for r in rows],
        "overdue": sum(1 for r in rows if r.overdue),
    }


def letter_map(
    conn: Connection,
    f: ReportFilter,
    classes: dict[str, str],
    v: Versions,
    sensitive: tuple[str, ...],
) -> dict:
    """Return the map's data: size, frame, district borders, grids (class or outline), open
    reports as dots (overdue ones marked) and the scale bar."""
    srid = grids_utm_srid(conn, v)
    open_f = replace(f, since=None, until=None, status=tuple(str(s) for s in OPEN_STATUSES))
    hot = [c for c, k in classes.items() if k.startswith("hot")]
    districts = f.scope.districts or ()
    frame = frame_for(conn, srid, tuple(districts), hot, open_f)
    b = frame.binds(srid)
    grids, outlines = _grids(conn, b, classes)
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "srid": srid,
        "frame_m": [round(frame.x0), round(frame.y0), round(frame.x1), round(frame.y1)],
        "districts": _districts(conn, b),
        "grids": grids,
        "outlines": outlines,
        **_dots(conn, b, open_f, sensitive),
        "scale": scale_bar(frame),
    }
