"""Notifications: what a user should know about a report (dispatched to their department,
assigned to them, returned, a 核查 task, overdue, 督办, resolved, escalated) or a risk letter
(`geo.letters.notices`), and the same event in the outbox for the webhook
(`geo.reports.webhook`).

`record` is the one way an event is written, whatever it is about; `emit` is a report's.
Both run in the caller's transaction: an event exists only if the move that caused it was
committed. Every event goes to the outbox, a webhook configured or not; the deliverer sends what
is due once one is (and gives up events older than `webhook.max_age_s` unsent). The webhook's
payload is built from an allow-list of codes and times: no description, no reporter, no phone,
no note (the gateway is outside); a note the caller gives stays in the notification.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, INTEGER

from geo.errors import InvalidInput, NotFound
from geo.identity.principal import SYSTEM, Principal
from geo.vocabulary import LETTER_KINDS, NotificationKind, Role

# Deterministic event ids (`event_key`) live in their own UUID-5 namespace.
EVENT_NAMESPACE = uuid.UUID("5f0c6a52-3c1e-4d0b-9a57-2b9e1f4c7d10")

_REPORT = text(
    "SELECT id, theme, category, status, grid_code, district_code, department, due_at, "
    "now() AS now FROM reports WHERE id = :id"
)
# What an event may be about: the payload's key, and the notifications' column naming it.
ABOUT = {"report": "report_id", "letter": "letter_id"}
_NOTIFY = {
    about: text(
        f"INSERT INTO notifications (user_id, kind, {column}, event_id, data, created_at) "
        "SELECT u, :kind, :about, :event, CAST(:data AS jsonb), :at FROM unnest(:users) AS u "
        "ON CONFLICT (user_id, event_id) DO NOTHING"
    ).bindparams(bindparam("users", type_=ARRAY(INTEGER)))
    for about, column in ABOUT.items()
}
_OUTBOX = text(
    "INSERT INTO outbox (event_id, kind, payload, created_at, next_attempt_at) "
    "VALUES (:event, :kind, CAST(:payload AS jsonb), :at, :at) ON CONFLICT (event_id) DO NOTHING"
)


def iso(value: datetime | None) -> str | None:
    """Return a time as the payloads write it: ISO 8601 in UTC with a Z (None stays None)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def event_key(*parts: object) -> uuid.UUID:
    """Return a deterministic event id for `parts` (e.g. "overdue", report id, due_at): a job
    that runs twice emits the event once."""
    return uuid.uuid5(EVENT_NAMESPACE, "\x1f".join(str(p) for p in parts))


def recipients(
    conn: Connection,
    users: Iterable[int] = (),
    department: str | None = None,
    dispatchers_of: str | Sequence[str] | None = None,
    city_dispatchers: bool = False,
    actor_id: int | None = None,
    workers_of: str | None = None,
) -> list[int]:
    """Return the ids of the enabled users named, of `department`'s users, of the workers of
    grid `workers_of`, and of the dispatchers who see district `dispatchers_of` (bound to it,
    or to no district: city-wide, as `geo.identity.scope` treats them; several districts: bound
    to each of them, as a letter's readers are); `city_dispatchers` alone gives the city-wide
    ones. The actor is left out: nobody is told of their own move."""
    c: list[str] = []
    p: dict[str, Any] = {"actor": actor_id if actor_id is not None else -1}
    if workers_of is not None:
        c.append(
            f"(u.role = '{Role.WORKER}' AND EXISTS (SELECT 1 FROM user_grids g "
            "WHERE g.user_id = u.id AND g.grid_code = :grid))"
        )
        p["grid"] = workers_of
    named = sorted(set(users))
    if named:
        c.append("u.id = ANY(:users)")
        p["users"] = named
    if department is not None:
        c.append(f"(u.role = '{Role.DEPARTMENT}' AND u.department = :department)")
        p["department"] = department
    if dispatchers_of is not None or city_dispatchers:
        sees = ["NOT EXISTS (SELECT 1 FROM user_districts d WHERE d.user_id = u.id)"]
        districts = [dispatchers_of] if isinstance(dispatchers_of, str) else dispatchers_of
        if districts:
            sees.append(
                "ARRAY(SELECT d.district_code::text FROM user_districts d "
                "WHERE d.user_id = u.id) @> CAST(:districts AS text[])"
            )
            p["districts"] = sorted(set(districts))
        c.append(f"(u.role = '{Role.DISPATCHER}' AND ({' OR '.join(sees)}))")
    if not c:
        return []
    sql = (
        f"SELECT u.id FROM users u WHERE u.disabled_at IS NULL AND u.id <> :actor "
        f"AND ({' OR '.join(c)}) ORDER BY u.id"
    )
    return list(conn.execute(text(sql), p).scalars())


def _report(r: Any) -> dict:
    # An allow-list: codes, statuses and times only. Descriptions, reporters, notes and
    # positions stay inside (the gateway is another organisation's system).
    return {
        "id": str(r.id),
        "theme": r.theme,
        "category": r.category,
        "status": r.status,
        "grid": r.grid_code,
        "district": r.district_code,
        "department": r.department,
        "due_at": iso(r.due_at),
    }


def kind_of(kind: NotificationKind | str) -> NotificationKind:
    """Return `kind` as a NotificationKind; InvalidInput naming the kinds when it is none."""
    try:
        return NotificationKind(kind)
    except ValueError:
        raise InvalidInput(
            f"unknown notification kind {kind!r}; one of: {', '.join(NotificationKind)}"
        ) from None


