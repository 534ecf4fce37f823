"""Which reports a principal may see, as a SQL condition on `reports r` (rights are applied in
the query, never by filtering answers afterwards).

- admin, planner: every report; dispatcher, coordinator: their districts (none bound: all);
- department: the reports dispatched to their department (from then on; one they returned
  stays theirs to see until it is dispatched elsewhere);
- worker: the reports they sent, and those in their grids.

For roles without the right to them, reports of sensitive themes are masked: no description,
no reporter, and the grid's representative point instead of the exact one.
"""

from __future__ import annotations

from dataclasses import dataclass

from geo.identity.principal import Principal
from geo.vocabulary import ReportStatus, Role, sql_list

S = ReportStatus
DISPATCHED_ON = sql_list((S.DISPATCHED, S.IN_PROGRESS, S.RETURNED, S.RESOLVED, S.VERIFIED))


@dataclass(frozen=True)
class ReportScope:
    """What a principal may see of reports; hashable, so it is part of every cache key."""

    districts: tuple[str, ...] | None = None  # None: any district
    department: str | None = None
    grids: tuple[str, ...] | None = None  # with reporter_id: a worker's own and their grids'
    reporter_id: int | None = None
    masked_themes: tuple[str, ...] = ()  # sensitive themes this principal sees masked

    @property
    def unrestricted(self) -> bool:
        """Whether every report is visible (the condition is TRUE)."""
        return (
            self.districts is None
            and self.department is None
            and self.grids is None
            and self.reporter_id is None
        )


EVERYTHING = ReportScope()
NOTHING = ReportScope(grids=(), reporter_id=-1)


def report_scope(who: Principal, sensitive_themes: tuple[str, ...]) -> ReportScope:
    """Return the reports `who` may see, and which themes they see masked."""
    masked = () if who.sees_sensitive_reports else tuple(sensitive_themes)
    if who.role in (Role.ADMIN, Role.PLANNER):
        return ReportScope(masked_themes=masked)
    if who.role in (Role.DISPATCHER, Role.COORDINATOR):
        return ReportScope(districts=who.districts or None, masked_themes=masked)
    if who.role == Role.DEPARTMENT:
        return ReportScope(department=who.department or "", masked_themes=masked)
    if who.role == Role.WORKER:
        return ReportScope(grids=who.grids, reporter_id=who.user_id or -1, masked_themes=masked)
    return NOTHING


def scope_condition(s: ReportScope) -> tuple[str, dict]:
    """Return the SQL condition on `reports r` and its bind values."""
    if s.unrestricted:
        return "TRUE", {}
    c: list[str] = []
    p: dict[str, object] = {}
    if s.districts is not None:
        c.append("r.district_code = ANY(:scope_districts)")
        p["scope_districts"] = list(s.districts)
    if s.department is not None:
        # Routed to them and handed over: a report waiting to be accepted is not theirs yet.
        c.append(f"r.department = :scope_department AND r.status IN {DISPATCHED_ON}")
        p["scope_department"] = s.department
    if s.grids is not None or s.reporter_id is not None:
        c.append("(r.reporter_id = :scope_reporter OR r.grid_code = ANY(:scope_grids))")
        p["scope_reporter"] = s.reporter_id if s.reporter_id is not None else -1
        p["scope_grids"] = list(s.grids or ())
    return "(" + " AND ".join(c) + ")", p
