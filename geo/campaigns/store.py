"""Campaigns as stored: their definition (theme, categories, period, districts, partner
departments, checklist, target register), created, edited and moved along their lifecycle.

Every write is audited; an edit records the fields it changed ([before, after]). Once a
campaign has been launched its theme and target register are fixed, and its checklist keeps
the items visits have answered (geo.campaigns.checklist.check_edit); a closed one is kept
as it ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Connection, text

from geo.campaigns import checklist, targets
from geo.campaigns.lifecycle import (
    CampaignStatus,
    apply_move,
    check_manager,
    check_move,
    moves_from,
)
from geo.errors import Conflict, InvalidInput, NotFound
from geo.identity import audit
from geo.identity.principal import Principal
from geo.reports import taxonomy
from geo.vocabulary import AreaLevel

# What defines a campaign (what a creation sends and an edit may change, but the code).
DEFINITION = (
    "name",
    "theme",
    "categories",
    "starts_on",
    "ends_on",
    "districts",
    "departments",
    "checklist",
    "targets",
    "description",
)
FIXED_ONCE_LAUNCHED = ("theme", "targets")
# A campaign runs days to months (创安一号: 20 days); a year at most. Its progress has a row per
# day and district: a period of 10,000 years made 1.5 million rows and 10 s per read.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)
MAX_DAYS = 366
_JSON = ("checklist", "targets")

_SELECT = """
SELECT c.code, c.name, c.theme, c.starts_on, c.ends_on, c.description, c.status, c.categories,
       c.districts, c.departments, c.checklist, c.targets, u.username AS created_by,
       c.created_at, c.launched_at, c.paused_at, c.closed_at, c.updated_at
