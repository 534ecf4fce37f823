"""Logging in with a username and password: lockout after repeated failures, every attempt
audited, a session token on success.

Failures are counted from the audit log itself (per username and per client address, over a
window): the count is shared by every server process and survives a restart, with no state
of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, text

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


# Failures per username from one address, per username from anywhere, per address.
_FAILURES = {
    what: text(
        "SELECT count(*) AS n, min(at) AS first FROM audit_log WHERE action = :a "
        f"AND {where} AND at > now() - make_interval(secs => :w)"
    )
    for what, where in (
        ("pair", "actor = :user AND client = CAST(:client AS inet)"),
        ("user", "actor = :user"),
        ("client", "client = CAST(:client AS inet)"),
    )
}
# Someone who knows a username can lock it for everybody only from this many addresses'
# worth of failures: from one address they lock it for that address alone.
USER_FACTOR = 4


def _retry_after(conn: Connection, what: str, binds: dict, limit: int, window_s: int) -> int:
    """Return the seconds until the oldest counted failure leaves the window (0: not locked)."""
    row = conn.execute(_FAILURES[what], {"a": FAILED, "w": window_s, **binds}).one()
    if row.n < limit:
        return 0
    left = conn.execute(
        text("SELECT ceil(extract(epoch FROM :first + make_interval(secs => :w) - now()))"),
        {"first": row.first, "w": window_s},
    ).scalar()
    return max(1, int(left or 1))


@dataclass(frozen=True)
class Locked:
    """A login refused unseen: too many failures for the username or the address."""

    retry_after_s: int


def _lockout(conn: Connection, who: Principal, rules: AuthSettings) -> Locked | None:
    window, per_user = rules.failure_window_s, rules.max_failures_per_user
    binds = {"user": who.username, "client": who.client}
    checks = [("user", per_user * USER_FACTOR)]
    if who.client:
        checks += [("pair", per_user), ("client", rules.max_failures_per_client)]
    else:
        checks = [("user", per_user)]
    wait = max(_retry_after(conn, what, binds, limit, window) for what, limit in checks)
    if not wait:
        return None
    audit.record(conn, who, LOCKED, "user", who.username)
    return Locked(wait)


def attempt(
    conn: Connection,
    username: str,
    password: str,
    rules: AuthSettings,
    request_id: str | None = None,
    client: str | None = None,
) -> Session | Locked | None:
    """Return a session for the right password, None for a wrong one, Locked while the
    username or the address is locked out; each is recorded in the audit log, so the caller
    commits whatever the outcome (`log_in` does)."""
    name = username.strip().lower()[:64]
    anonymous = Principal(None, name, None, request_id=request_id, client=client)
    locked = _lockout(conn, anonymous, rules)
    if locked is not None:
        return locked
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


def log_in(
    engine: Engine,
    username: str,
    password: str,
    rules: AuthSettings,
    request_id: str | None = None,
    client: str | None = None,
) -> Session | None:
    """Try a login in its own transaction, committed whatever the outcome (a failure and a
    lockout stay recorded); return the session, or None for a wrong username or password;
    TooManyAttempts while locked out."""
    with engine.begin() as conn:
        outcome = attempt(conn, username, password, rules, request_id, client)
    if isinstance(outcome, Locked):
        wait = outcome.retry_after_s
        raise TooManyAttempts(
            f"too many failed logins: try again in {wait} s, or ask an administrator", wait
        )
    return outcome
