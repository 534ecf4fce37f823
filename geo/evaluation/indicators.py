"""The evaluation's counts (综合评价, GB/T 30428.4) per unit, read from the loop's own records:
`reports` and the `transition` rows of `report_events`, in one statement (the per-report part
in `per_report`).

Every count is defined in docs/evaluation.md; in short, for the period [since, until) and as
things stood at `until` (later events are not seen):

- 应结案 due_to_close: reports accepted (立案; a legacy reported → dispatched step counts as
  立案) that were verified (核查通过, 结案) in the period, or whose closing deadline fell in it
  and that were not closed before it. 结案 closed: verified in the period; 按期结案
  closed_on_time: verified by the closing deadline (结案时限, clock.PATHS["close"]).
- 处置 handling: a report's final dispatch (派遣) in the period, not returned, that by the
  period's end was resolved or past its handling deadline (from 派遣 through the dispatched
  and in-progress limits); on time when its first resolution came by that deadline.
- resolved: first resolved (处置完成) in the period; reworked (返工): sent back by a check
  before the period's end; low: every resolution at street/township level or below.
- dispatched: dispatches (派遣) in the period; returned (回退): those a department sent back
  before the period's end (a return answers the dispatch just before it).
- checks: 核查 moves in the period (from resolved: verified or sent back), passed: verified.
- check tasks: first resolutions in the period that by its end were checked or past the check
  limit; on time: first checked within it (a grid worker's: in their grids, by them).
- overdue_open (超期未处置): at the period's end dispatched or in progress past that stage's
  deadline.
- reports_sent, self_resolved (自行处置): reports received in the period, fixed on the spot.
- grids, grids_visited: the unit's grids, and those visited (走访) at least once in the period.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import Connection, text

from geo.evaluation import clock
from geo.evaluation.per_report import (
    HALVES,
    REPORT_UNIT,
    TASK,
    part_condition,
    report_filter,
    report_rows,
    shared_ctes,
    street_join,
    timers,
)
from geo.evaluation.query import EPOCH_START, By, Query
from geo.identity.scope import ReportScope
from geo.settings import ReportSettings, WorkTimeSettings
from geo.vocabulary import ReportStatus, Role

S = ReportStatus
WORK_MEM = "64MB"

# Every count of a unit, in the order the answer lists them.
COUNTS = (
    "due_to_close",
    "closed",
    "closed_on_time",
    "handling_due",
    "handled_on_time",
    "resolved",
    "reworked",
    "resolved_low",
    "dispatched",
    "returned",
    "checks",
    "checks_passed",
    "check_tasks",
    "checks_answered_on_time",
    "overdue_open",
    "reports_sent",
    "self_resolved",
    "grids",
    "grids_visited",
)
# The counts that mean nothing for a department (its people neither send nor visit).
AREA_AND_WORKER_ONLY = ("reports_sent", "self_resolved", "check_tasks",
                        "checks_answered_on_time", "grids", "grids_visited")  # fmt: skip


# The columns of the per-report base that the counts read.
_KEEP = ("id", "grid_code", "on_site", "reported_at",
         "accepted_at", "verified_at", "dispatched_at", "returned_at", "returns_ever",
         "first_resolved_at", "reworked_at", "first_checked_at", "checks", "low",
         "first_checker")  # fmt: skip


def _flags(checks: bool) -> str:
    """Per report: the counts it adds to its unit (0 or 1 each, or its checks); the check
    tasks when `checks` (a department makes no checks)."""
    closed = "accepted_at IS NOT NULL AND verified_at >= :since"
    handled = f"{TASK} AND first_resolved_at > dispatched_at"
    tasks = (
        "check_due, "
        "(first_resolved_at >= :since AND (first_checked_at IS NOT NULL OR check_due < :until))"
        "::int AS check_tasks, (first_resolved_at >= :since AND first_checked_at <= check_due)"
        "::int AS checks_answered_on_time"
        if checks
        else "NULL::timestamptz AS check_due, 0 AS check_tasks, 0 AS checks_answered_on_time"
    )
    return f"""
  id, grid_code, on_site, returns_ever, {tasks},
  (dispatched_at >= :since)::int AS dispatches,
  first_checker, first_resolved_at, first_checked_at,
  (accepted_at IS NOT NULL AND (verified_at >= :since OR (close_due >= :since
    AND close_due < :until AND (verified_at IS NULL OR verified_at >= :since))))::int
    AS due_to_close,
  ({closed})::int AS closed,
  ({closed} AND verified_at <= close_due)::int AS closed_on_time,
  ({TASK} AND (first_resolved_at > dispatched_at OR handle_due < :until))::int
    AS handling_due,
  ({handled} AND first_resolved_at <= handle_due)::int AS handled_on_time,
  (first_resolved_at >= :since)::int AS resolved,
  (first_resolved_at >= :since AND reworked_at IS NOT NULL)::int AS reworked,
  (first_resolved_at >= :since AND low)::int AS resolved_low,
  COALESCE(checks, 0) AS checks,
  (verified_at >= :since)::int AS checks_passed,
  (stage_due < :until)::int AS overdue_open,
  (reported_at >= :since)::int AS reports_sent,
  (reported_at >= :since AND on_site)::int AS self_resolved"""


def _statement(
    q: Query, where: str, bounded: bool, limits: dict[str, list], part: tuple | None = None
) -> str:
    """The whole statement: per-unit sums of every count (of one part of the reports: the
    grids and their visits are counted with the first part)."""
    department = q.by == By.DEPARTMENT
    where = f"{where} AND {part_condition('r.id', part)}"
    dispatch_unit = "rd.department" if department else REPORT_UNIT.get(q.by, "r.department")
    return f"""
