"""How far a campaign's visits have reached: per grid of its districts, the visits, whether
it was visited, its targets and those visited, and the last visit.

Household targets are counted from the register: to a role that does not see those
households, per-grid target counts from 1 to k-1 are withheld as the household counts are
(geo.risk.households.withhold).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, text

from geo.campaigns.targets import HOUSEHOLDS
from geo.geojson import feature_collection
from geo.identity.principal import Principal
from geo.risk import households
from geo.vocabulary import Role

# Visits and targets are aggregated per grid first (index on (campaign_code, grid_code)),
# then joined to the grids of the districts: one pass over each table.
_PER_GRID = text(
    """
    WITH v AS (
      SELECT grid_code, count(*) AS visits, max(visited_at) AS last_visit
      FROM visits WHERE campaign_code = :c GROUP BY grid_code
    ), seen AS (
      SELECT DISTINCT target_id FROM visits WHERE campaign_code = :c AND target_id IS NOT NULL
    ), t AS (
      SELECT t.grid_code, count(*) AS targets, count(s.target_id) AS targets_visited
      FROM campaign_targets t LEFT JOIN seen s ON s.target_id = t.id
      WHERE t.campaign_code = :c GROUP BY t.grid_code
    )
    SELECT g.code, g.name, g.kind, g.district_code, ST_AsGeoJSON(g.geom, 6) AS gj,
           COALESCE(v.visits, 0) AS visits, v.last_visit,
           COALESCE(t.targets, 0) AS targets, COALESCE(t.targets_visited, 0) AS targets_visited
    FROM grids g LEFT JOIN v ON v.grid_code = g.code LEFT JOIN t ON t.grid_code = g.code
    WHERE g.district_code = ANY(:districts)
    ORDER BY g.code
    """
)
_UNASSIGNED = text("SELECT count(*) FROM visits WHERE campaign_code = :c AND grid_code IS NULL")
COUNTED = ("targets", "targets_visited")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _exact(who: Principal, grid: str, district: str | None) -> bool:
    """Whether `who` sees the households of this grid (their counts shown exactly)."""
    if not who.sees_households:
        return False
    if who.role == Role.WORKER:
        return grid in who.grids
    if who.role == Role.COORDINATOR and who.districts:
        return district in who.districts
    return True


def coverage(conn: Connection, who: Principal, campaign: dict, k: int) -> bytes:
    """Return the campaign's coverage as a GeoJSON FeatureCollection (one feature per grid of
    its districts, by code) with the totals as a top-level member."""
    rows = [
        dict(r)
        for r in conn.execute(
            _PER_GRID, {"c": campaign["code"], "districts": list(campaign["districts"])}
        ).mappings()
    ]
    unassigned = int(conn.execute(_UNASSIGNED, {"c": campaign["code"]}).scalar_one())
    totals = {
        "grids": len(rows),
        "grids_visited": sum(1 for r in rows if r["visits"]),
        "visits": sum(r["visits"] for r in rows) + unassigned,
        "unassigned_visits": unassigned,
        "targets": sum(r["targets"] for r in rows),
        "targets_visited": sum(r["targets_visited"] for r in rows),
    }
    if (campaign["targets"] or {}).get("register") == HOUSEHOLDS:
        exact = [_exact(who, r["code"], r["district_code"]) for r in rows]
        households.withhold(rows, k, COUNTED, exact=exact, total=totals, total_exact=all(exact))
    features = (
        (
            r["code"],
            r["gj"],
            {
                "grid": r["code"],
                "name": r["name"],
                "kind": r["kind"],
                "district": r["district_code"],
                "visits": r["visits"],
                "visited": r["visits"] > 0,
                "targets": r["targets"],
                "targets_visited": r["targets_visited"],
                "last_visit": _iso(r["last_visit"]),
                "suppressed": r.get("suppressed", False),
            },
        )
        for r in rows
    )
    return feature_collection(features, {"campaign": campaign["code"], "totals": totals})
