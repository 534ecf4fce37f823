"""Rate limits: per user (every token and the session cookie of one user count together), per
client address, logins per address before the per-user lockout; 429 with `Retry-After` and a
JSON detail naming the limit; /health and /static never limited; limits off in settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text

from api.app import create_app
from api.deps import SESSION_COOKIE
from api.rate_limit import client_key
from geo.identity.principal import SYSTEM
from geo.identity.users import NewUser, add_user
from geo.settings import RateSettings
from geo.vocabulary import Role
from tests.factories import login_as

PASSWORD = "harbour-Kite-47-moss"  # noqa: S105 (a test user: long and uncommon enough)
ROOMY = "1000/minute"  # a limit no test here reaches


@contextmanager
def limited(db, settings, address="10.0.0.1", **rates) -> Iterator[TestClient]:
    """A client from `address` of an app whose rate limits are on, with `rates` set."""
    limits = RateSettings(enabled=True, **{"per_user": ROOMY, "per_client": ROOMY, **rates})
    app = create_app(settings.model_copy(update={"rates": limits}), engine=db)
    with TestClient(app, client=(address, 40000)) as c:
        yield c


@contextmanager
def second_client(c: TestClient, address: str) -> Iterator[TestClient]:
    """Another client of the same app (the same counters) from another address."""
    with TestClient(c.app, client=(address, 40001)) as other:
        yield other


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(r, what: str, limit: str) -> int:
    """Check a 429 of the rate limits: JSON detail naming the limit, Retry-After; return it."""
    assert r.status_code == 429
    wait = int(r.headers["retry-after"])
    # The window is a minute and the requests before took well under half of it.
    assert 30 < wait <= 60
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"detail": f"too many {what}: at most {limit}; try again in {wait} s"}
    assert r.headers["x-request-id"]  # the outer middleware saw the answer too
    return wait


def test_a_user_over_the_limit_gets_429_and_another_user_does_not(db, settings):
    first = login_as(db, "planner", username="busy-planner")
    other_token = login_as(db, "planner", username="busy-planner")  # a second session
    second = login_as(db, "planner", username="calm-planner")
    with limited(db, settings, per_user="3/minute") as c:
        for _ in range(3):
            assert c.get("/api/v1/auth/me", headers=bearer(first)).status_code == 200
        assert_refused(
            c.get("/api/v1/auth/me", headers=bearer(first)),
            "requests for this user",
            "3 per 1 minute",
        )
        assert c.get("/api/v1/auth/me", headers=bearer(second)).json()["username"] == (
            "calm-planner"
        )
        # The user's other session counts with the first once this process has checked it:
        # its first request (counted under the token's digest) is let through to be checked.
        assert c.get("/api/v1/auth/me", headers=bearer(other_token)).status_code == 200
        assert c.get("/api/v1/auth/me", headers=bearer(other_token)).status_code == 429
        # So does the session cookie of the first token.
        c.cookies.set(SESSION_COOKIE, first)
        assert c.get("/api/v1/auth/me").status_code == 429


def test_a_client_address_over_the_limit_gets_429(db, settings):
    token = login_as(db, "planner")
    with limited(db, settings, per_client="3/minute") as c:
        for path in ("/login", "/openapi.json", "/login"):
            assert c.get(path).status_code == 200
        assert_refused(c.get("/login"), "requests from this address", "3 per 1 minute")
        # A login does not lift it: the address is over, whoever asks.
        assert c.get("/api/v1/auth/me", headers=bearer(token)).status_code == 429
        with second_client(c, "10.0.0.2") as other:
            assert other.get("/login").status_code == 200


def test_health_and_static_files_are_never_limited(db, settings):
    with limited(db, settings, per_client="2/minute") as c:
        for _ in range(10):
            assert c.get("/health").status_code == 200
            assert c.get("/static/css/base.css").status_code == 200
        # None of them counted: the address still has its two requests.
        assert [c.get("/login").status_code for _ in range(3)] == [200, 200, 429]
        assert c.get("/health").status_code == 200


def test_limits_off_in_the_settings_limit_nothing(db, settings):
    token = login_as(db, "planner")
    off = RateSettings(enabled=False, per_user="1/minute", per_client="1/minute")
    app = create_app(settings.model_copy(update={"rates": off}), engine=db)
    with TestClient(app, client=("10.0.0.1", 40000)) as c:
        codes = {c.get("/api/v1/auth/me", headers=bearer(token)).status_code for _ in range(5)}
    assert codes == {200}


@pytest.fixture
def wang(db) -> str:
    """A planner with a real password (argon2: ~0.1 s)."""
    with db.begin() as conn:
        add_user(conn, SYSTEM, NewUser("wang", Role.PLANNER, password=PASSWORD), (), 10)
    return "wang"


def _audited(db, action: str) -> int:
    with db.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM audit_log WHERE action = :a"), {"a": action}
        ).scalar_one()


def test_logins_are_limited_per_address_before_the_user_lockout(db, settings, wang):
    assert settings.auth.max_failures_per_user > 3  # the lockout would come later
    with limited(db, settings, login="3/minute") as c:
        for _ in range(3):
            wrong = c.post("/api/v1/auth/token", data={"username": wang, "password": "x"})
            assert wrong.status_code == 401
        right = {"username": wang, "password": PASSWORD}
        assert_refused(
            c.post("/api/v1/auth/token", data=right), "logins from this address", "3 per 1 minute"
        )
        # Refused unseen: no password checked, no lockout counted or recorded.
        assert _audited(db, "auth.login_failed") == 3 and _audited(db, "auth.login_locked") == 0
        # The login page's form counts with the API's logins, and answers the form with the wait.
        form = c.get("/login")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        page = c.post("/login", data={**right, "csrf": csrf}, params={"lang": "en"})
        assert page.status_code == 429 and 0 < int(page.headers["retry-after"]) <= 60
        assert "try again in" in page.text and 'id="login-form"' in page.text
        assert SESSION_COOKIE not in page.headers.get("set-cookie", "")
        # Another address logs in, and other requests from this one are not logins.
        with second_client(c, "10.0.0.2") as other:
            assert other.post("/api/v1/auth/token", data=right).status_code == 200
        assert c.get("/login").status_code == 200


def test_login_limit_takes_every_window_of_the_setting(db, settings, wang):
    with limited(db, settings, login="5/minute;2/hour") as c:
        codes = [
            c.post("/api/v1/auth/token", data={"username": wang, "password": "x"}).status_code
            for _ in range(3)
        ]
        assert codes == [401, 401, 429]
        r = c.post("/api/v1/auth/token", data={"username": wang, "password": "x"})
        wait = int(r.headers["retry-after"])
        assert "at most 2 per 1 hour" in r.json()["detail"] and 3000 < wait <= 3600


def test_client_keys_group_an_ipv6_host_and_unwrap_mapped_ipv4():
    def key(host: str | None) -> str | None:
        return client_key({"client": (host, 1) if host else None})

    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::1") != key("2001:db8:1:2::1")
    assert key("::ffff:10.0.0.7") == key("10.0.0.7") == "10.0.0.7"
    assert key("testclient") == "testclient" and key(None) is None


@pytest.mark.parametrize("field", ["per_user", "per_client", "login"])
def test_a_limit_that_is_not_limits_notation_is_refused(field):
    with pytest.raises(ValidationError, match="is not a rate limit"):
        RateSettings(**{field: "as many as they like"})