WITH {shared_ctes(q, where, bounded, part)},
per_report AS (
  SELECT unit, {_flags(checks=not department)}
  FROM ({report_rows(q, where, _KEEP, timers(limits, checks=not department))}) AS t
),
parts AS (
  SELECT unit, {_report_sums(q.by)}
  FROM per_report WHERE unit IS NOT NULL GROUP BY unit
  UNION ALL
  SELECT {dispatch_unit} AS unit, {_dispatch_sums()}
  FROM rd JOIN reports r ON r.id = rd.report_id {street_join(q)}
  WHERE rd.to_status = '{S.DISPATCHED}' AND rd.at >= :since AND {where}
  GROUP BY 1
  {_worker_parts() if q.by == By.WORKER else ""}
  {_visit_parts(q) if not department and (part is None or part == HALVES[0]) else ""}
)
SELECT unit, {", ".join(f"COALESCE(sum({c}), 0)::bigint AS {c}" for c in COUNTS)}
FROM parts WHERE unit IS NOT NULL GROUP BY unit
"""


def _dispatch_sums() -> str:
    """The dispatches of reports ever returned, each counted for the unit it went to."""
    sums = []
    for c in COUNTS:
        if c == "dispatched":
            sums.append("count(*) AS dispatched")
        elif c == "returned":
            sums.append(f"count(*) FILTER (WHERE rd.answer = '{S.RETURNED}') AS returned")
        else:
            sums.append(f"0 AS {c}")
    return ", ".join(sums)


def _report_sums(by: By) -> str:
    """The per-report counts summed per unit; a report ever returned adds its dispatches
    through `rd` (each to the department it named), the others here. A grid worker's check
    tasks are those of their grids (`_worker_parts`), not of the reports they sent."""
    apart: tuple[str, ...] = ("returned", "grids", "grids_visited")
    if by == By.WORKER:
        apart += ("check_tasks", "checks_answered_on_time")
    sums = []
    for c in COUNTS:
        if c == "dispatched":
            sums.append(
                "sum(dispatches) FILTER (WHERE COALESCE(returns_ever, 0) = 0) AS dispatched"
            )
        elif c in apart:
            sums.append(f"0 AS {c}")
        else:
            sums.append(f"sum({c}) AS {c}")
    return ", ".join(sums)


def _worker_parts() -> str:
    """A grid worker's check tasks: first resolutions in their grids (not 自行处置, which the
    desk checks) due by the period's end; on time when they checked within the limit."""
    cols = ", ".join(
        "count(*) AS check_tasks"
        if c == "check_tasks"
        else (
            "count(*) FILTER (WHERE p.first_checker = ug.user_id "
            "AND p.first_checked_at <= p.check_due) AS checks_answered_on_time"
        )
        if c == "checks_answered_on_time"
        else f"0 AS {c}"
        for c in COUNTS
    )
    return f"""
  UNION ALL
  SELECT CAST(ug.user_id AS text), {cols}
  FROM per_report p JOIN user_grids ug ON ug.grid_code = p.grid_code
  JOIN users u ON u.id = ug.user_id AND u.role = '{Role.WORKER}'
  WHERE NOT p.on_site AND p.first_resolved_at >= :since
    AND (p.first_checked_at IS NOT NULL OR p.check_due < :until)
  GROUP BY 1"""


