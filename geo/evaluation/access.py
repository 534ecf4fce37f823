"""Who may read which evaluation: planners and admins every unit; dispatchers the units of
their districts (the reports of their districts, as everywhere); a department its own row; a
grid worker theirs; anyone else nothing.

A department's and a worker's own row is computed among all units (the units' pooled rate
and spread are what its shrunken estimate and rank are measured against), and from all the
loop's records: the dispatches a department returned stay its 回退, although the reports
went on to another department and out of its sight.
"""

from __future__ import annotations

from dataclasses import dataclass

from geo.errors import Forbidden
from geo.evaluation.query import By
from geo.identity.principal import Principal
from geo.identity.scope import EVERYTHING, ReportScope, report_scope
from geo.vocabulary import Role


@dataclass(frozen=True)
class View:
    """The reports an evaluation is computed from, and the one unit shown (None: all)."""

    scope: ReportScope
    only: str | None = None


def view(who: Principal, by: By, sensitive_themes: tuple[str, ...]) -> View:
    """Return what `who` may see of an evaluation by `by`; Forbidden for anything else."""
    if who.role in (Role.ADMIN, Role.PLANNER):
        return View(EVERYTHING)
    if who.role == Role.DISPATCHER:
        return View(report_scope(who, sensitive_themes))
    if who.role == Role.DEPARTMENT:
        if by != By.DEPARTMENT:
            raise Forbidden(
                "a department user sees its own department's evaluation: ask for by=department"
            )
        return View(EVERYTHING, who.department or "")
    if who.role == Role.WORKER:
        if by != By.WORKER:
            raise Forbidden("a grid worker sees their own evaluation: ask for by=worker")
        return View(EVERYTHING, str(who.user_id))
    raise Forbidden(
        "the evaluation (综合评价) is for planners, dispatchers, departments (their own), grid "
        f"workers (their own) and admins; you are logged in as {who.role or 'no role'}"
    )
