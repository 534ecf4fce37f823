"""The open reports of a letter's scope (whatever their date: still open is what counts), with
their ages in working time and, for those past their stage's deadline, by how much.

Ages count office time on working days (geo.worktime, as deadlines do) and are given in
working days; how far a report is overdue is measured in its stage limit's own kind of time
(working or calendar), as the report page's clock shows it (deadlines.time_left).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from geo.reports import deadlines, taxonomy
from geo.reports.fragments import OVERDUE
from geo.reports.queries import ReportFilter, where_clause
from geo.settings import Settings
from geo.vocabulary import OPEN_STATUSES
from geo.worktime import Calendar


def amount(td: timedelta, working: bool, cal: Calendar) -> dict:
    """Return a span as {amount, unit}: working days (or hours, under a day) for office time,
    calendar days (or hours) for elapsed time."""
    if working:
        days = td / cal.day_length
        if days >= 1:
            return {"amount": round(days, 1), "unit": "working_days"}
        return {"amount": round(td.total_seconds() / 3600, 1), "unit": "working_hours"}
    if td >= timedelta(days=1):
        return {"amount": round(td.total_seconds() / 86_400, 1), "unit": "calendar_days"}
    return {"amount": round(td.total_seconds() / 3600, 1), "unit": "calendar_hours"}


def _row(r, now: datetime, settings: Settings, cal: Calendar) -> dict:
    cat = taxonomy.category(r.theme, r.category)
    item = {
        "id": str(r.id),
        "theme": r.theme,
        "category": r.category,
        "zh": cat.zh if cat else r.category,
        "status": r.status,
        "grid": r.grid_code,
        "grid_name": r.grid_name,
        "district": r.district_code,
        "district_name": r.district_name,
        "reported_at": r.reported_at.isoformat(),
        "due_at": None if r.due_at is None else r.due_at.isoformat(),
        "age_working_days": round(cal.working_time_between(r.reported_at, now) / cal.day_length, 1),
        "overdue": bool(r.overdue),
        "overdue_by": None,
        "supervised": bool(r.supervised),
    }
    if r.overdue:
        limit = deadlines.limit_for(r.theme, r.category, r.status, settings.reports)
        if limit is not None:
            over = cal.working_time_between(r.due_at, now) if limit.working else now - r.due_at
            item["overdue_by"] = amount(over, limit.working, cal)
    return item


def open_reports(conn: Connection, f: ReportFilter, settings: Settings, listed: int) -> dict:
    """Return the scope's open reports: how many, how many overdue, and the first `listed`
    (overdue first, longest overdue first, then the oldest) with their ages."""
    g = replace(f, since=None, until=None, status=tuple(str(s) for s in OPEN_STATUSES))
    where, params = where_clause(g)
    counts = conn.execute(
        text(
            f"SELECT count(*) AS open, count(*) FILTER (WHERE {OVERDUE}) AS overdue, now() AS now "
            f"FROM reports r WHERE {where}"
        ),
        params,
    ).one()
    rows = conn.execute(
        text(
            f"""
            SELECT r.id, r.theme, r.category, r.status, r.grid_code, g.name AS grid_name,
                   r.district_code, a.name AS district_name, r.reported_at, r.due_at,
                   {OVERDUE} AS overdue, r.supervised_at IS NOT NULL AS supervised
            FROM reports r LEFT JOIN grids g ON g.code = r.grid_code
            LEFT JOIN areas a ON a.code = r.district_code AND a.level = 'district'
            WHERE {where}
            ORDER BY {OVERDUE} DESC, r.due_at NULLS LAST, r.reported_at, r.id
            LIMIT :listed
            """
        ),
        {**params, "listed": listed},
    ).all()
    cal = deadlines.calendar(settings.worktime)
    items = [_row(r, counts.now, settings, cal) for r in rows]
    return {
        "total": int(counts.open),
        "overdue": int(counts.overdue),
        "listed": len(items),
        "as_of": counts.now.isoformat(),
        "items": items,
    }
