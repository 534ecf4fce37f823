"""Evaluation periods: `2024`, `2024-06` and `2024-Q2` read as [start, end) in local days."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from geo.errors import InvalidInput

_PERIOD = re.compile(r"(\d{4})(?:-(?:(\d{2})|[Qq]([1-4])))?")
FIRST_YEAR, LAST_YEAR = 2000, 2100


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone)


def _next_month(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1)


def parse(text: str, timezone: str) -> tuple[datetime, datetime]:
    """Return (since, until) of a year (`2024`), month (`2024-06`) or quarter (`2024-Q2`),
    from local midnight to local midnight in `timezone`; InvalidInput for anything else."""
    found = _PERIOD.fullmatch(text.strip())
    if found is None:
        raise InvalidInput(
            f"period {text!r} is not a year, month or quarter: write 2024, 2024-06 or 2024-Q2 "
            "(or give since and until)"
        )
    year = int(found[1])
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidInput(f"period {text!r}: the year must lie in {FIRST_YEAR}-{LAST_YEAR}")
    zone = ZoneInfo(timezone)
    if found[2] is not None:
        month = int(found[2])
        if not 1 <= month <= 12:
            raise InvalidInput(f"period {text!r}: the month must be 01 to 12")
        return _midnight(date(year, month, 1), zone), _midnight(_next_month(year, month), zone)
    if found[3] is not None:
        first = 3 * (int(found[3]) - 1) + 1
        start = _midnight(date(year, first, 1), zone)
        return start, _midnight(_next_month(year, first + 2), zone)
    return _midnight(date(year, 1, 1), zone), _midnight(date(year + 1, 1, 1), zone)


def months(since: datetime, until: datetime, timezone: str) -> list[tuple[datetime, datetime]]:
    """Return the local calendar months that [since, until) touches, each as [start, end)."""
    zone = ZoneInfo(timezone)
    local = since.astimezone(zone)
    year, month = local.year, local.month
    out = []
    while True:
        start = _midnight(date(year, month, 1), zone)
        if start >= until:
            break
        nxt = _next_month(year, month)
        out.append((start, _midnight(nxt, zone)))
        year, month = nxt.year, nxt.month
    return out


def months_back(until: datetime, count: int, timezone: str) -> datetime:
    """Return the local midnight starting the month `count - 1` months before `until`'s (0:
    the month after it)."""
    local = until.astimezone(ZoneInfo(timezone))
    index = local.year * 12 + local.month - 1 - (count - 1)
    return _midnight(date(index // 12, index % 12 + 1, 1), ZoneInfo(timezone))
