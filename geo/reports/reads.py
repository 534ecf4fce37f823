"""Reads of reports of sensitive themes shown unmasked: each request that shows at least one is
one `personal_data.read` entry in the audit log (a description names a resident, the reporter
is a person), written in the read's transaction; a request that shows none writes nothing.

Only readers with the right (`Principal.sees_sensitive_reports`) ever see one unmasked, so
ordinary reads, and every read by the other roles, cost no audit statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Connection, text

from geo.identity import audit
from geo.identity.principal import Principal
from geo.identity.scope import ReportScope
from geo.reports.fragments import masked_binds
from geo.reports.queries import ReportFilter, where_clause

# The ids an entry lists; the count says how many were shown in all (an export of 25,000).
MAX_IDS = 500


def unmasked_themes(scope: ReportScope, sensitive: Sequence[str]) -> tuple[str, ...]:
    """Return the sensitive themes that `scope` sees unmasked (none for roles without the
    right)."""
    return tuple(t for t in sensitive if t not in scope.masked_themes)


def record_report(
    conn: Connection,
    who: Principal,
    scope: ReportScope,
    sensitive: Sequence[str],
    report: Mapping,
) -> bool:
    """Record the read of one report (`id`, `theme`) when it is sensitive and shown unmasked;
    return whether an entry was written."""
    if report["theme"] not in unmasked_themes(scope, sensitive):
        return False
    audit.record(conn, who, audit.PERSONAL_DATA_READ, "report", report["id"], people=1)
    return True


def record_reports(
    conn: Connection,
    who: Principal,
    scope: ReportScope,
    sensitive: Sequence[str],
    shown: Iterable[tuple[object, str]],
) -> bool:
    """Record the read of a list of reports ((id, theme) pairs) in one entry when any is
    sensitive and shown unmasked; return whether an entry was written."""
    themes = unmasked_themes(scope, sensitive)
    if not themes:
        return False
    ids = [str(rid) for rid, theme in shown if theme in themes]
    if not ids:
        return False
    _record_many(conn, who, ids, len(ids))
    return True


def record_export(
    conn: Connection, who: Principal, f: ReportFilter, sensitive: Sequence[str]
) -> bool:
    """Record the read of every sensitive report `f` matches and shows unmasked (an export),
    counted before it streams; return whether an entry was written."""
    themes = unmasked_themes(f.scope, sensitive)
    if f.theme is not None:
        themes = tuple(t for t in themes if t == f.theme)
    if not themes:
        return False
    where, params = where_clause(f)
    params.update(masked_binds(f.scope))
    # One round trip: the newest ids and, by the window, how many match in all.
    rows = conn.execute(
        text(
            f"""
            SELECT r.id, count(*) OVER () AS n FROM reports r
            WHERE {where} AND r.theme = ANY(:read_themes)
            ORDER BY r.reported_at DESC, r.id DESC LIMIT :read_cap
            """
        ),
        {**params, "read_themes": list(themes), "read_cap": MAX_IDS},
    ).all()
    if not rows:
        return False
    _record_many(conn, who, [str(r.id) for r in rows], int(rows[0].n))
    return True


def _record_many(conn: Connection, who: Principal, ids: list[str], count: int) -> None:
    listed = ids[:MAX_IDS]
    details = {"reports": listed, "count": count, "listed": len(listed)}
    audit.record(conn, who, audit.PERSONAL_DATA_READ, "reports", changes=details, people=count)