def record(
    conn: Connection,
    kind: NotificationKind | str,
    about: str,
    subject: dict[str, Any],
    to: list[int],
    addressed: dict[str, Any],
    at: datetime,
    data: dict[str, Any] | None = None,
    event_id: uuid.UUID | None = None,
) -> tuple[uuid.UUID, bool]:
    """Record one event in the caller's transaction and return its id and whether it is new
    (the same `event_id` again adds nothing: a sweep that runs twice tells once).

    `about` is what it tells about ("report" or "letter", `ABOUT`), `subject` that object's
    allow-listed fields with its "id": the outbox row's payload holds them, `to` and the groups
    `addressed` (e.g. a department); each user of `to` gets a notification showing `subject`
    and `data`, which never leaves (a reason, a note, a subject line)."""
    kind = kind_of(kind)
    if about not in ABOUT or (kind in LETTER_KINDS) != (about == "letter"):
        raise InvalidInput(f"a {kind} event is not about a {about}")
    event_id = event_id or uuid.uuid4()
    payload = {
        "event_id": str(event_id),
        "kind": str(kind),
        "occurred_at": iso(at),
        about: subject,
        "recipients": {"users": to, **addressed},
    }
    values = {"kind": str(kind), "event": event_id, "at": at}
    sent = conn.execute(_OUTBOX, {**values, "payload": orjson.dumps(payload).decode()})
    if sent.rowcount == 0:
        return event_id, False
    if to:
        shown = orjson.dumps({**subject, **(data or {})}).decode()
        about_id = uuid.UUID(subject["id"])
        conn.execute(_NOTIFY[about], {**values, "about": about_id, "users": to, "data": shown})
    return event_id, True


def emit(
    conn: Connection,
    kind: NotificationKind | str,
    report_id: uuid.UUID,
    *,
    users: Iterable[int] = (),
    department: str | None = None,
    district_dispatchers: bool | str = False,
    grid_workers: bool = False,
    data: dict[str, Any] | None = None,
    who: Principal = SYSTEM,
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Record an event about a report in the caller's transaction: one notification per
    recipient and one outbox row; return the event id (the same `event_id` again adds nothing).

    Recipients: the `users` named, the users of `department`, with `grid_workers` the workers
    of the report's grid (a 核查 task), and with `district_dispatchers` the dispatchers who see
    the report's district (True) or the district given (a code); never `who`, the actor.
    `data` (e.g. a reason or a note) goes to the notifications only."""
    kind = kind_of(kind)
    r = conn.execute(_REPORT, {"id": report_id}).one_or_none()
    if r is None:
        raise NotFound(f"no report with id {report_id}")
    district = r.district_code if district_dispatchers is True else (district_dispatchers or None)
    grid = r.grid_code if grid_workers else None
    city = district_dispatchers is True
    to = recipients(conn, users, department, district, city, who.user_id, grid)
    addressed = {
        "department": department,
        "district": district if district_dispatchers else None,
        "grid": grid,
    }
    return record(conn, kind, "report", _report(r), to, addressed, r.now, data, event_id)[0]


def unread_count(conn: Connection, user_id: int | None, cap: int | None = None) -> int:
    """Return how many notifications `user_id` has not read (one partial-index count), at most
    `cap` when given: a page's badge shows "99+" and need not count 4,000 (8 ms; 100: 1 ms)."""
    if user_id is None:
        return 0
    unread = "SELECT 1 FROM notifications WHERE user_id = :u AND read_at IS NULL"
    if cap is None:
        return conn.execute(text(f"SELECT count(*) FROM ({unread}) s"), {"u": user_id}).scalar_one()
    return conn.execute(
        text(f"SELECT count(*) FROM ({unread} LIMIT :cap) s"), {"u": user_id, "cap": cap}
    ).scalar_one()


def _answer(row: Any) -> dict:
    return {
        "id": row.id,
        "kind": row.kind,
        "report_id": str(row.report_id) if row.report_id else None,
        "letter_id": str(row.letter_id) if row.letter_id else None,
        "event_id": str(row.event_id),
        "data": row.data,
        "created_at": iso(row.created_at),
        "read_at": iso(row.read_at),
    }


def notifications(
    conn: Connection,
    user_id: int | None,
    unread_only: bool = False,
    limit: int = 50,
    before: int | None = None,
) -> dict:
    """Return a user's own notifications, newest first: `limit` of them with ids below `before`,
    the unread count, and `next_before` for the next page (None on the last)."""
    if user_id is None:
        return {"notifications": [], "unread": 0, "next_before": None}
    c = ["user_id = :u"]
    p: dict[str, Any] = {"u": user_id, "n": limit}
    if unread_only:
        c.append("read_at IS NULL")
    if before is not None:
        c.append("id < :before")
        p["before"] = before
    rows = conn.execute(
        text(
            "SELECT id, kind, report_id, letter_id, event_id, data, created_at, read_at "
            f"FROM notifications WHERE {' AND '.join(c)} ORDER BY id DESC LIMIT :n"
        ),
        p,
    ).all()
    return {
        "notifications": [_answer(r) for r in rows],
        "unread": unread_count(conn, user_id),
        "next_before": rows[-1].id if len(rows) == limit else None,
    }


def mark_read(conn: Connection, user_id: int | None, ids: Sequence[int] | None = None) -> int:
    """Mark a user's own notifications read (`ids`, or all of them when None); return how many
    were unread. Ids of other users' notifications change nothing."""
    if user_id is None:
        return 0
    chosen = "" if ids is None else "AND id = ANY(:ids)"
    stmt = text(
        f"UPDATE notifications SET read_at = now() WHERE user_id = :u AND read_at IS NULL {chosen}"
    )
    params: dict[str, Any] = {"u": user_id}
    if ids is not None:
        stmt = stmt.bindparams(bindparam("ids", type_=ARRAY(BIGINT)))
        params["ids"] = list(ids)
    return conn.execute(stmt, params).rowcount
