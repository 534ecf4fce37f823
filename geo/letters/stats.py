"""按期回复率 per department: letters replied by their due time / letters issued and due.

A letter is due once its reply time has passed or it has been replied to (an early reply is
settled, and counts); one still waiting within its time is not counted yet. Counted over the
letters the reader sees, of one year's numbers when asked.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from geo.identity.principal import Principal
from geo.letters import rights
from geo.letters.status import WAITING, LetterStatus
from geo.vocabulary import sql_list

_COUNTS = f"""
  count(*) AS issued,
  count(*) FILTER (WHERE l.replied_at IS NOT NULL OR l.reply_due <= now()) AS due,
  count(*) FILTER (WHERE l.replied_at IS NOT NULL) AS replied,
  count(*) FILTER (WHERE l.replied_at <= l.reply_due) AS replied_on_time,
  count(*) FILTER (WHERE l.status IN {sql_list(WAITING)} AND l.reply_due < now()) AS overdue
"""


def _rates(row: dict) -> dict:
    counts = {k: int(v) for k, v in row.items() if k != "department"}
    due, on_time = counts["due"], counts["replied_on_time"]
    return {**counts, "on_time_reply_rate": round(on_time / due, 4) if due else None}


def reply_stats(conn: Connection, who: Principal, year: int | None = None) -> dict:
    """Return per department (and in all) letters issued, due, replied, replied on time,
    overdue, and the on-time reply rate (None with nothing due)."""
    seen, params = rights.visible(who)
    where = f"{seen} AND l.status <> '{LetterStatus.DRAFT}'"
    if year is not None:
        where += " AND l.year = :year"
        params["year"] = year
    rows = conn.execute(
        text(f"SELECT l.department, {_COUNTS} FROM letters l WHERE {where} GROUP BY 1 ORDER BY 1"),
        params,
    ).mappings()
    total = conn.execute(text(f"SELECT {_COUNTS} FROM letters l WHERE {where}"), params)
    return {
        "year": year,
        "departments": [{"department": r["department"], **_rates(dict(r))} for r in rows],
        "total": _rates(dict(total.mappings().one())),
    }
