"""A campaign's status and the moves between them: draft → launched ⇄ paused → closed.

Launching takes the household targets from the register (geo.campaigns.targets); a launched
campaign takes visits. Who manages campaigns: dispatchers (those bound to districts, the
campaigns that lie within them) and admins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sqlalchemy import Connection, text

from geo.errors import Conflict, Forbidden
from geo.identity import audit
from geo.identity.principal import Principal
from geo.vocabulary import Role


class CampaignStatus(StrEnum):
    """Where a campaign stands."""

    DRAFT = "draft"  # being prepared: edited freely, takes no visits
    LAUNCHED = "launched"  # running: grid workers' visits are taken
    PAUSED = "paused"  # halted for a while (a flood warning, a holiday): no visits
    CLOSED = "closed"  # over: kept as it ran, nothing changes any more


C = CampaignStatus
MANAGE_ROLES: tuple[Role, ...] = (Role.DISPATCHER, Role.ADMIN)


@dataclass(frozen=True)
class Move:
    """A move of the lifecycle: its name (the route's last part), from where, to where."""

    name: str
    frm: tuple[CampaignStatus, ...]
    to: CampaignStatus
    stamp: str  # the column that records when it was last made


MOVES: tuple[Move, ...] = (
    Move("launch", (C.DRAFT, C.PAUSED), C.LAUNCHED, "launched_at"),
    Move("pause", (C.LAUNCHED,), C.PAUSED, "paused_at"),
    Move("close", (C.LAUNCHED, C.PAUSED), C.CLOSED, "closed_at"),
)
MOVE_BY_NAME = {m.name: m for m in MOVES}


def moves_from(status: str) -> list[str]:
    """Return the names of the moves a campaign in `status` can make, in lifecycle order."""
    return [m.name for m in MOVES if status in m.frm]


def status_on(starts_on: date, ends_on: date, today: date) -> CampaignStatus:
    """Return the status a campaign run to its dates has on `today` (the demo's campaigns)."""
    if today > ends_on:
        return C.CLOSED
    return C.LAUNCHED if today >= starts_on else C.DRAFT


def check_manager(who: Principal, districts: list[str] | tuple[str, ...]) -> None:
    """Raise Forbidden unless `who` manages campaigns over `districts`."""
    if who.role not in MANAGE_ROLES:
        raise Forbidden(
            "campaigns are created and run by dispatchers and admins; you are logged in as "
            f"{who.role or 'no role'}"
        )
    outside = sorted(set(districts) - set(who.districts)) if who.districts else []
    if who.role == Role.DISPATCHER and outside:
        raise Forbidden(
            f"the campaign covers district(s) {', '.join(outside)} outside yours "
            f"({', '.join(who.districts)}); a city-wide dispatcher or an admin runs it"
        )


def check_move(code: str, status: str, name: str) -> Move:
    """Return the move `name` of a campaign in `status`; Conflict listing the possible ones."""
    move = MOVE_BY_NAME[name]
    if status not in move.frm:
        possible = moves_from(status)
        raise Conflict(
            f"campaign {code} is {status}: it cannot {name}; possible now: "
            + (", ".join(possible) if possible else "none (a closed campaign is kept as it ran)")
        )
    return move


def apply_move(conn: Connection, who: Principal, code: str, status: str, move: Move) -> None:
    """Record `move` on the campaign (status, its time stamp) and in the audit log."""
    conn.execute(
        text(
            f"UPDATE campaigns SET status = :to, {move.stamp} = now(), updated_at = now() "
            "WHERE code = :code"
        ),
        {"to": str(move.to), "code": code},
    )
    audit.record(
        conn, who, f"campaign.{move.name}", "campaign", code, {"status": [status, move.to]}
    )
