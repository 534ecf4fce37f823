"""A letter's scope: the department it is addressed to, the part of its remit analysed (a
campaign, a theme, districts) and the period; checked, completed and turned into the report
filter every part of the analysis reads.

A department's remit is the categories the routing table in force sends it; its reports are
those routed or dispatched to it (`reports.department`), so a report re-dispatched to another
department counts for that one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from geo.errors import Forbidden, InvalidInput
from geo.identity.principal import Principal
from geo.identity.scope import ReportScope
from geo.reports import taxonomy
from geo.reports.queries import ReportFilter
from geo.settings import Settings
from geo.vocabulary import Role
from geo.windows import EARLIEST, check_window


@dataclass(frozen=True)
class LetterScope:
    """What a letter analyses: one department's reports, optionally of one campaign, one theme
    and some districts, reported in [since, until)."""

    department: str
    campaign: str | None = None
    theme: str | None = None
    districts: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    def as_dict(self) -> dict:
        """Return the scope as stored and answered."""
        return {
            "department": self.department,
            "campaign": self.campaign,
            "theme": self.theme,
            "districts": list(self.districts),
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
        }


def remit(department: str, overrides: dict[str, str]) -> list[taxonomy.Category]:
    """Return the categories the routing table in force sends to `department`."""
    return [
        c
        for t in taxonomy.THEMES
        for c in t.categories
        if taxonomy.department(t.code, c.code, overrides) == department
    ]


def theme_of(category: taxonomy.Category) -> str:
    """Return the code of the theme a category belongs to."""
    return next(t.code for t in taxonomy.THEMES if category in t.categories)


def resolve(
    conn: Connection, asked: LetterScope, who: Principal, settings: Settings
) -> LetterScope:
    """Return the scope checked (InvalidInput saying what to change, Forbidden outside a
    district dispatcher's districts) with its period filled in: a campaign's dates, else the
    last `letters.default_days` days; never past now."""
    overrides = settings.reports.departments
    known = taxonomy.departments(overrides)
    if asked.department not in known:
        raise InvalidInput(
            f"department: {asked.department!r} is not in the routing table; one of: "
            + ", ".join(sorted(known))
        )
    if asked.theme is not None:
        themes = {theme_of(c) for c in remit(asked.department, overrides)}
        if asked.theme not in themes:
            raise InvalidInput(
                f"theme: {asked.department} has no category of theme {asked.theme!r} in its "
                f"remit; its themes: {', '.join(sorted(themes))}"
            )
    districts = _districts(conn, asked.districts, who)
    since, until = _period(conn, asked, settings)
    return replace(asked, districts=districts, since=since, until=until)


def _districts(conn: Connection, asked: tuple[str, ...], who: Principal) -> tuple[str, ...]:
    mine = tuple(who.districts) if who.role == Role.DISPATCHER else ()
    chosen = tuple(dict.fromkeys(asked)) or mine
    if mine and not set(chosen) <= set(mine):
        outside = ", ".join(sorted(set(chosen) - set(mine)))
        raise Forbidden(
            f"you dispatch for districts {', '.join(mine)}: a letter of yours covers those "
            f"only, not {outside}"
        )
    if chosen:
        stored = set(
            conn.execute(
                text(
                    "SELECT code FROM areas WHERE level = 'district' AND code = ANY(:c) "
                    "UNION SELECT district_code FROM grids WHERE district_code = ANY(:c)"
                ),
                {"c": list(chosen)},
            ).scalars()
        )
        unknown = [d for d in chosen if d not in stored]
        if unknown:
            raise InvalidInput(f"districts: no district {', '.join(unknown)} among the grids")
    return tuple(sorted(chosen))


def _period(conn: Connection, asked: LetterScope, settings: Settings) -> tuple[datetime, datetime]:
    now = conn.execute(text("SELECT now()")).scalar_one()
    since, until = asked.since, asked.until
    check_window(since, until)
    if asked.campaign is not None:
        row = conn.execute(
            text("SELECT starts_on, ends_on FROM campaigns WHERE code = :c"), {"c": asked.campaign}
        ).one_or_none()
        if row is None:
            raise InvalidInput(f"campaign: no campaign {asked.campaign!r} is stored")
        zone = ZoneInfo(settings.worktime.timezone)
        today = now.astimezone(zone).date()
        first = max(row.starts_on, EARLIEST.date())
        since = since or datetime.combine(first, time(), zone)
        until = until or datetime.combine(min(row.ends_on, today) + timedelta(days=1), time(), zone)
    until = min(until or now, now)
    since = since or until - timedelta(days=settings.letters.default_days)
    if since >= until:
        raise InvalidInput("since must be before until (and before now)")
    return since.astimezone(UTC), until.astimezone(UTC)


def report_filter(s: LetterScope) -> ReportFilter:
    """Return the filter of the scope's reports (its period included)."""
    return ReportFilter(
        theme=s.theme,
        campaign=s.campaign,
        department=s.department,
        since=s.since,
        until=s.until,
        scope=ReportScope(districts=s.districts or None),
    )
