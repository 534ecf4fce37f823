"""What an evaluation is asked for: its units and its period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

# What the statements read when no `since` is given: every event there is.
EPOCH_START = datetime(1, 1, 1, tzinfo=UTC)


class By(StrEnum):
    """What an evaluation's units are."""

    DEPARTMENT = "department"
    DISTRICT = "district"
    STREET = "street"
    WORKER = "worker"


@dataclass(frozen=True)
class Query:
    """What an evaluation is asked for; `until` None means now."""

    by: By
    since: datetime | None = None
    until: datetime | None = None
    theme: str | None = None
    campaign: str | None = None