FROM campaigns c LEFT JOIN users u ON u.id = c.created_by
"""


def answer(row: Mapping[str, Any]) -> dict:
    """Return a campaign as answered: its definition, status, times and the moves open now."""
    out = dict(row)
    out["moves"] = moves_from(out["status"])
    return out


def list_campaigns(
    conn: Connection, status: str | None = None, theme: str | None = None
) -> list[dict]:
    """Return the campaigns (optionally of one status or theme), oldest first."""
    rows = conn.execute(
        text(
            f"{_SELECT} WHERE (CAST(:status AS text) IS NULL OR c.status = :status) "
            "AND (CAST(:theme AS text) IS NULL OR c.theme = :theme) ORDER BY c.starts_on, c.code"
        ),
        {"status": status, "theme": theme},
    ).mappings()
    return [answer(dict(r)) for r in rows]


def exists(conn: Connection, code: str) -> bool:
    """Whether a campaign with `code` is stored."""
    found = conn.execute(text("SELECT 1 FROM campaigns WHERE code = :c"), {"c": code}).first()
    return found is not None


def get_row(conn: Connection, code: str, lock: bool = False) -> dict:
    """Return one campaign's row; NotFound when there is none. `lock` holds it (FOR UPDATE)."""
    row = (
        conn.execute(
            text(f"{_SELECT} WHERE c.code = :code {'FOR UPDATE OF c' if lock else ''}"),
            {"code": code},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no campaign with code {code!r} among the stored campaigns")
    return dict(row)


def get(conn: Connection, code: str) -> dict:
    """Return one campaign as answered."""
    return answer(get_row(conn, code))


def _districts(conn: Connection) -> dict[str, str]:
    rows = conn.execute(
        text("SELECT code, name FROM areas WHERE level = :level ORDER BY code"),
        {"level": str(AreaLevel.DISTRICT)},
    ).all()
    return {r.code: r.name for r in rows}


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def check_period(starts_on: date, ends_on: date) -> None:
    """Raise InvalidInput unless a campaign's period is ordered, within FIRST_DAY..LAST_DAY and
    at most MAX_DAYS long."""
    for name, day in (("starts_on", starts_on), ("ends_on", ends_on)):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise InvalidInput(
                f"{name} {day} is out of range: a campaign runs within {FIRST_DAY} to {LAST_DAY}"
            )
    if ends_on < starts_on:
        raise InvalidInput(f"ends_on {ends_on} is before starts_on {starts_on}")
    days = (ends_on - starts_on).days + 1
    if days > MAX_DAYS:
        raise InvalidInput(
            f"{starts_on} to {ends_on} is {days:,} days; a campaign runs at most {MAX_DAYS}: "
            "split it into campaigns of a year or less"
        )


def check(conn: Connection, d: dict[str, Any], departments: frozenset[str]) -> dict[str, Any]:
    """Return a campaign definition checked against the taxonomy, the routing table in force
    and the stored districts (InvalidInput saying what to change), lists deduplicated."""
    theme = taxonomy.THEME_BY_CODE.get(d["theme"])
    if theme is None:
        raise InvalidInput(
            f"theme: unknown {d['theme']!r}; one of: {', '.join(taxonomy.THEME_BY_CODE)}"
        )
    own = [c.code for c in theme.categories]
    wrong = [c for c in d["categories"] if c not in own]
    if wrong:
        raise InvalidInput(
            f"categories: {', '.join(wrong)} not of theme {theme.code}; its categories: "
            + ", ".join(own)
        )
    check_period(d["starts_on"], d["ends_on"])
    stored = _districts(conn)
    unknown = [c for c in d["districts"] if c not in stored]
    if unknown:
        known = ", ".join(f"{c} {n}" for c, n in stored.items()) or "none (import boundaries)"
        raise InvalidInput(
            f"districts: {', '.join(unknown)} not stored districts; they are: {known}"
        )
    if not d["districts"]:
        raise InvalidInput("districts: name at least one district the campaign covers")
    strange = [x for x in d["departments"] if x not in departments]
    if strange:
        raise InvalidInput(
            f"departments: {', '.join(strange)} not in the routing table; its departments: "
            + ", ".join(sorted(departments))
        )
    items = checklist.parse(list(d["checklist"]))
    return {
        **d,
        "categories": _unique(d["categories"]),
        "districts": _unique(d["districts"]),
        "departments": _unique(d["departments"]),
        "checklist": [i.as_dict() for i in items],
        "targets": targets.check_spec(d["targets"]),
    }


def _params(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (orjson.dumps(v).decode() if k in _JSON and v is not None else v) for k, v in d.items()
    }


_INSERT = text(
    """
    INSERT INTO campaigns (code, name, theme, categories, starts_on, ends_on, districts,
                           departments, checklist, targets, description, status, created_by)
    VALUES (:code, :name, :theme, :categories, :starts_on, :ends_on, :districts, :departments,
            CAST(:checklist AS jsonb), CAST(:targets AS jsonb), :description, 'draft', :by)
    ON CONFLICT (code) DO NOTHING
    """
)


def _same(row: Mapping[str, Any], d: Mapping[str, Any]) -> bool:
    return all(row[k] == d[k] for k in DEFINITION)


def create(
    conn: Connection, who: Principal, d: dict[str, Any], departments: frozenset[str]
) -> tuple[dict, bool]:
    """Store a new draft campaign; return (campaign, created). The same definition sent again
    answers the stored one; another under a taken code is a Conflict."""
    check_manager(who, d["districts"])
    d = check(conn, d, departments)
    inserted = conn.execute(_INSERT, {**_params(d), "by": who.user_id}).rowcount
    row = get_row(conn, d["code"])
    if not inserted:
        if _same(row, d):
            return answer(row), False
        raise Conflict(
            f"campaign code {d['code']!r} is taken ({row['name']}, {row['status']}); choose "
            "another code, or PATCH that campaign"
        )
    changes = {k: [None, d[k]] for k in DEFINITION if d[k] not in (None, [], "")}
    audit.record(conn, who, "campaign.create", "campaign", d["code"], changes)
    return answer(row), True


def update(
    conn: Connection,
    who: Principal,
    code: str,
    patch: dict[str, Any],
    departments: frozenset[str],
) -> dict:
    """Apply an edit (the fields sent) and return the campaign; audited with the fields it
    changed. Refused (Conflict) on a closed campaign, and on a launched or paused one for
    its theme, its target register and answered checklist items."""
    row = get_row(conn, code, lock=True)
    check_manager(who, _unique([*row["districts"], *patch.get("districts", [])]))
    status = row["status"]
    if status == CampaignStatus.CLOSED:
        raise Conflict(f"campaign {code} is closed: it is kept as it ran")
    merged = check(conn, {**{k: row[k] for k in DEFINITION}, **patch}, departments)
    changed = {k: [row[k], merged[k]] for k in DEFINITION if row[k] != merged[k]}
    if status != CampaignStatus.DRAFT:
        fixed = [k for k in FIXED_ONCE_LAUNCHED if k in changed]
        if fixed:
            raise Conflict(
                f"campaign {code} is {status}: its {' and '.join(fixed)} stay as launched; "
                "start a new campaign for another"
            )
        checklist.check_edit(
            checklist.parse(row["checklist"]), checklist.parse(merged["checklist"])
        )
    if not changed:
        return answer(row)
    sets = ", ".join(f"{k} = CAST(:{k} AS jsonb)" if k in _JSON else f"{k} = :{k}" for k in changed)
    conn.execute(
        text(f"UPDATE campaigns SET {sets}, updated_at = now() WHERE code = :code"),
        {**_params({k: merged[k] for k in changed}), "code": code},
    )
    audit.record(conn, who, "campaign.update", "campaign", code, {**changed})
    return get(conn, code)


def move(conn: Connection, who: Principal, code: str, name: str) -> dict:
    """Make the lifecycle move `name` (launch, pause, close) and return the campaign; a
    launch takes the household targets. Conflict listing the possible moves otherwise."""
    row = get_row(conn, code, lock=True)
    check_manager(who, row["districts"])
    m = check_move(code, row["status"], name)
    if name == "launch" and not row["checklist"]:
        raise Conflict(f"campaign {code} has no checklist: add its items before launching it")
    apply_move(conn, who, code, row["status"], m)
    if name == "launch":
        taken = targets.take_households(conn, row)
        if taken:
            audit.record(
                conn, who, "campaign.targets.take", "campaign", code, {"households": [None, taken]}
            )
    return get(conn, code)


_UPSERT = text(
    """
    INSERT INTO campaigns (code, name, theme, starts_on, ends_on, description, status,
                           categories, districts, departments, checklist, targets,
                           launched_at, closed_at)
    VALUES (:code, :name, :theme, :starts_on, :ends_on, :description, :status, :categories,
            :districts, :departments, CAST(:checklist AS jsonb), CAST(:targets AS jsonb),
            :launched_at, :closed_at)
    ON CONFLICT (code) DO UPDATE SET
      name = EXCLUDED.name, theme = EXCLUDED.theme, starts_on = EXCLUDED.starts_on,
      ends_on = EXCLUDED.ends_on, description = EXCLUDED.description, status = EXCLUDED.status,
      categories = EXCLUDED.categories, districts = EXCLUDED.districts,
      departments = EXCLUDED.departments, checklist = EXCLUDED.checklist,
      targets = EXCLUDED.targets, launched_at = EXCLUDED.launched_at,
      closed_at = EXCLUDED.closed_at, updated_at = now()
    WHERE (campaigns.name, campaigns.theme, campaigns.starts_on, campaigns.ends_on,
           campaigns.description, campaigns.status, campaigns.categories, campaigns.districts,
           campaigns.departments, campaigns.checklist, campaigns.targets, campaigns.launched_at,
           campaigns.closed_at)
      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.theme, EXCLUDED.starts_on, EXCLUDED.ends_on,
                        EXCLUDED.description, EXCLUDED.status, EXCLUDED.categories,
                        EXCLUDED.districts, EXCLUDED.departments, EXCLUDED.checklist,
                        EXCLUDED.targets, EXCLUDED.launched_at, EXCLUDED.closed_at)
    """
)


def upsert_campaigns(conn: Connection, campaigns: Iterable[dict]) -> int:
    """Insert or update whole campaigns by code (the demo's, run to their dates: status and
    launch and close times given); return how many rows changed."""
    changed = 0
    for c in campaigns:
        row = {"launched_at": None, "closed_at": None, "targets": None, **c}
        changed += conn.execute(_UPSERT, _params(row)).rowcount
    return changed
