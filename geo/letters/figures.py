"""The figures a letter quotes, counted from the reports of its scope and period.

- received (上报): reports received in the period;
- accepted (立案): of those, the ones taken on as cases (not waiting to be accepted, not
  rejected, not a duplicate);
- resolved (处置): resolved, verified or not; closed (结案): verified;
- closure_rate (结案率): closed / accepted; resolution_rate: resolved / accepted;
- open: still open (any stage with a deadline); overdue (超期): open past the stage's deadline;
- returned (回退) and reworked (返工): reports returned or sent back at least once.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from geo.reports import taxonomy
from geo.reports.fragments import OVERDUE, RESOLVED
from geo.reports.queries import ReportFilter, where_clause
from geo.vocabulary import OPEN_STATUSES, ReportStatus, sql_list

S = ReportStatus
NOT_ACCEPTED = sql_list((S.REPORTED, S.REJECTED, S.DUPLICATE))
_COUNTS = f"""
  count(*) AS received,
  count(*) FILTER (WHERE r.status NOT IN {NOT_ACCEPTED}) AS accepted,
  count(*) FILTER (WHERE {RESOLVED}) AS resolved,
  count(*) FILTER (WHERE r.status = '{S.VERIFIED}') AS closed,
  count(*) FILTER (WHERE r.status IN {sql_list(OPEN_STATUSES)}) AS open,
  count(*) FILTER (WHERE {OVERDUE}) AS overdue,
  count(*) FILTER (WHERE r.return_count > 0) AS returned,
  count(*) FILTER (WHERE r.rework_count > 0) AS reworked
"""


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _with_rates(row: dict) -> dict:
    counts = {k: int(v) for k, v in row.items() if k not in ("theme", "category")}
    return {
        **counts,
        "closure_rate": _rate(counts["closed"], counts["accepted"]),
        "resolution_rate": _rate(counts["resolved"], counts["accepted"]),
    }


def figures(conn: Connection, f: ReportFilter) -> tuple[dict, list[dict]]:
    """Return the scope's figures and the same per category (most received first)."""
    where, params = where_clause(f)
    total = conn.execute(text(f"SELECT {_COUNTS} FROM reports r WHERE {where}"), params)
    rows = conn.execute(
        text(
            f"SELECT r.theme, r.category, {_COUNTS} FROM reports r WHERE {where} "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
        ),
        params,
    ).mappings()
    by_category = []
    for r in rows:
        cat = taxonomy.category(r["theme"], r["category"])
        by_category.append(
            {
                "theme": r["theme"],
                "category": r["category"],
                "zh": cat.zh if cat else r["category"],
                **_with_rates(dict(r)),
            }
        )
    return _with_rates(dict(total.mappings().one())), by_category
