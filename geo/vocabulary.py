"""The words riskgrid stores: statuses, levels, kinds, roles, assignment methods.

Each is a StrEnum, the one place its values are written: the database's CHECK constraints,
the SQL that filters on them (`sql_list`) and the API's parameter types all derive from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class ReportStatus(StrEnum):
    """Where a report stands in the closed loop."""

    REPORTED = "reported"  # 上报
    ACCEPTED = "accepted"  # 立案
    DISPATCHED = "dispatched"  # 派遣
    IN_PROGRESS = "in_progress"  # 处置中
    RETURNED = "returned"  # 回退: the department says it is not theirs
    RESOLVED = "resolved"  # 处置完成
    VERIFIED = "verified"  # 核查通过, closed
    REJECTED = "rejected"  # 不予立案
    DUPLICATE = "duplicate"


S = ReportStatus
# Stages that have a deadline (a report is still open in them), and the closed states.
OPEN_STATUSES = (S.REPORTED, S.ACCEPTED, S.DISPATCHED, S.IN_PROGRESS, S.RETURNED, S.RESOLVED)
CLOSED_STATUSES = (S.VERIFIED, S.REJECTED, S.DUPLICATE)
# A hazard still out there: not yet resolved, not closed.
ACTIVE_STATUSES = (S.REPORTED, S.ACCEPTED, S.DISPATCHED, S.IN_PROGRESS, S.RETURNED)
# Resolved, verified or not: what resolution rates count.
RESOLVED_STATUSES = (S.RESOLVED, S.VERIFIED)


class PhotoKind(StrEnum):
    """What a photo of a report shows."""

    SITE = "site"  # 现场
    BEFORE = "before"
    AFTER = "after"  # 处置后
    CHECK = "check"  # 核查


class NotificationKind(StrEnum):
    """What a notification (and the webhook event it goes out as) tells about a report or a
    risk letter (风险提示函, the `letter_` kinds)."""

    DISPATCHED = "dispatched"  # 派遣 to your department
    ASSIGNED = "assigned"  # you are named its handler
    RETURNED = "returned"  # 回退: a department says it is not theirs
    CHECK_TASK = "check_task"  # 核查任务: resolved, to be checked on site
    OVERDUE = "overdue"  # past the stage's time limit
    SUPERVISED = "supervised"  # 督办
    RESOLVED = "resolved"  # 处置完成: the report you sent is dealt with
    ESCALATED = "escalated"  # overdue past the second limit: to the district's dispatchers
    LETTER_ISSUED = "letter_issued"  # 印发: a letter to your department
    LETTER_ACKNOWLEDGED = "letter_acknowledged"  # 签收 by the department
    LETTER_REPLIED = "letter_replied"  # 回复: the department's 整改情况, to be closed (办结)
    LETTER_CLOSED = "letter_closed"  # 办结 by the sender
    LETTER_OVERDUE = "letter_overdue"  # no reply by its due time


# The kinds that tell about a letter (notifications.letter_id); the others about a report.
LETTER_KINDS = tuple(k for k in NotificationKind if k.startswith("letter_"))


class ResolutionLevel(StrEnum):
    """The administrative level at which a report was resolved."""

    GRID = "grid"
    COMMUNITY = "community"
    STREET = "street"
    DISTRICT = "district"
    CITY = "city"


AT_OR_BELOW_STREET = (ResolutionLevel.GRID, ResolutionLevel.COMMUNITY, ResolutionLevel.STREET)


class AssignmentMethod(StrEnum):
    """How a report found its grid."""

    EXCLUSIVE = "exclusive"
    INSIDE = "inside"
    NEAREST = "nearest"
    UNASSIGNED = "unassigned"
    MANUAL = "manual"


class GridKind(StrEnum):
    """Comprehensive grids tile the city; exclusive (专属) grids lie over them."""

    COMPREHENSIVE = "comprehensive"
    EXCLUSIVE = "exclusive"


class AreaLevel(StrEnum):
    """The administrative hierarchy above the grids."""

    CITY = "city"
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"


class RiskKind(StrEnum):
    """What a risk layer's features are."""

    FLOOD_ZONE = "flood_zone"
    RIVER = "river"
    RESERVOIR = "reservoir"
    LOW_LYING = "low_lying"


LEVELLED_RISK_KINDS = (RiskKind.FLOOD_ZONE, RiskKind.LOW_LYING)  # features carry a level 1-3
WATER_KINDS = (RiskKind.RIVER, RiskKind.RESERVOIR)  # what "distance to water" measures to


class Role(StrEnum):
    """What a user may see and do (the scope comes with the user: grids, districts, department)."""

    ADMIN = "admin"
    DISPATCHER = "dispatcher"  # 综治中心 / 指挥中心, optionally bound to districts
    DEPARTMENT = "department"  # 职能部门 staff, bound to one department of the routing table
    COORDINATOR = "coordinator"  # flood season, optionally bound to districts
    PLANNER = "planner"  # analysis, no personal data
    WORKER = "worker"  # 网格员, bound to grids


class TokenKind(StrEnum):
    """A login's token (short-lived) or an integration's (a script, a gateway)."""

    SESSION = "session"
    INTEGRATION = "integration"


def sql_list(values: Iterable[StrEnum]) -> str:
    """Return `('a', 'b')`: a SQL list literal of vocabulary values (never of user input)."""
    items = [str(v) for v in values]
    assert all(v.replace("_", "").isalnum() for v in items)  # noqa: S101 - enum values only
    return "(" + ", ".join(f"'{v}'" for v in items) + ")"
