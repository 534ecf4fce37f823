"""The evaluation's per-report SQL: each report's loop (its `report_loops` row, or for the few
that moved on after the period, one FILTER aggregate of its transitions as they stood), the
report's unit, and the deadlines it needs, computed in SQL (`clock`). `indicators` sums these
rows per unit; `trend` per unit and month.

By department, a report counts for the department of its final dispatch before the period's
end (a report returned by one department and dispatched to another belongs to the second; the
first answers for the return in its 回退率); dispatches count for the department each named.
By district, the report's district; by street, the street (街道/乡镇) of its grid's community;
by worker, the grid worker who sent it.
"""

from __future__ import annotations

from geo.evaluation import clock
from geo.evaluation.query import By, Query
from geo.identity.scope import ReportScope, scope_condition
from geo.vocabulary import AT_OR_BELOW_STREET, AreaLevel, ReportStatus, sql_list

S = ReportStatus

_LOW = sql_list(AT_OR_BELOW_STREET)
_TRANSITION = "e.kind = 'transition'"


def _events(bounded: bool, worker: bool) -> str:
    """The per-report aggregate of its transitions (as migration 0010's `report_loops`);
    `bounded`: events at or after `until` are not seen (when `until` is now there are none,
    and the conditions are left out)."""
    u = " AND e.at < :until" if bounded else ""
    first_check = (
        # The actor of the first check.
        f",\n    (array_agg(e.actor_id ORDER BY e.at, e.id) FILTER (WHERE "
        f"e.from_status = '{S.RESOLVED}'{u}))[1] AS first_checker"
        if worker
        else ",\n    NULL::int AS first_checker"
    )
    return f"""
    min(e.at) FILTER (WHERE (e.to_status = '{S.ACCEPTED}' OR (e.from_status = '{S.REPORTED}'
      AND e.to_status = '{S.DISPATCHED}')){u}) AS accepted_at,
    min(e.at) FILTER (WHERE e.to_status = '{S.VERIFIED}'{u}) AS verified_at,
    max(e.at) FILTER (WHERE e.to_status = '{S.DISPATCHED}'{u}) AS dispatched_at,
    max(e.at) FILTER (WHERE e.to_status = '{S.RETURNED}'{u}) AS returned_at,
    count(*) FILTER (WHERE e.to_status = '{S.RETURNED}') AS returns_ever,
    max(e.at) FILTER (WHERE e.from_status = '{S.DISPATCHED}'
      AND e.to_status = '{S.IN_PROGRESS}'{u}) AS taken_at,
    min(e.at) FILTER (WHERE e.to_status = '{S.RESOLVED}'{u}) AS first_resolved_at,
    max(e.at) FILTER (WHERE e.to_status = '{S.RESOLVED}'{u}) AS resolved_at,
    max(e.at) FILTER (WHERE e.from_status = '{S.RESOLVED}'
      AND e.to_status = '{S.IN_PROGRESS}'{u}) AS reworked_at,
    min(e.at) FILTER (WHERE e.from_status = '{S.RESOLVED}'{u}) AS first_checked_at,
    count(*) FILTER (WHERE e.from_status = '{S.RESOLVED}' AND e.at >= :since{u}) AS checks,
    bool_and(e.level IN {_LOW}) FILTER (WHERE e.to_status = '{S.RESOLVED}'{u}) AS low
    {first_check}"""


# The report condition when every report up to the period's end is in view.
EVERY_REPORT = "TRUE AND r.reported_at < :until"


# The halves of the reports that `counts` may compute side by side (ids are random UUIDs).
HALVES = ((None, "80000000-0000-0000-0000-000000000000"),
          ("80000000-0000-0000-0000-000000000000", None))  # fmt: skip


def part_condition(column: str, part: tuple[str | None, str | None] | None) -> str:
    """SQL: `column` (a report id) within a part of the reports, or TRUE for all of them."""
    if part is None:
        return "TRUE"
    low, high = part
    conditions = ([f"{column} >= CAST(:part_low AS uuid)"] if low else []) + (
        [f"{column} < CAST(:part_high AS uuid)"] if high else []
    )
    return " AND ".join(conditions)


def report_filter(q: Query, scope: ReportScope) -> tuple[str, dict]:
    """Return the condition on `reports r` of the reports in view, and its bind values."""
    scoped, params = scope_condition(scope)
    where = [scoped, "r.reported_at < :until"]
    if q.theme is not None:
        where.append("r.theme = :theme")
        params["theme"] = q.theme
    if q.campaign is not None:
        where.append("r.campaign_code = :campaign")
        params["campaign"] = q.campaign
    return " AND ".join(where), params


