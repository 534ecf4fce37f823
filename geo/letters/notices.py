"""Who is told when a risk letter moves, and when its reply is overdue: a notification each and
one webhook event, written by `geo.reports.notify.record` (the one way an event is recorded) in
the move's own transaction.

- issued: the users of the department addressed (the letter is theirs to answer);
- acknowledged (签收): the sender who issued it;
- replied: the sender, and the dispatchers who see the letter (its districts' and the city's);
- closed (办结): the department's users;
- reply overdue: the department's users and the sender, found by `sweep` (once a letter).

Nobody is told of their own move. The webhook's payload names the letter by its id, number,
department, status, reply due and issue time only: no subject, text, recommendation or reply
leaves (the gateway is another organisation's system); the notification shows the subject.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from geo.errors import NotFound
from geo.identity.principal import SYSTEM, Principal
from geo.letters.numbering import rendered
from geo.letters.status import WAITING, LetterMove
from geo.letters.store import URL
from geo.reports.escalation import BATCH
from geo.reports.notify import event_key, iso, recipients, record
from geo.vocabulary import NotificationKind, sql_list

K = NotificationKind


@dataclass(frozen=True)
class Audience:
    """Whom a letter's event tells: the department addressed, the sender who issued it, the
    dispatchers who see the letter."""

    department: bool = False
    sender: bool = False
    desk: bool = False


AUDIENCE = {
    K.LETTER_ISSUED: Audience(department=True),
    # 签收 is a receipt: it asks nothing of the desk, so only the sender, who waits on it, hears.
    K.LETTER_ACKNOWLEDGED: Audience(sender=True),
    # A reply waits for 办结, which any dispatcher who sees the letter may give (the sender may
    # be away): it reaches them as a report's 回退 reaches its district's desk.
    K.LETTER_REPLIED: Audience(sender=True, desk=True),
    K.LETTER_CLOSED: Audience(department=True),
    # 催办 is the sender's; the department is reminded. The desk sees it in `overdue=true`.
    K.LETTER_OVERDUE: Audience(department=True, sender=True),
}
MOVED = {
    LetterMove.ISSUE: K.LETTER_ISSUED,
    LetterMove.ACKNOWLEDGE: K.LETTER_ACKNOWLEDGED,
    LetterMove.REPLY: K.LETTER_REPLIED,
    LetterMove.CLOSE: K.LETTER_CLOSED,
}
# The event's time is the move's (clock_timestamp, as the issue's): after its issued_at.
_LETTER = text(
    "SELECT id, status, department, districts, subject, year, number, issued_at, issued_by, "
    "reply_due, replied_at, clock_timestamp() AS now FROM letters WHERE id = :id"
)
_LATE = text(
    f"SELECT id, reply_due FROM letters WHERE status IN {sql_list(WAITING)} "
    "AND reply_due < now() ORDER BY reply_due, id"
)
_TOLD = text("SELECT event_id FROM outbox WHERE event_id = ANY(:keys)").bindparams(
    bindparam("keys", type_=ARRAY(UUID(as_uuid=True)))
)
# A letter being moved right now is skipped (its reply may be arriving): the next sweep sees.
_CLAIM = text(
    f"SELECT id, reply_due FROM letters WHERE id = ANY(:ids) AND status IN {sql_list(WAITING)} "
    "AND reply_due < now() ORDER BY reply_due, id LIMIT :batch FOR UPDATE SKIP LOCKED"
).bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))


def _letter(r: Any) -> dict:
    # The allow-list of the webhook's payload (and the head of every notification's data).
    return {
        "id": str(r.id),
        "number": rendered(r.year, r.number),
        "department": r.department,
        "status": r.status,
        "reply_due": iso(r.reply_due),
        "issued_at": iso(r.issued_at),
    }


def tell(
    conn: Connection,
    kind: NotificationKind,
    letter_id: uuid.UUID,
    who: Principal = SYSTEM,
    event_id: uuid.UUID | None = None,
) -> bool:
    """Record a letter's event in the caller's transaction, to whom `AUDIENCE` names for
    `kind` (never `who`, the actor); return whether it is new (an `event_id` told before adds
    nothing)."""
    r = conn.execute(_LETTER, {"id": letter_id}).one_or_none()
    if r is None:
        raise NotFound(f"no letter with id {letter_id}")
    a = AUDIENCE[kind]
    sender = (r.issued_by,) if a.sender and r.issued_by is not None else ()
    department = r.department if a.department else None
    # The letter's readers among the dispatchers (geo.letters.rights): bound to all of its
    # districts, or city-wide; a city-wide letter ([]) the city-wide ones only.
    districts = list(r.districts) if a.desk else None
    to = recipients(conn, sender, department, districts, a.desk, who.user_id)
    addressed = {"department": department, "districts": districts}
    data: dict[str, Any] = {"subject": r.subject, "url": URL.format(id=r.id)}
    if kind == K.LETTER_REPLIED:
        data["on_time"] = r.replied_at <= r.reply_due
    return record(conn, kind, "letter", _letter(r), to, addressed, r.now, data, event_id)[1]


def moved(conn: Connection, letter_id: uuid.UUID, move: LetterMove, who: Principal) -> None:
    """Tell whom `move` of the letter concerns, in the move's transaction."""
    tell(conn, MOVED[move], letter_id, who)


def overdue_key(letter_id: uuid.UUID, reply_due: datetime) -> uuid.UUID:
    """Return the event id of a letter's overdue reply: one per letter (its due time is fixed
    when it is issued), whatever time zone the session reads it in."""
    return event_key(K.LETTER_OVERDUE, letter_id, iso(reply_due))


def sweep(conn: Connection) -> dict[str, int]:
    """Tell of each letter waiting for its reply past the due time, once: a letter told of
    before (its `overdue_key` in the outbox) is passed over, and two sweeps at once add it
    once. Return how many were told, at most BATCH a call."""
    # Letters waiting past their due are few (a city issues some hundreds a year): all are read.
    late = {overdue_key(r.id, r.reply_due): r.id for r in conn.execute(_LATE)}
    if not late:
        return {"letters_overdue": 0}
    told = set(conn.execute(_TOLD, {"keys": list(late)}).scalars())
    new = [i for key, i in late.items() if key not in told]
    claimed = conn.execute(_CLAIM, {"ids": new, "batch": BATCH}).all() if new else []
    count = 0
    for r in claimed:
        count += tell(conn, K.LETTER_OVERDUE, r.id, SYSTEM, overdue_key(r.id, r.reply_due))
    return {"letters_overdue": count}
