"""The periods a request may ask about (`since`, `until`), checked once for every route and
the letters' scope."""

from __future__ import annotations

from datetime import datetime

from geo.errors import InvalidInput

# riskgrid keeps nothing older, and year 1 at +14:00 or 9999 at -12:00 is no time in UTC (an
# overflow, not an answer). Read on the clock of the offset sent: 2000-01-01T00:00+08:00
# (1999-12-31 in UTC) starts the range, and 2101-01-01T00:00 ends it (an `until` is
# exclusive), whatever the offset.
EARLIEST = datetime(2000, 1, 1)
LATEST = datetime(2101, 1, 1)


def check_window(since: datetime | None, until: datetime | None) -> None:
    """Refuse (InvalidInput) a time without an offset, outside the years 2000-2100 on its own
    clock, or a `since` not before `until`."""
    for name, t in (("since", since), ("until", until)):
        if t is None:
            continue
        if t.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone offset, e.g. 2024-08-22T00:00:00+08:00")
        if not EARLIEST <= t.replace(tzinfo=None) <= LATEST:
            raise InvalidInput(
                f"{name} must lie between {EARLIEST:%Y-%m-%d} and 2100-12-31 (an until may "
                f"be {LATEST:%Y-%m-%d}T00:00, the end of 2100), e.g. 2024-08-22T00:00:00+08:00"
            )
    if since is not None and until is not None and since >= until:
        raise InvalidInput("since must be before until")