def _visit_parts(q: Query) -> str:
    """The unit's grids, and those visited (走访) at least once in the period: a worker's own
    visits in their grids; anyone's in an area's. The visited grids are found once and joined
    (an EXISTS per grid read the visits 5,000 times: 2 s at the demo's volume)."""
    visit_filter = ""
    if q.campaign is not None:
        visit_filter += " AND v.campaign_code = :campaign"
    if q.theme is not None:
        visit_filter += " AND v.campaign_code IN (SELECT code FROM campaigns WHERE theme = :theme)"
    window = f"v.visited_at >= :since AND v.visited_at < :until{visit_filter}"
    if q.by == By.WORKER:
        visited = f"SELECT DISTINCT v.user_id, v.grid_code FROM visits v WHERE {window}"
        source = (
            "FROM user_grids ug JOIN users u ON u.id = ug.user_id "
            f"AND u.role = '{Role.WORKER}' AND u.disabled_at IS NULL "
            "JOIN grids g ON g.code = ug.grid_code "
            f"LEFT JOIN ({visited}) AS seen ON seen.grid_code = g.code "
            "AND seen.user_id = ug.user_id"
        )
        unit = "CAST(ug.user_id AS text)"
    else:
        visited = f"SELECT DISTINCT v.grid_code FROM visits v WHERE {window}"
        source = (
            "FROM grids g LEFT JOIN streets st ON st.grid_code = g.code "
            f"LEFT JOIN ({visited}) AS seen ON seen.grid_code = g.code"
        )
        unit = "g.district_code" if q.by == By.DISTRICT else "st.street"
    cols = ", ".join(
        "count(*) AS grids"
        if c == "grids"
        else "count(seen.grid_code) AS grids_visited"
        if c == "grids_visited"
        else f"0 AS {c}"
        for c in COUNTS
    )
    return f"""
  UNION ALL
  SELECT {unit}, {cols}
  {source}
  WHERE :grid_scope_all OR g.district_code = ANY(CAST(:grid_scope AS text[]))
  GROUP BY 1"""


def statement(
    conn: Connection,
    q: Query,
    scope: ReportScope,
    rules: ReportSettings,
    worktime: WorkTimeSettings,
    now: datetime | None = None,
    part: tuple[str | None, str | None] | None = None,
) -> tuple[str, dict]:
    """Return the statement of `counts` (of one part of the reports) and its bind values."""
    now = now or conn.execute(text("SELECT now()")).scalar_one()
    until = q.until or now
    since = q.since or EPOCH_START
    first = conn.execute(text("SELECT min(reported_at) FROM reports")).scalar_one() or until
    where, params = report_filter(q, scope)
    oc = clock.clock_for(worktime, min(first, until), until)
    limits = clock.limit_binds(rules, worktime)
    params.update(
        since=since,
        until=until,
        grid_scope_all=scope.districts is None,
        grid_scope=list(scope.districts or ()),
        part_low=part[0] if part else None,
        part_high=part[1] if part else None,
        **oc.binds(),
        **limits,
    )
    return _statement(q, where, q.until is not None, limits, part), params


def tune(conn: Connection) -> None:
    """Settings for this transaction's evaluation statements.

    The per-report rows (250,000 at ten times the demo) are hashed and materialised: with the
    default 4 MB they go to disk, and the statement took a quarter longer. And psycopg
    prepares a statement run five times on a connection, after which PostgreSQL may plan it
    once for any values: planned without the period's and the part's bounds (and the arrays'
    sizes), the same request took a second at the demo's volume."""
    conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _run(conn: Connection, sql: str, params: dict) -> dict[str, dict[str, int]]:
    tune(conn)
    rows = conn.execute(text(sql), params).mappings()
    return {str(r["unit"]): {c: int(r[c]) for c in COUNTS} for r in rows}


def counts(
    conn: Connection,
    q: Query,
    scope: ReportScope,
    rules: ReportSettings,
    worktime: WorkTimeSettings,
    spare: Callable[[], AbstractContextManager[Connection]] | None = None,
) -> dict[str, dict[str, int]]:
    """Return every unit's counts (COUNTS) for the reports of `scope`: {unit: {count: n}}.

    With `spare` (a second connection, e.g. `engine.connect`), each half of the reports is
    counted on its own connection at the same time and the halves added up: every count is
    a sum over reports (or, the grids', counted with the first half), and the two halves
    use two cores."""
    if spare is None:
        sql, params = statement(conn, q, scope, rules, worktime)
        return _run(conn, sql, params)
    now = conn.execute(text("SELECT now()")).scalar_one()

    def half(c: Connection, part: tuple) -> dict[str, dict[str, int]]:
        sql, params = statement(c, q, scope, rules, worktime, now, part)
        return _run(c, sql, params)

    def other() -> dict[str, dict[str, int]]:
        with spare() as c:
            try:
                return half(c, HALVES[1])
            finally:
                c.rollback()

    with ThreadPoolExecutor(max_workers=1) as pool:
        second = pool.submit(other)
        out = half(conn, HALVES[0])
        for unit, found in second.result().items():
            mine = out.setdefault(unit, dict.fromkeys(COUNTS, 0))
            for c, n in found.items():
                mine[c] += n
    return out
