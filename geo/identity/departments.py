"""The people of a department: whom a dispatcher may name as a report's handler."""

from __future__ import annotations

from sqlalchemy import Connection, text

from geo.vocabulary import Role


def members(conn: Connection, department: str) -> list[dict]:
    """Return the active department users of `department` (id, username, name), by username."""
    rows = conn.execute(
        text(
            "SELECT id, username, name FROM users WHERE role = :role AND department = :d "
            "AND disabled_at IS NULL ORDER BY username"
        ),
        {"role": str(Role.DEPARTMENT), "d": department},
    ).mappings()
    return [dict(r) for r in rows]