# Each grid's street (街道/乡镇): the parent of its community, else the street whose code
# begins the community's (统计用区划代码: 6 county + 3 street digits).
STREETS = f"""
streets AS (
  SELECT g.code AS grid_code, g.district_code, COALESCE(sp.code, s9.code) AS street
  FROM grids g
  LEFT JOIN areas c ON c.code = g.community_code
  LEFT JOIN areas sp ON sp.code = c.parent_code AND sp.level = '{AreaLevel.STREET}'
  LEFT JOIN areas s9 ON c.code IS NULL AND s9.code = left(g.community_code, 9)
    AND s9.level = '{AreaLevel.STREET}'
)"""

# The unit a report counts for, per `by` (a department's: see `report_rows`).
REPORT_UNIT = {
    By.DISTRICT: "r.district_code",
    By.STREET: "st.street",
    By.WORKER: "CAST(r.reporter_id AS text)",
}


# At the period's end: dispatched or in progress (neither returned, resolved nor closed).
IN_HANDS = (
    "dispatched_at IS NOT NULL AND verified_at IS NULL "
    "AND (returned_at IS NULL OR returned_at < dispatched_at) "
    "AND NOT (resolved_at IS NOT NULL AND (reworked_at IS NULL OR resolved_at > reworked_at))"
)
# In progress since: the last 返工 when one came after the last resolution, else take-up.
IN_PROGRESS_SINCE = (
    "CASE WHEN reworked_at IS NOT NULL AND (resolved_at IS NULL OR reworked_at > resolved_at) "
    "THEN reworked_at ELSE taken_at END"
)
# The final dispatch is the department's task unless it was returned.
TASK = "dispatched_at >= :since AND (returned_at IS NULL OR returned_at < dispatched_at)"


def start_if(condition: str, at: str) -> str:
    """SQL: `at` where a deadline from it is needed, else NULL (a NULL start costs the
    calendar nothing)."""
    return f"CASE WHEN {condition} THEN {at} END"


def _stage(column: str) -> str:
    """SQL: the `lim` column (k1 or a1) of the stage a report in hands stood in."""
    return (
        f"CASE WHEN ({IN_PROGRESS_SINCE}) IS NOT NULL THEN in_progress_{column} "
        f"ELSE dispatched_{column} END"
    )


def timers(limits: dict[str, list], checks: bool = True) -> tuple[clock.Timer, ...]:
    """The deadlines every report needs (`limits`: clock.limit_binds), each with as many steps
    as some category takes: to close (结案时限, from 立案, for reports not closed before the
    period), to handle its final dispatch, to check its first resolution (`checks`: not for
    departments, which make no checks), and of the stage it stood in at the period's end when
    it was dispatched or in progress."""
    check = clock.Timer(
        "check_due", start_if("first_resolved_at >= :since", "first_resolved_at"), "check"
    )
    return (
        clock.Timer(
            "close_due",
            start_if(
                "accepted_at IS NOT NULL AND (verified_at IS NULL OR verified_at >= :since)",
                "accepted_at",
            ),
            "close",
            count=clock.step_count(limits, "close"),
        ),
        clock.Timer(
            "handle_due",
            start_if(TASK, "dispatched_at"),
            "handle",
            count=clock.step_count(limits, "handle"),
        ),
        clock.Timer(
            "stage_due",
            start_if(IN_HANDS, f"COALESCE({IN_PROGRESS_SINCE}, dispatched_at)"),
            steps=((_stage("k1"), _stage("a1")),),
        ),
        *((check,) if checks else ()),
    )


def street_join(q: Query) -> str:
    """Return the join of each report's street, when the units are streets."""
    return "LEFT JOIN streets st ON st.grid_code = r.grid_code" if q.by == By.STREET else ""


def _stored(worker: bool) -> str:
    """A report's loop from its `report_loops` row, in `_events`' columns."""
    checker = "l.first_checker" if worker else "NULL::int"
    return f"""l.report_id, l.accepted_at, l.verified_at, l.dispatched_at, l.returned_at,
    l.returns AS returns_ever, l.taken_at, l.first_resolved_at, l.resolved_at, l.reworked_at,
    l.first_checked_at, CASE WHEN l.first_checked_at >= :since THEN l.checks ELSE 0 END AS checks,
    l.low, {checker} AS first_checker"""


