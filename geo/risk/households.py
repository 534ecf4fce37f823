"""Households the grid workers keep track of: who lives where, who is old, alone or needs help.

Names, phones, addresses and exact positions are personal data, shown within a scope
(`scope_condition`): a worker's grids, a coordinator's districts (all when unbound), everything
for an admin; other roles see none, and every such read is audited with the people shown.
`by_grid` gives every role the counts per grid; to a role without the right to the households
counted, counts from 1 to k-1 are withheld (`withhold`). A household is vulnerable when
someone in it is over 60, it is one person living alone, or someone needs help to move; its
members are the vulnerable residents a relocation moves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
from sqlalchemy import Connection, text

from geo.db.copy import copy_frame
from geo.errors import Forbidden
from geo.grids.assignment import assignment_ctes, snap_params, stage_points
from geo.identity import audit
from geo.identity.principal import Principal
from geo.vocabulary import Role

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
# The counts per grid, area or total; the first is the base: when it is withheld, all are.
COUNTS = (
    "households",
    "residents",
    "over_60",
    "living_alone",
    "mobility_needs",
    "vulnerable_households",
    "vulnerable_residents",
)
EXPORT = "personal_data.export"

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


def scope_condition(who: Principal) -> tuple[str, dict]:
    """Return the SQL condition on `households h` (its grid joined as `g`) of the households
    whose personal data `who` may see, and its bind values: a worker's grids (a household of an
    exclusive grid also counts for the comprehensive grid beneath it), a coordinator's
    districts (all when unbound), all for an admin, none for any other role."""
    if not who.sees_households:
        return "FALSE", {}
    if who.role == Role.WORKER:
        return (
            f"(h.grid_code = ANY(:hh_grids) OR {COMPREHENSIVE_OF_HOUSEHOLD} = ANY(:hh_grids))",
            {"hh_grids": list(who.grids)},
        )
    if who.role == Role.COORDINATOR and who.districts:
        return "h.district_code = ANY(:hh_districts)", {"hh_districts": list(who.districts)}
    return "TRUE", {}


def by_grid(conn: Connection, who: Principal, k: int, district: str | None = None) -> list[dict]:
    """Return household counts per comprehensive grid (no personal data), each row with
    `suppressed`: the households of `who`'s scope, exactly, for the roles that see households;
    all of them, with counts from 1 to k-1 withheld, for the others."""
    exact = who.sees_households
    scoped, params = scope_condition(who) if exact else ("TRUE", {})
    outer = "TRUE"
    if district:
        outer = "g2.district_code = :district"
        params = {**params, "district": district}
    rows = conn.execute(
        text(
            f"""
            SELECT x.code, g2.name, g2.district_code, x.households, x.residents, x.over_60,
                   x.living_alone, x.mobility_needs, x.vulnerable_households,
                   x.vulnerable_residents
            FROM ({per_grid_sql(scoped)}) x JOIN grids g2 ON g2.code = x.code
            WHERE {outer}
            ORDER BY x.code
            """
        ),
        params,
    ).all()
    out = [dict(r._mapping) for r in rows]
    withhold(out, k, exact=[exact] * len(out))
    return out


def per_grid_sql(where: str = "TRUE") -> str:
    """SQL of household counts per comprehensive grid (`code`, counts), for the households
    `h` (their grid joined as `g`) matching `where`."""
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
        WHERE {where}
        GROUP BY 1"""


def listing(
    conn: Connection,
    who: Principal,
    grid: str | None,
    bbox: tuple[float, float, float, float] | None,
    limit: int,
    offset: int,
) -> dict:
    """Return the households of `who`'s scope with their personal data, by code, and record the
    read in the audit log with the people shown (the members of the households listed)."""
    if not who.sees_households:
        raise Forbidden(
            "households' names, phones and positions are shown to admins, coordinators (their "
            f"districts) and workers (their grids), not to a {who.role or 'caller without a role'}"
            "; the counts per grid carry no names"
        )
    scoped, params = scope_condition(who)
    clauses = [scoped]
    params = {**params, "limit": limit, "offset": offset}
    if grid:
        clauses.append("h.grid_code = :grid")
        params["grid"] = grid
    if bbox:
        clauses.append("h.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    where = " AND ".join(clauses)
    base = f"FROM households h LEFT JOIN grids g ON g.code = h.grid_code WHERE {where}"
    total = conn.execute(text(f"SELECT count(*) {base}"), params).scalar_one()
    rows = conn.execute(
        text(
            f"""
            SELECT h.code, h.head_name, h.phone, h.address, h.members, h.over_60, h.oldest_age,
                   h.living_alone, h.mobility_needs, h.contact_worker, h.grid_code,
                   h.district_code, round(ST_X(h.geom)::numeric, 7)::float8 AS lon,
                   round(ST_Y(h.geom)::numeric, 7)::float8 AS lat
            {base} ORDER BY h.code LIMIT :limit OFFSET :offset
            """
        ),
        params,
    ).all()
    shown = [dict(r._mapping) for r in rows]
    people = sum(int(h["members"] or 0) for h in shown)
    audit.record(
        conn,
        who,
        audit.PERSONAL_DATA_READ,
        "households",
        _listing_id(grid, bbox, offset),
        people=people,
    )
    return {"total": int(total), "households": shown}


def _listing_id(
    grid: str | None, bbox: tuple[float, float, float, float] | None, offset: int
) -> str:
    """What a listing showed, as the audit log's object id (at most 64 characters)."""
    parts = [f"grid={grid}"] if grid else []
    if bbox:
        parts.append("bbox=" + ",".join(f"{v:.4f}" for v in bbox))
    if offset:
        parts.append(f"offset={offset}")
    return (";".join(parts) or "all")[:64]


def withhold(
    rows: list[dict],
    k: int,
    fields: tuple[str, ...] = COUNTS,
    exact: Sequence[bool] | None = None,
    total: dict | None = None,
    total_exact: bool = False,
) -> None:
    """Withhold small counts in place: `None`, and `suppressed: true` on the row.

    In the rows not `exact`, counts from 1 to k-1, and all the counts of a row whose first
    field is withheld (a zero would still tell something of so few). With a `total` (not
    `exact`: withheld the same way), further rows' counts are withheld, smallest first, until
    the total minus the counts shown is 0 or at least k: what was withheld cannot be told from
    the rest; failing that the total's count is withheld.
    """
    exact = [False] * len(rows) if exact is None else list(exact)
    raw = [dict(r) for r in rows]
    for row, is_exact in zip(rows, exact, strict=True):
        _withhold_row(row, k, fields, is_exact)
    if total is None:
        return
    _withhold_row(total, k, fields, total_exact)
    for f in fields:
        if total[f] is None:
            continue
        hidden = total[f] - sum(r[f] for r in rows if r[f] is not None)
        while 0 < hidden < k:
            shown = [
                (raw[i][f], i)
                for i, r in enumerate(rows)
                if not exact[i] and r[f] is not None and r[f] > 0
            ]
            if not shown:
                total[f] = None
                total["suppressed"] = True
                break
            n, i = min(shown)
            rows[i][f] = None
            rows[i]["suppressed"] = True
            hidden += n


def _withhold_row(row: dict, k: int, fields: tuple[str, ...], exact: bool) -> None:
    if not exact:
        few = 0 < row[fields[0]] < k
        for f in fields:
            if few or 0 < row[f] < k:
                row[f] = None
    row["suppressed"] = any(row[f] is None for f in fields)
