"""A campaign's progress day by day and district by district: the figures a bulletin quotes.

Per local day (the configured zone, Asia/Shanghai by default) and district:
- visits, leaflets, stickers: the visits made that day (`visited_at`) in that district;
- relocations, relocated_households: the checklist items marked with that tally, summed
  over those visits (geo.campaigns.checklist.Tally; 0 when the checklist has no such item);
  the database keeps these counts per quarter hour as visits are stored;
- hazards_found: the campaign's reports (tagged with it, or found on one of its visits, which
  tags it too)
  reported that day; one later merged as a duplicate is not counted again (the screening's
  figure: a report not accepted, 不予立案, was still found and still counts);
- hazards_resolved: those of them resolved or verified now, on the day of their last step
  into resolved (a report reworked and resolved again counts once, on the later day).

Every district of the campaign gets one row per day from its start (or its first activity,
if earlier) to its last activity or today, whichever is later, within its end, the last
MAX_DAYS days at most; `cumulative` holds each district's running totals.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, text

from geo.errors import InvalidInput
from geo.vocabulary import RESOLVED_STATUSES, ReportStatus, sql_list

FIGURES = (
    "visits",
    "hazards_found",
    "hazards_resolved",
    "relocations",
    "relocated_households",
    "leaflets",
    "stickers",
)
NOT_HAZARDS = (ReportStatus.DUPLICATE,)  # the same hazard again
# Days listed per district: a campaign runs a year at most (geo.campaigns.store.MAX_DAYS), and
# its visits and reports come from a little before and after; the days before are summed.
MAX_DAYS = 1100

# Read from the counts the database keeps per quarter hour (migration 0008's trigger on
# visits): a quarter hour lies within one local day in every zone in use.
_VISITS = text(
    """
    SELECT (c.bucket AT TIME ZONE :tz)::date AS day, NULLIF(c.district_code, '') AS district,
           sum(c.visits) AS visits, sum(c.leaflets) AS leaflets, sum(c.stickers) AS stickers,
           sum(c.relocations) AS relocations, sum(c.relocated_households) AS relocated_households
    FROM visit_counts c
    WHERE c.campaign_code = :c AND (CAST(:district AS text) IS NULL OR c.district_code = :district)
    GROUP BY 1, 2
    """
)

_KEPT = f"""r.status NOT IN {sql_list(NOT_HAZARDS)}
    AND (CAST(:district AS text) IS NULL OR r.district_code = :district)"""
_REPORTS = text(
    f"""
    WITH linked AS MATERIALIZED (
      -- A report found on a visit carries the visit's campaign (geo.campaigns.visits, bulk).
      SELECT r.id, r.district_code, r.reported_at, r.status, r.status_changed_at
      FROM reports r WHERE r.campaign_code = :c AND {_KEPT}
    )
    SELECT 'hazards_found' AS figure, (l.reported_at AT TIME ZONE :tz)::date AS day,
           l.district_code AS district, count(*) AS n
    FROM linked l GROUP BY 2, 3
    UNION ALL
    SELECT 'hazards_resolved', (e.at AT TIME ZONE :tz)::date, l.district_code, count(*)
    FROM linked l
    CROSS JOIN LATERAL (
      SELECT COALESCE(max(x.at) FILTER (WHERE x.to_status = '{ReportStatus.RESOLVED}'),
                      min(x.at) FILTER (WHERE x.to_status = '{ReportStatus.VERIFIED}'),
                      l.status_changed_at) AS at
      FROM report_events x WHERE x.report_id = l.id
    ) e
    WHERE l.status IN {sql_list(RESOLVED_STATUSES)}
    GROUP BY 2, 3
    """
)


def _zero() -> dict[str, int]:
    return dict.fromkeys(FIGURES, 0)


def progress(
    conn: Connection, campaign: dict, district: str | None, zone: str, today: date
) -> dict[str, Any]:
    """Return `{campaign, district, timezone, totals, days}` of the campaign (one district's
    with `district`); `today` is the local date that bounds a running campaign's days."""
    if district is not None and district not in campaign["districts"]:
        raise InvalidInput(
            f"district {district} is not one of campaign {campaign['code']}'s: "
            + ", ".join(campaign["districts"])
        )
    params = {
        "c": campaign["code"],
        "district": district,
        "tz": zone,
    }
    cells: dict[tuple[date, str | None], dict[str, int]] = defaultdict(_zero)
    for r in conn.execute(_VISITS, params).mappings():
        cell = cells[(r["day"], r["district"])]
        for f in ("visits", "leaflets", "stickers", "relocations", "relocated_households"):
            cell[f] += int(r[f])
    for r in conn.execute(_REPORTS, params).mappings():
        cells[(r["day"], r["district"])][r["figure"]] += int(r["n"])
    districts = [district] if district else list(campaign["districts"])
    return {
        "campaign": campaign["code"],
        "district": district,
        "timezone": zone,
        "totals": _totals(cells),
        "days": _days(cells, districts, campaign, today),
    }


def _totals(cells: dict[tuple[date, str | None], dict[str, int]]) -> dict[str, int]:
    out = _zero()
    for cell in cells.values():
        for f in FIGURES:
            out[f] += cell[f]
    return out


def _days(
    cells: dict[tuple[date, str | None], dict[str, int]],
    districts: list[str],
    campaign: dict,
    today: date,
) -> list[dict]:
    """Return the rows per day and district, zeros filled in, with running totals."""
    seen = [d for d, _ in cells]
    end = max([min(campaign["ends_on"], today), *seen])
    # At most MAX_DAYS rows per district, the latest: earlier days count in the running totals.
    start = max(min([campaign["starts_on"], *seen]), end - timedelta(days=MAX_DAYS - 1))
    names: list[str | None] = list(districts)
    names += sorted({d for _, d in cells if d not in districts}, key=lambda d: d or "")
    running = {d: _zero() for d in names}
    for (day, d), cell in cells.items():
        if day < start:
            for f in FIGURES:
                running[d][f] += cell[f]
    out = []
    day = start
    while day <= end:
        for d in names:
            cell = cells.get((day, d)) or _zero()
            for f in FIGURES:
                running[d][f] += cell[f]
            out.append(
                {"day": day.isoformat(), "district": d, **cell, "cumulative": dict(running[d])}
            )
        day += timedelta(days=1)
    return out
