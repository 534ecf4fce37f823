"""Tokens of users: a login's session token and an integration's token. Opaque random strings;
only their SHA-256 is stored, and each expires.

A checked token is trusted for `cache_s` seconds in the process that checked it (a prepared
look-up costs ~0.1 ms, and intake is ~2 ms): a logout or revocation in this process takes
effect at once (the entry is dropped), in another process within `cache_s`.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from sqlalchemy import Connection, text

from geo.db.engine import driver_sql, fetch
from geo.errors import InvalidInput, NotFound, Unauthorized
from geo.identity import audit
from geo.identity.principal import Principal
from geo.vocabulary import Role, TokenKind

_LOOKUP = driver_sql(
    """
    SELECT u.id, u.username, u.name, u.role, u.department, t.id AS token_id,
           ARRAY(SELECT grid_code FROM user_grids g WHERE g.user_id = u.id ORDER BY 1) AS grids,
           ARRAY(SELECT district_code FROM user_districts d WHERE d.user_id = u.id
                 ORDER BY 1) AS districts
    FROM auth_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_sha256 = :h AND t.revoked_at IS NULL AND t.expires_at > now()
      AND u.disabled_at IS NULL
    """
)
_CACHE: dict[str, tuple[float, Principal]] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 10_000


def digest(token: str) -> str:
    """Return the SHA-256 (hex) under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    conn: Connection, user_id: int, kind: TokenKind, ttl_s: float, name: str | None = None
) -> str:
    """Store a new token of the user, valid for `ttl_s` seconds; return it (it is not kept)."""
    token = "rg_" + secrets.token_urlsafe(32)
    conn.execute(
        text(
            "INSERT INTO auth_tokens (user_id, kind, name, token_sha256, expires_at) "
            "VALUES (:u, :k, :n, :h, now() + make_interval(secs => :ttl))"
        ),
        {"u": user_id, "k": kind, "n": name, "h": digest(token), "ttl": ttl_s},
    )
    return token


def cached(token: str, cache_s: float) -> Principal | None:
    """Return who holds `token` if this process checked it less than `cache_s` seconds ago."""
    if cache_s <= 0:
        return None
    with _CACHE_LOCK:
        hit = _CACHE.get(digest(token))
    if hit is not None and time.monotonic() - hit[0] < cache_s:
        return hit[1]
    return None


def authenticate(conn: Connection, token: str) -> Principal:
    """Return who holds `token`; Unauthorized when it is unknown, expired or revoked."""
    key = digest(token)
    rows = fetch(conn, _LOOKUP, {"h": key})
    if not rows:
        forget(token)
        raise Unauthorized("the token is unknown, expired or revoked: log in again")
    r = rows[0]
    who = Principal(
        r["id"],
        r["username"],
        Role(r["role"]),
        name=r["name"],
        grids=tuple(r["grids"]),
        districts=tuple(r["districts"]),
        department=r["department"],
        token_id=r["token_id"],
    )
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = (time.monotonic(), who)
    return who


def forget(token: str) -> None:
    """Drop a token from this process's cache (after a logout or revocation)."""
    with _CACHE_LOCK:
        _CACHE.pop(digest(token), None)


def revoke(conn: Connection, who: Principal, token: str) -> None:
    """Revoke the token `token` (a logout)."""
    conn.execute(
        text("UPDATE auth_tokens SET revoked_at = now() WHERE token_sha256 = :h"),
        {"h": digest(token)},
    )
    forget(token)
    audit.record(conn, who, "auth.logout", "token", who.token_id)


def create_integration_token(
    conn: Connection, who: Principal, username: str, name: str, days: int
) -> str:
    """Store an integration token of `username` (a script, a gateway) valid for `days`."""
    if not name.strip() or len(name) > 100:
        raise InvalidInput("a token needs a name of 1-100 characters (what uses it)")
    row = conn.execute(
        text("SELECT id FROM users WHERE username = :u AND disabled_at IS NULL"), {"u": username}
    ).first()
    if row is None:
        raise NotFound(f"no active user {username!r}")
    token = issue(conn, row.id, TokenKind.INTEGRATION, days * 86_400.0, name.strip())
    audit.record(conn, who, "token.create", "user", username, {"name": [None, name.strip()]})
    return token


def list_tokens(conn: Connection) -> list[dict]:
    """Return every integration token's id, user, name and dates (never the token)."""
    rows = conn.execute(
        text(
            "SELECT t.id, u.username, u.role, t.name, t.created_at, t.expires_at, t.revoked_at "
            "FROM auth_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.kind = 'integration' ORDER BY t.id"
        )
    ).all()
    return [dict(r._mapping) for r in rows]


def revoke_token(conn: Connection, who: Principal, token_id: int) -> None:
    """Revoke an integration token by id; NotFound when there is no such active token."""
    done = conn.execute(
        text(
            "UPDATE auth_tokens SET revoked_at = now() "
            "WHERE id = :i AND kind = 'integration' AND revoked_at IS NULL"
        ),
        {"i": token_id},
    ).rowcount
    if not done:
        raise NotFound(f"no active integration token with id {token_id}")
    with _CACHE_LOCK:
        for key in [k for k, (_, p) in _CACHE.items() if p.token_id == token_id]:
            del _CACHE[key]
    audit.record(conn, who, "token.revoke", "token", token_id)
