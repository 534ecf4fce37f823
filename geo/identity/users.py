"""Users: adding, listing, disabling, changing a password. Every change is audited."""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from geo.errors import Conflict, InvalidInput, NotFound
from geo.identity import audit
from geo.identity.passwords import check_new_password, hash_password
from geo.identity.principal import Principal
from geo.vocabulary import Role

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class NewUser:
    """A user to add, with the scope their role needs."""

    username: str
    role: Role
    name: str = ""
    grids: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    department: str | None = None
    password: str | None = None  # None: one is generated and returned once


@dataclass(frozen=True)
class AddedUser:
    """The user added, and the generated password when none was given (shown once)."""

    id: int
    username: str
    generated_password: str | None = field(repr=False)


def generate_password(min_length: int = 20) -> str:
    """Return a random password of at least 20 characters (about 6 bits each)."""
    return secrets.token_urlsafe(max(15, -(-min_length * 3 // 4)))


def _check_scope(conn: Connection, u: NewUser, departments: Collection[str]) -> None:
    if u.role == Role.WORKER and not u.grids:
        raise InvalidInput("a worker is bound to one or more grids: give --grid CODE")
    if u.role != Role.WORKER and u.grids:
        raise InvalidInput("only workers are bound to grids")
    if u.districts and u.role not in (Role.DISPATCHER, Role.COORDINATOR):
        raise InvalidInput("only dispatchers and coordinators are bound to districts")
    if (u.role == Role.DEPARTMENT) != (u.department is not None):
        raise InvalidInput("a department user names one department (--department), and only they")
    if u.department is not None and u.department not in departments:
        raise InvalidInput(
            f"unknown department {u.department!r}; one of the routing table's: "
            + ", ".join(sorted(departments))
        )
    for table, column, codes, what in (
        ("grids", "code", u.grids, "grid"),
        ("areas", "code", u.districts, "district"),
    ):
        if not codes:
            continue
        level = "AND level = 'district'" if table == "areas" else ""
        found = set(
            conn.execute(
                text(f"SELECT {column} FROM {table} WHERE {column} = ANY(:c) {level}"),
                {"c": list(codes)},
            ).scalars()
        )
        missing = sorted(set(codes) - found)
        if missing:
            raise InvalidInput(f"no {what} with code {', '.join(missing)} among the stored ones")


def add_user(
    conn: Connection, who: Principal, u: NewUser, departments: Collection[str], min_length: int
) -> AddedUser:
    """Store a new user; InvalidInput says what is wrong, Conflict when the name is taken."""
    if not USERNAME.match(u.username):
        raise InvalidInput(
            "a username is 2-64 characters: lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if len(u.name) > 100:
        raise InvalidInput("a name may have at most 100 characters")
    _check_scope(conn, u, departments)
    password = u.password if u.password is not None else generate_password(min_length)
    check_new_password(password, u.username, min_length)
    row = conn.execute(
        text(
            "INSERT INTO users (username, name, role, department, password_hash, "
            "password_changed_at) VALUES (:u, :n, :r, :d, :h, now()) "
            "ON CONFLICT (username) DO NOTHING RETURNING id"
        ),
        {
            "u": u.username,
            "n": u.name or u.username,
            "r": u.role,
            "d": u.department,
            "h": hash_password(password),
        },
    ).first()
    if row is None:
        raise Conflict(f"the username {u.username!r} is taken")
    for table, column, codes in (
        ("user_grids", "grid_code", u.grids),
        ("user_districts", "district_code", u.districts),
    ):
        for code in codes:
            conn.execute(
                text(f"INSERT INTO {table} (user_id, {column}) VALUES (:i, :c)"),
                {"i": row.id, "c": code},
            )
    scope = {"grids": list(u.grids), "districts": list(u.districts), "department": u.department}
    changes = {"role": [None, str(u.role)], **{k: [None, v] for k, v in scope.items() if v}}
    audit.record(conn, who, "user.add", "user", u.username, changes)
    return AddedUser(row.id, u.username, None if u.password is not None else password)


def list_users(conn: Connection) -> list[dict]:
    """Return every user with role, scope and dates (never a password hash)."""
    rows = conn.execute(
        text(
            """
            SELECT u.id, u.username, u.name, u.role, u.department, u.created_at,
                   u.password_changed_at, u.disabled_at,
                   ARRAY(SELECT grid_code FROM user_grids g WHERE g.user_id = u.id
                         ORDER BY 1) AS grids,
                   ARRAY(SELECT district_code FROM user_districts d WHERE d.user_id = u.id
                         ORDER BY 1) AS districts
            FROM users u ORDER BY u.username
            """
        )
    ).mappings()
    return [dict(r) for r in rows]


def disable_user(conn: Connection, who: Principal, username: str) -> None:
    """Disable a user and revoke every token of theirs; NotFound when there is no such user."""
    row = conn.execute(
        text(
            "UPDATE users SET disabled_at = now() WHERE username = :u AND disabled_at IS NULL "
            "RETURNING id"
        ),
        {"u": username},
    ).first()
    if row is None:
        raise NotFound(f"no active user {username!r}")
    revoked = conn.execute(
        text("UPDATE auth_tokens SET revoked_at = now() WHERE user_id = :i AND revoked_at IS NULL"),
        {"i": row.id},
    ).rowcount
    audit.record(
        conn, who, "user.disable", "user", username, {"disabled": [False, True], "tokens": revoked}
    )


def set_password(
    conn: Connection, who: Principal, username: str, password: str, min_length: int
) -> None:
    """Change a user's password and end their login sessions (integration tokens stay)."""
    check_new_password(password, username, min_length)
    row = conn.execute(
        text(
            "UPDATE users SET password_hash = :h, password_changed_at = now() "
            "WHERE username = :u RETURNING id"
        ),
        {"u": username, "h": hash_password(password)},
    ).first()
    if row is None:
        raise NotFound(f"no user {username!r}")
    conn.execute(
        text(
            "UPDATE auth_tokens SET revoked_at = now() "
            "WHERE user_id = :i AND kind = 'session' AND revoked_at IS NULL"
        ),
        {"i": row.id},
    )
    audit.record(conn, who, "user.passwd", "user", username)
