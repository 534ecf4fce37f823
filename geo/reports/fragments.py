"""SQL on `reports r` that several queries share: conditions written from the vocabulary, and
what a principal may see of a report's position (masked themes shown at a stand-in point)."""

from __future__ import annotations

from geo.identity.scope import ReportScope
from geo.vocabulary import (
    ACTIVE_STATUSES,
    OPEN_STATUSES,
    RESOLVED_STATUSES,
    AreaLevel,
    AssignmentMethod,
    ReportStatus,
    sql_list,
)

# Open and past its stage's deadline.
OVERDUE = f"(r.status IN {sql_list(OPEN_STATUSES)} AND r.due_at < now())"
# A hazard still out there: not yet resolved, not closed.
ACTIVE = f"r.status IN {sql_list(ACTIVE_STATUSES)}"
# Resolved, verified or not.
RESOLVED = f"r.status IN {sql_list(RESOLVED_STATUSES)}"
# Closed without being worked: rejected or a duplicate.
CLOSED_UNWORKED = f"r.status IN {sql_list((ReportStatus.REJECTED, ReportStatus.DUPLICATE))}"
UNASSIGNED = f"r.assignment_method = '{AssignmentMethod.UNASSIGNED}'"


# A masked report is shown at a point surely inside its grid, else inside its district, else
# (a report outside every district, kept by the service margin) inside the nearest grid.
# Scalar subqueries: only the masked rows pay for them (20 ms for 7,900 of the demo's 25,000).
STAND_IN = f"""COALESCE(
      (SELECT ST_PointOnSurface(sg.geom) FROM grids sg WHERE sg.code = r.grid_code),
      (SELECT ST_PointOnSurface(sa.geom) FROM areas sa
       WHERE sa.code = r.district_code AND sa.level = '{AreaLevel.DISTRICT}'),
      (SELECT ST_PointOnSurface(sn.geom) FROM grids sn ORDER BY sn.geom <-> r.geom LIMIT 1))"""


def masked(scope: ReportScope) -> str:
    """Return the SQL condition on `reports r`: shown masked to this scope (binds: `masked_binds`).

    Masked: no description, no reporter, no distances, and the stand-in point of `point`.
    """
    return "r.theme = ANY(:masked_themes)" if scope.masked_themes else "FALSE"


def masked_binds(scope: ReportScope) -> dict[str, object]:
    """Return the bind values that `masked`, `point` and `point_within` need."""
    return {"masked_themes": list(scope.masked_themes)} if scope.masked_themes else {}


def point(scope: ReportScope) -> str:
    """Return the SQL point of `reports r` this scope may see (WGS-84): the exact one, or for a
    masked theme the representative point of its grid (unassigned: of its district)."""
    if not scope.masked_themes:
        return "r.geom"
    return f"(CASE WHEN {masked(scope)} THEN {STAND_IN} ELSE r.geom END)"


def point_within(scope: ReportScope, test: str) -> str:
    """Return `test` (SQL with `{pt}` for a point) applied to the point this scope may see.

    The exact point keeps its spatial index: the masked themes are tested apart, so a small
    area drawn around a house finds a masked report only where it is shown, never where it is.
    """
    exact = test.replace("{pt}", "r.geom")
    if not scope.masked_themes:
        return exact
    shown = test.replace("{pt}", STAND_IN)
    return f"((NOT {masked(scope)} AND {exact}) OR ({masked(scope)} AND {shown}))"
