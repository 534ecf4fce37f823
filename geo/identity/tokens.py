"""API tokens with roles. Only a token's SHA-256 is stored; the token is shown once, at creation.

Roles: `admin` and `coordinator` see households' personal data (names, phones, exact
locations) and relocation lists; `planner` and `worker` see counts per grid. A request with no
token is treated like a planner.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, text

from geo.errors import InvalidInput, NotFound, Unauthorized
from geo.vocabulary import Role

PERSONAL_DATA_ROLES = (Role.ADMIN, Role.COORDINATOR)


@dataclass(frozen=True)
class Principal:
    """Who is asking: a token's name and role, or nobody in particular."""

    name: str | None
    role: str | None

    @property
    def sees_personal_data(self) -> bool:
        """Whether households' names, phones and exact locations may be shown."""
        return self.role in PERSONAL_DATA_ROLES


ANONYMOUS = Principal(None, None)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: Connection, name: str, role: str) -> str:
    """Store a new token for `name` with `role`; return the token (it is not kept)."""
    if role not in set(Role):
        raise InvalidInput(f"role must be one of {', '.join(Role)}")
    if not name.strip() or len(name) > 100:
        raise InvalidInput("a token needs a name of 1-100 characters (who holds it)")
    token = "rg_" + secrets.token_urlsafe(32)
    conn.execute(
        text("INSERT INTO api_tokens (name, role, token_sha256) VALUES (:n, :r, :h)"),
        {"n": name.strip(), "r": role, "h": _digest(token)},
    )
    return token


def authenticate(conn: Connection, token: str) -> Principal:
    """Return who holds `token`; Unauthorized when it is unknown or revoked."""
    row = conn.execute(
        text("SELECT name, role FROM api_tokens WHERE token_sha256 = :h AND revoked_at IS NULL"),
        {"h": _digest(token)},
    ).first()
    if row is None:
        raise Unauthorized("unknown or revoked token; ask an administrator for a new one")
    return Principal(row.name, row.role)


def list_tokens(conn: Connection) -> list[dict]:
    """Return every token's id, holder, role and dates (never the token)."""
    rows = conn.execute(
        text("SELECT id, name, role, created_at, revoked_at FROM api_tokens ORDER BY id")
    ).all()
    return [dict(r._mapping) for r in rows]


def revoke_token(conn: Connection, token_id: int) -> None:
    """Revoke a token by id; NotFound when there is no such active token."""
    done = conn.execute(
        text("UPDATE api_tokens SET revoked_at = now() WHERE id = :i AND revoked_at IS NULL"),
        {"i": token_id},
    ).rowcount
    if not done:
        raise NotFound(f"no active token with id {token_id}")