def moved_on(bounded: bool) -> str:
    """SQL: a loop row (l) that does not answer for the period: its report moved on after
    `until` (when bounded), or some of its checks fall before `since` and some after."""
    # COALESCE: a report never checked (NULL) answers for the period as stored.
    straddles = "COALESCE(l.first_checked_at < :since AND l.last_checked_at >= :since, FALSE)"
    return f"(l.last_at >= :until OR {straddles})" if bounded else straddles


def shared_ctes(q: Query, where: str, bounded: bool, part: tuple | None = None) -> str:
    """The CTEs every evaluation statement starts from: the limits (`lim`), each grid's street
    (`streets`), each report's loop (`ev`), and the dispatches of reports ever returned (`rd`,
    with `lastd`: the last of them before `until`).

    A report's loop is its `report_loops` row; only reports that moved on after the period
    (open across its end, or checked across its start: a few percent) have it recomputed
    from their transitions as they stood."""
    u = " AND e.at < :until" if bounded else ""
    worker = q.by == By.WORKER
    # Every report in view: the loops need no join to be read.
    everything = f"{EVERY_REPORT} AND {part_condition('r.id', part)}"
    in_view = "" if where == everything else f"JOIN reports r ON r.id = l.report_id AND {where}"
    return f"""{clock.limits_cte()},
{STREETS},
ev AS (
  SELECT {_stored(worker)}
  FROM report_loops l {in_view}
  WHERE {part_condition("l.report_id", part)} AND NOT {moved_on(bounded)}
  UNION ALL
  SELECT e.report_id, {_events(bounded, worker)}
  FROM report_loops l {in_view}
  JOIN report_events e ON e.report_id = l.report_id AND {_TRANSITION}
  WHERE {part_condition("l.report_id", part)} AND {moved_on(bounded)}
  GROUP BY e.report_id
),
returned AS (
  SELECT l.report_id FROM report_loops l
  WHERE l.returns > 0 AND {part_condition("l.report_id", part)}
),
rd AS (  -- the dispatches of reports ever returned, each with the move that answered it
  SELECT x.report_id, d.department, d.at, d.to_status, d.answer, d.latest
  FROM returned x CROSS JOIN LATERAL (
    SELECT e.department, e.at, e.to_status,
           lead(e.to_status) OVER (ORDER BY e.at, e.id) AS answer,
           row_number() OVER (PARTITION BY e.to_status ORDER BY e.at DESC, e.id DESC) AS latest
    FROM report_events e
    WHERE e.report_id = x.report_id AND {_TRANSITION}
      AND e.to_status IN ('{S.DISPATCHED}', '{S.RETURNED}'){u}
  ) AS d
),
lastd AS (
  SELECT report_id, department FROM rd WHERE to_status = '{S.DISPATCHED}' AND latest = 1
)"""


_UNIT_COLUMNS = ("own_unit", "last_department", "department", "dispatched_at")


def report_rows(q: Query, where: str, keep: tuple[str, ...], timers: tuple) -> str:
    """A SELECT of one row per report in view: `keep`'s columns, the timers' deadlines, and
    `unit`, the unit it counts for. By department, a report ever returned counts for its last
    dispatch before `until`; the others were only ever dispatched to the one they carry."""
    unit = (
        "CASE WHEN dispatched_at IS NOT NULL THEN COALESCE(last_department, department) END"
        if q.by == By.DEPARTMENT
        else "own_unit"
    )
    base = f"""
  SELECT r.id, r.grid_code, r.on_site, r.reported_at, r.department,
         {REPORT_UNIT.get(q.by, "r.department")} AS own_unit, ev.*,
         lastd.department AS last_department, lim.*
  FROM reports r {street_join(q)}
  LEFT JOIN ev ON ev.report_id = r.id
  LEFT JOIN lastd ON lastd.report_id = r.id
  LEFT JOIN lim ON lim.theme = r.theme AND lim.category = r.category
  WHERE {where}"""
    # What the unit is read from comes along, whatever the caller keeps.
    carried = tuple(dict.fromkeys((*keep, *_UNIT_COLUMNS)))
    deadlines = clock.with_deadlines(base, carried, timers)
    columns = ", ".join((*carried, *(t.name for t in timers)))
    return f"SELECT {unit} AS unit, {columns} FROM ({deadlines}) AS t"
