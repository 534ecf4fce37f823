"""The append-only audit log: who did what to which object, from where, in which request.

Every write and every read of personal data is recorded in the same transaction as the act
itself, so that neither happens without the other. The table refuses UPDATE and DELETE.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, text

from geo.errors import InvalidInput
from geo.identity.principal import Principal

# Bind names are prefixed (`audit_`): the same entry is also written as a CTE of a larger
# statement (a report's move), beside binds of its own.
INSERT_SQL = """
    INSERT INTO audit_log (actor, role, action, object_type, object_id, request_id, client,
                           changes, people)
    VALUES (:audit_actor, :audit_role, :audit_action, :audit_object_type, :audit_object_id,
            :audit_request_id, CAST(:audit_client AS inet), CAST(:audit_changes AS jsonb),
            :audit_people)
    """
_INSERT = text(INSERT_SQL)


# The action of every read of personal data: households, campaign targets, a grid worker's
# evaluation, reports of sensitive themes shown unmasked.
PERSONAL_DATA_READ = "personal_data.read"


def entry(
    who: Principal,
    action: str,
    object_type: str | None = None,
    object_id: object = None,
    changes: dict[str, Any] | None = None,
    people: int | None = None,
) -> dict[str, Any]:
    """Return the binds of INSERT_SQL for one entry (see `record`)."""
    return {
        "audit_actor": who.username,
        "audit_role": None if who.role is None else str(who.role),
        "audit_action": action,
        "audit_object_type": object_type,
        "audit_object_id": None if object_id is None else str(object_id),
        "audit_request_id": who.request_id,
        "audit_client": who.client,
        "audit_changes": None if changes is None else orjson.dumps(changes, default=str).decode(),
        "audit_people": people,
    }


def record(
    conn: Connection,
    who: Principal,
    action: str,
    object_type: str | None = None,
    object_id: object = None,
    changes: dict[str, Any] | None = None,
    people: int | None = None,
) -> None:
    """Append one entry; `changes` maps a field to [before, after], `people` counts the persons
    whose data was shown or exported."""
    conn.execute(_INSERT, entry(who, action, object_type, object_id, changes, people))


@dataclass(frozen=True)
class AuditFilter:
    """Which entries a reader asks for."""

    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in '*' ("import.*")
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _where(f: AuditFilter) -> tuple[str, dict]:
    c: list[str] = ["TRUE"]
    p: dict[str, object] = {}
    if f.actor is not None:
        c.append("actor = :actor")
        p["actor"] = f.actor
    if f.action is not None:
        if f.action.endswith("*"):
            c.append("action LIKE :action_prefix")
            p["action_prefix"] = f.action[:-1].replace("%", r"\%").replace("_", r"\_") + "%"
        else:
            c.append("action = :action")
            p["action"] = f.action
    if f.object_id is not None:
        c.append("object_id = :object_id")
        p["object_id"] = f.object_id
    if f.since is not None:
        c.append("at >= :since")
        p["since"] = f.since
    if f.until is not None:
        c.append("at < :until")
        p["until"] = f.until
    return " AND ".join(c), p


def entries(conn: Connection, f: AuditFilter, limit: int, cursor: str | None) -> dict:
    """Return a page of entries, newest first, and the cursor of the next page (or None)."""
    where, params = _where(f)
    if cursor:
        where += " AND id < :before"
        params["before"] = _decode(cursor)
    rows = conn.execute(
        text(
            "SELECT id, at, actor, role, action, object_type, object_id, request_id, "
            f"host(client) AS client, changes, people FROM audit_log WHERE {where} "
            "ORDER BY id DESC LIMIT :limit"
        ),
        {**params, "limit": limit + 1},
    ).mappings()
    found = [dict(r) for r in rows]
    more = len(found) > limit
    found = found[:limit]
    nxt = _encode(found[-1]["id"]) if more else None
    return {"entries": found, "next_cursor": nxt}


def _encode(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{entry_id}".encode()).decode()


def _decode(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not raw.startswith("a"):
            raise ValueError(raw)
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "cursor is not valid: use the next_cursor of the previous page"
        ) from None
