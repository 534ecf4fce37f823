"""SQL conditions on `reports r` that several queries share, written from the vocabulary."""

from __future__ import annotations

from geo.vocabulary import (
    ACTIVE_STATUSES,
    OPEN_STATUSES,
    RESOLVED_STATUSES,
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
