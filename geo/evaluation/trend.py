"""The monthly trend of the closure rates (结案率, 按期结案率): per unit and local month, each
month counted as an evaluation of that month alone would count it."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import Connection, text

from geo.evaluation import clock, indicators, per_report
from geo.evaluation.per_report import (
    HALVES,
    part_condition,
    report_filter,
    report_rows,
    shared_ctes,
)
from geo.evaluation.query import Query
from geo.identity.scope import ReportScope
from geo.settings import ReportSettings, WorkTimeSettings

COUNTS = ("due_to_close", "closed", "closed_on_time")


def trend_statement(
    conn: Connection,
    q: Query,
    scope: ReportScope,
    rules: ReportSettings,
    worktime: WorkTimeSettings,
    now: datetime | None = None,
    part: tuple[str | None, str | None] | None = None,
) -> tuple[str, dict]:
    """Return the statement of `trend` (of one part of the reports) and its bind values."""
    _, params = indicators.statement(conn, q, scope, rules, worktime, now, part)
    where, _ = report_filter(q, scope)
    where = f"{where} AND {part_condition('r.id', part)}"
    limits = clock.limit_binds(rules, worktime)
    close = per_report.timers(limits)[0]
    month = "to_char(({t}) AT TIME ZONE CAST(:oc_zone AS text), 'YYYY-MM')"
    at_v, at_due = month.format(t="verified_at"), month.format(t="close_due")
    due_month_start = (
        "date_trunc('month', close_due AT TIME ZONE CAST(:oc_zone AS text)) "
        "AT TIME ZONE CAST(:oc_zone AS text)"
    )
    keep = ("accepted_at", "verified_at")
    return (
        f"""
WITH {shared_ctes(q, where, q.until is not None, part)},
closing AS (
  SELECT unit, accepted_at, verified_at, close_due
  FROM ({report_rows(q, where, keep, (close,))}) AS t
  WHERE accepted_at IS NOT NULL
)
SELECT unit, m.month, sum(m.due)::bigint AS due_to_close, sum(m.closed)::bigint AS closed,
       sum(m.on_time)::bigint AS closed_on_time
FROM closing CROSS JOIN LATERAL (VALUES
  (CASE WHEN verified_at >= :since THEN {at_v} END, 1, 1, (verified_at <= close_due)::int),
  (CASE WHEN close_due >= :since AND close_due < :until
          AND {at_due} IS DISTINCT FROM {at_v}
          AND (verified_at IS NULL OR verified_at >= {due_month_start})
        THEN {at_due} END, 1, 0, 0)
) AS m (month, due, closed, on_time)
WHERE m.month IS NOT NULL AND unit IS NOT NULL
GROUP BY 1, 2
""",
        params,
    )


Months = dict[str, dict[str, dict[str, int]]]


def _run(conn: Connection, sql: str, params: dict) -> Months:
    indicators.tune(conn)
    out: Months = {}
    for r in conn.execute(text(sql), params).mappings():
        out.setdefault(str(r["unit"]), {})[r["month"]] = {c: int(r[c]) for c in COUNTS}
    return out


def trend(
    conn: Connection,
    q: Query,
    scope: ReportScope,
    rules: ReportSettings,
    worktime: WorkTimeSettings,
    spare: Callable[[], AbstractContextManager[Connection]] | None = None,
) -> Months:
    """Return per unit and local month ('2024-06') its 应结案, 结案 and 按期结案, each month
    counted as an evaluation of that month alone: {unit: {month: {count: n}}}. With `spare`,
    each half of the reports is counted on its own connection at once (indicators.counts)."""
    if spare is None:
        return _run(conn, *trend_statement(conn, q, scope, rules, worktime))
    now = conn.execute(text("SELECT now()")).scalar_one()

    def other() -> Months:
        with spare() as c:
            try:
                return _run(c, *trend_statement(c, q, scope, rules, worktime, now, HALVES[1]))
            finally:
                c.rollback()

    with ThreadPoolExecutor(max_workers=1) as pool:
        second = pool.submit(other)
        out = _run(conn, *trend_statement(conn, q, scope, rules, worktime, now, HALVES[0]))
        for unit, months in second.result().items():
            for month, found in months.items():
                mine = out.setdefault(unit, {}).setdefault(month, dict.fromkeys(COUNTS, 0))
                for c, n in found.items():
                    mine[c] += n
    return out
