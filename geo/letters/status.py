"""A risk letter's loop: draft → issued → acknowledged → replied → closed, and who moves it.

The one table of moves: the checks, the answers' `moves` and the 409 messages derive from it.
The sender (a dispatcher, or an admin) drafts, edits, issues and closes; the department the
letter is addressed to acknowledges and replies. An admin may make any move.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from geo.errors import Conflict, Forbidden
from geo.identity.principal import Principal
from geo.reports.taxonomy import roles_text
from geo.vocabulary import Role


class LetterStatus(StrEnum):
    """Where a letter stands."""

    DRAFT = "draft"  # 草稿: the sender may still edit it
    ISSUED = "issued"  # 已印发: numbered, the reply's time running
    ACKNOWLEDGED = "acknowledged"  # 已签收 by the department
    REPLIED = "replied"  # 已回复: the department reported its rectification (整改情况)
    CLOSED = "closed"  # 已办结 by the sender


class LetterMove(StrEnum):
    """A move of the loop, named as its route is (`POST /api/v1/letters/{id}/<move>`)."""

    ISSUE = "issue"
    ACKNOWLEDGE = "acknowledge"
    REPLY = "reply"
    CLOSE = "close"


L = LetterStatus
SENDERS: tuple[Role, ...] = (Role.DISPATCHER, Role.ADMIN)
RECIPIENTS: tuple[Role, ...] = (Role.DEPARTMENT, Role.ADMIN)
# Waiting for the department's reply: what `overdue` and the reply rate look at.
WAITING: tuple[LetterStatus, ...] = (L.ISSUED, L.ACKNOWLEDGED)


@dataclass(frozen=True)
class Step:
    """A move: from which status to which, and who may make it."""

    frm: LetterStatus
    to: LetterStatus
    roles: tuple[Role, ...]


STEPS: dict[LetterMove, Step] = {
    LetterMove.ISSUE: Step(L.DRAFT, L.ISSUED, SENDERS),
    LetterMove.ACKNOWLEDGE: Step(L.ISSUED, L.ACKNOWLEDGED, RECIPIENTS),
    LetterMove.REPLY: Step(L.ACKNOWLEDGED, L.REPLIED, RECIPIENTS),
    LetterMove.CLOSE: Step(L.REPLIED, L.CLOSED, SENDERS),
}


def moves_from(status: str) -> list[dict]:
    """Return the moves a letter in `status` may make next, with the roles that make them."""
    return [
        {"move": str(m), "roles": [str(r) for r in s.roles]}
        for m, s in STEPS.items()
        if s.frm == status
    ]


def _possible(status: str, department: str) -> str:
    found = [
        f"{m} (by {roles_text(s.roles).replace('a department user', f'a user of {department}')})"
        for m, s in STEPS.items()
        if s.frm == status
    ]
    return "; possible now: " + ", ".join(found) if found else "; it is closed: nothing follows"


def check_move(who: Principal, move: LetterMove, status: str, department: str) -> Step:
    """Return the step of `move`; Conflict when the letter's status has no such move (naming
    the moves it has), Forbidden when `who`'s role does not make it."""
    step = STEPS[move]
    if step.frm != status:
        raise Conflict(f"a letter that is {status} cannot {move}{_possible(status, department)}")
    if who.role not in step.roles:
        raise Forbidden(
            f"{move} is done by {roles_text(step.roles)}; you are logged in as "
            f"{who.role or 'no role'}"
        )
    return step


def check_editable(who: Principal, status: str, department: str) -> None:
    """Raise Conflict unless the letter is a draft (an issued letter is frozen), Forbidden
    unless `who` sends letters."""
    if status != L.DRAFT:
        raise Conflict(
            f"a letter that is {status} is frozen: only a draft is edited"
            f"{_possible(status, department)}"
        )
    if who.role not in SENDERS:
        raise Forbidden(f"drafts are edited by {roles_text(SENDERS)}")
