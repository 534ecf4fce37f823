"""Logging in with a username and password: lockout after repeated failures, every attempt
audited, a session token on success.

Failures are counted from the audit log itself (per username and per client address, over a
window): the count is shared by every server process and survives a restart, with no state
of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from geo.errors import TooManyAttempts
from geo.identity import audit, tokens
from geo.identity.passwords import hash_password, needs_rehash, verify_password
from geo.identity.principal import Principal
from geo.settings import AuthSettings
from geo.vocabulary import TokenKind

FAILED = "auth.login_failed"
LOCKED = "auth.login_locked"


@dataclass(frozen=True)
class Session:
    """A successful login: the token (shown once), its lifetime, and who logged in."""

    token: str = field(repr=False)
    expires_in: int
    who: Principal


_FAILURES = {
    column: text(
        f"SELECT count(*) AS n, min(at) AS first FROM audit_log WHERE action = :a "
        f"AND {column} = CAST(:v AS {cast}) AND at > now() - make_interval(secs => :w)"
    )
    for column, cast in (("actor", "text"), ("client", "inet"))
}


def _retry_after(conn: Connection, column: str, value: str, limit: int, window_s: int) -> int:
    """Return the seconds until the oldest counted failure leaves the window (0: not locked)."""
    row = conn.execute(_FAILURES[column], {"a": FAILED, "v": value, "w": window_s}).one()
    if row.n < limit:
        return 0
    left = conn.execute(
        text("SELECT ceil(extract(epoch FROM :first + make_interval(secs => :w) - now()))"),
        {"first": row.first, "w": window_s},
    ).scalar()
    return max(1, int(left or 1))


def _check_lockout(conn: Connection, who: Principal, rules: AuthSettings) -> None:
    wait = _retry_after(
        conn, "actor", who.username, rules.max_failures_per_user, rules.failure_window_s
    )
    if who.client:
        wait = max(
            wait,
            _retry_after(
                conn, "client", who.client, rules.max_failures_per_client, rules.failure_window_s
            ),
        )
    if wait:
        audit.record(conn, who, LOCKED, "user", who.username)
        raise TooManyAttempts(
            f"too many failed logins: try again in {wait} s, or ask an administrator", wait
        )


def attempt(
    conn: Connection,
    username: str,
    password: str,
    rules: AuthSettings,
    request_id: str | None = None,
    client: str | None = None,
) -> Session | None:
    """Return a session for the right password, None for a wrong one (recorded as a failure);
    TooManyAttempts while the username or the address is locked out. The caller commits
    either way: a failure must stay recorded."""
    name = username.strip().lower()[:64]
    anonymous = Principal(None, name, None, request_id=request_id, client=client)
    _check_lockout(conn, anonymous, rules)
    row = conn.execute(
        text(
            "SELECT id, role, password_hash FROM users WHERE username = :u AND disabled_at IS NULL"
        ),
        {"u": name},
    ).first()
    # An unknown user costs a verification too, so that timing does not tell who exists.
    if not verify_password(row.password_hash if row else None, password) or row is None:
        audit.record(conn, anonymous, FAILED, "user", name)
        return None
    if needs_rehash(row.password_hash):
        conn.execute(
            text("UPDATE users SET password_hash = :h WHERE id = :i"),
            {"h": hash_password(password), "i": row.id},
        )
    token = tokens.issue(conn, row.id, TokenKind.SESSION, rules.session_ttl_s)
    who = tokens.authenticate(conn, token).in_request(request_id, client)
    audit.record(conn, who, "auth.login", "user", name)
    return Session(token, rules.session_ttl_s, who)
