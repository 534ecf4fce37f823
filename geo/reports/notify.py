"""Notifications: what a user should know about a report (dispatched to their department,
assigned to them, returned, a 核查 task, overdue, 督办, resolved, escalated), and the same event
in the outbox for the webhook (`geo.reports.webhook`).

`emit` runs in the caller's transaction: an event exists only if the move that caused it was
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
from geo.vocabulary import NotificationKind, Role

# Deterministic event ids (`event_key`) live in their own UUID-5 namespace.
EVENT_NAMESPACE = uuid.UUID("5f0c6a52-3c1e-4d0b-9a57-2b9e1f4c7d10")

_REPORT = text(
    "SELECT id, theme, category, status, grid_code, district_code, department, due_at, "
    "now() AS now FROM reports WHERE id = :id"
)
_NOTIFY = text(
    "INSERT INTO notifications (user_id, kind, report_id, event_id, data, created_at) "
    "SELECT u, :kind, :report, :event, CAST(:data AS jsonb), :at FROM unnest(:users) AS u "
    "ON CONFLICT (user_id, event_id) DO NOTHING"
).bindparams(bindparam("users", type_=ARRAY(INTEGER)))
_OUTBOX = text(
    "INSERT INTO outbox (event_id, kind, payload, created_at, next_attempt_at) "
    "VALUES (:event, :kind, CAST(:payload AS jsonb), :at, :at) ON CONFLICT (event_id) DO NOTHING"
)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def event_key(*parts: object) -> uuid.UUID:
    """Return a deterministic event id for `parts` (e.g. "overdue", report id, due_at): a job
    that runs twice emits the event once."""
    return uuid.uuid5(EVENT_NAMESPACE, "\x1f".join(str(p) for p in parts))


def recipients(
    conn: Connection,
    users: Iterable[int] = (),
    department: str | None = None,
    dispatchers_of: str | None = None,
    city_dispatchers: bool = False,
    actor_id: int | None = None,
    workers_of: str | None = None,
) -> list[int]:
    """Return the ids of the enabled users named, of `department`'s users, of the workers of
    grid `workers_of`, and of the dispatchers who see district `dispatchers_of` (bound to it,
    or to no district: city-wide, as `geo.identity.scope` treats them); `city_dispatchers`
    alone gives the city-wide ones. The actor is left out: nobody is told of their own move."""
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
        bound = "EXISTS (SELECT 1 FROM user_districts d WHERE d.user_id = u.id{})"
        sees = [f"NOT {bound.format('')}"]
        if dispatchers_of is not None:
            sees.append(bound.format(" AND d.district_code = :district"))
            p["district"] = dispatchers_of
        c.append(f"(u.role = '{Role.DISPATCHER}' AND ({' OR '.join(sees)}))")
    if not c:
        return []
    sql = (
        f"SELECT u.id FROM users u WHERE u.disabled_at IS NULL AND u.id <> :actor "
        f"AND ({' OR '.join(c)}) ORDER BY u.id"
    )
    return list(conn.execute(text(sql), p).scalars())


def _payload(
    event_id: uuid.UUID,
    kind: NotificationKind,
    r: Any,
    to: list[int],
    to_department: str | None,
    to_district: str | None,
    to_grid: str | None,
) -> dict:
    # An allow-list: codes, statuses and times only. Descriptions, reporters, notes and
    # positions stay inside (the gateway is another organisation's system).
    return {
        "event_id": str(event_id),
        "kind": str(kind),
        "occurred_at": _iso(r.now),
        "report": {
            "id": str(r.id),
            "theme": r.theme,
            "category": r.category,
            "status": r.status,
            "grid": r.grid_code,
            "district": r.district_code,
            "department": r.department,
            "due_at": _iso(r.due_at),
        },
        "recipients": {
            "users": to,
            "department": to_department,
            "district": to_district,
            "grid": to_grid,
        },
    }


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
    try:
        kind = NotificationKind(kind)
    except ValueError:
        raise InvalidInput(
            f"unknown notification kind {kind!r}; one of: {', '.join(NotificationKind)}"
        ) from None
    r = conn.execute(_REPORT, {"id": report_id}).one_or_none()
    if r is None:
        raise NotFound(f"no report with id {report_id}")
    district = r.district_code if district_dispatchers is True else (district_dispatchers or None)
    grid = r.grid_code if grid_workers else None
    city = district_dispatchers is True
    to = recipients(conn, users, department, district, city, who.user_id, grid)
    event_id = event_id or uuid.uuid4()
    to_district = district if district_dispatchers else None
    payload = _payload(event_id, kind, r, to, department, to_district, grid)
    shown = {**payload["report"], **(data or {})}
    values = {"kind": str(kind), "event": event_id, "at": r.now}
    if to:
        conn.execute(
            _NOTIFY,
            {**values, "report": r.id, "users": to, "data": orjson.dumps(shown).decode()},
        )
    conn.execute(_OUTBOX, {**values, "payload": orjson.dumps(payload).decode()})
    return event_id


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
        "event_id": str(row.event_id),
        "data": row.data,
        "created_at": _iso(row.created_at),
        "read_at": _iso(row.read_at),
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
            "SELECT id, kind, report_id, event_id, data, created_at, read_at FROM notifications "
            f"WHERE {' AND '.join(c)} ORDER BY id DESC LIMIT :n"
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
