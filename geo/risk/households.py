"""Households the grid workers keep track of: who lives where, who is old, alone or needs help.

Names, phones, addresses and exact positions are personal data: `by_grid` gives everyone the
counts per grid; `listing` is for coordinators and admins (the API checks the role). A
household is vulnerable when someone in it is over 60, it is one person living alone, or
someone needs help to move; its members are the vulnerable residents a relocation moves.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from sqlalchemy import Connection, text

from geo.db.copy import copy_frame
from geo.grids.assignment import assignment_ctes, snap_params, stage_points

COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "uuid"),
    ("code", "text"),
    ("head_name", "text"),
    ("phone", "text"),
    ("address", "text"),
    ("members", "smallint"),
    ("over_60", "smallint"),
    ("oldest_age", "smallint"),
    ("living_alone", "boolean"),
    ("mobility_needs", "boolean"),
    ("contact_worker", "text"),
    ("lon", "float8"),
    ("lat", "float8"),
)
VULNERABLE = "(h.over_60 > 0 OR h.living_alone OR h.mobility_needs)"

# The comprehensive grid a household counts for: its own, or the one beneath an exclusive grid.
COMPREHENSIVE_OF_HOUSEHOLD = """CASE WHEN g.kind = 'exclusive' THEN (
    SELECT c.code FROM grids c WHERE c.kind = 'comprehensive' AND ST_Covers(c.geom, h.geom)
    ORDER BY c.code LIMIT 1) ELSE g.code END"""


_UPSERT_SQL = f"""
    WITH {assignment_ctes("stage_hh_points", grids_outer=True)},
    up AS (
      INSERT INTO households (id, code, head_name, phone, address, members, over_60,
                              oldest_age, living_alone, mobility_needs, contact_worker,
                              geom, grid_code, district_code)
      SELECT s.id, s.code, s.head_name, s.phone, s.address, s.members, s.over_60,
             s.oldest_age, s.living_alone, s.mobility_needs, s.contact_worker, p.geom,
             a.grid_code, a.district_code
      FROM stage_households s JOIN stage_hh_points p ON p.id = s.id
      JOIN assigned a ON a.id = s.id
      ON CONFLICT (code) DO UPDATE SET
        head_name = EXCLUDED.head_name, phone = EXCLUDED.phone,
        address = EXCLUDED.address, members = EXCLUDED.members,
        over_60 = EXCLUDED.over_60, oldest_age = EXCLUDED.oldest_age,
        living_alone = EXCLUDED.living_alone, mobility_needs = EXCLUDED.mobility_needs,
        contact_worker = EXCLUDED.contact_worker, geom = EXCLUDED.geom,
        grid_code = EXCLUDED.grid_code, district_code = EXCLUDED.district_code,
        updated_at = now()
      -- Unchanged rows are left alone: no write, and cached answers stay valid.
      WHERE (households.head_name, households.phone, households.address,
             households.members, households.over_60, households.oldest_age,
             households.living_alone, households.mobility_needs,
             households.contact_worker, households.grid_code)
            IS DISTINCT FROM
            (EXCLUDED.head_name, EXCLUDED.phone, EXCLUDED.address, EXCLUDED.members,
             EXCLUDED.over_60, EXCLUDED.oldest_age, EXCLUDED.living_alone,
             EXCLUDED.mobility_needs, EXCLUDED.contact_worker, EXCLUDED.grid_code)
         OR NOT ST_Equals(households.geom, EXCLUDED.geom)
      RETURNING grid_code
    )
    SELECT (SELECT count(*) FROM stage_households) AS received,
           count(*) AS stored, count(*) FILTER (WHERE grid_code IS NULL) AS unassigned
    FROM up
"""


def load(
    conn: Connection,
    frame: pd.DataFrame,
    snap_m: float,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Upsert households (by code) with their grid assigned by the report rules; return counts
    (received, stored: added or changed, unassigned among those).

    `frame` holds COLUMNS (lon/lat in WGS-84). One COPY and two set-based statements.
    """
    ddl = ", ".join(f"{n} {t}" for n, t in COLUMNS)
    conn.execute(text(f"CREATE TEMP TABLE stage_households ({ddl}) ON COMMIT DROP"))
    copy_frame(conn, "stage_households", frame, [n for n, _ in COLUMNS], progress)
    stage_points(conn, "stage_households", "stage_hh_points")
    row = conn.execute(text(_UPSERT_SQL), snap_params(snap_m)).one()
    return {
        "received": int(row.received),
        "stored": int(row.stored),  # added or changed
        "unassigned": int(row.unassigned),
    }


def by_grid(conn: Connection, district: str | None = None) -> list[dict]:
    """Return household counts per comprehensive grid (no personal data)."""
    where = "WHERE g2.district_code = :district" if district else ""
    rows = conn.execute(
        text(
            f"""
            SELECT x.code, g2.name, g2.district_code, x.households, x.residents, x.over_60,
                   x.living_alone, x.mobility_needs, x.vulnerable_households,
                   x.vulnerable_residents
            FROM ({per_grid_sql()}) x JOIN grids g2 ON g2.code = x.code
            {where}
            ORDER BY x.code
            """
        ),
        {"district": district} if district else {},
    ).all()
    return [dict(r._mapping) for r in rows]


def per_grid_sql() -> str:
    """SQL of household counts per comprehensive grid (`code`, counts), for `households h`."""
    return f"""
        SELECT {COMPREHENSIVE_OF_HOUSEHOLD} AS code,
               count(*) AS households, sum(h.members)::int AS residents,
               sum(h.over_60)::int AS over_60,
               count(*) FILTER (WHERE h.living_alone) AS living_alone,
               count(*) FILTER (WHERE h.mobility_needs) AS mobility_needs,
               count(*) FILTER (WHERE {VULNERABLE}) AS vulnerable_households,
               COALESCE(sum(h.members) FILTER (WHERE {VULNERABLE}), 0)::int
                 AS vulnerable_residents
        FROM households h JOIN grids g ON g.code = h.grid_code
        GROUP BY 1"""


def listing(
    conn: Connection,
    grid: str | None,
    bbox: tuple[float, float, float, float] | None,
    limit: int,
    offset: int,
) -> dict:
    """Return households with personal data (for coordinators and admins), by code."""
    clauses = ["TRUE"]
    params: dict[str, object] = {"limit": limit, "offset": offset}
    if grid:
        clauses.append("h.grid_code = :grid")
        params["grid"] = grid
    if bbox:
        clauses.append("h.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    where = " AND ".join(clauses)
    total = conn.execute(text(f"SELECT count(*) FROM households h WHERE {where}"), params)
    rows = conn.execute(
        text(
            f"""
            SELECT h.code, h.head_name, h.phone, h.address, h.members, h.over_60, h.oldest_age,
                   h.living_alone, h.mobility_needs, h.contact_worker, h.grid_code,
                   h.district_code, round(ST_X(h.geom)::numeric, 7)::float8 AS lon,
                   round(ST_Y(h.geom)::numeric, 7)::float8 AS lat
            FROM households h WHERE {where} ORDER BY h.code LIMIT :limit OFFSET :offset
            """
        ),
        params,
    ).all()
    return {"total": int(total.scalar_one()), "households": [dict(r._mapping) for r in rows]}
