"""Logging in through the API: tokens, the same 401 for every failure, lockout, expiry, logout,
and nothing answering without a login."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from geo.errors import InvalidInput
from geo.identity.principal import SYSTEM
from geo.identity.users import NewUser, add_user
from geo.vocabulary import Role
from tests.factories import login_as

PASSWORD = "riverbank-flood-2026"  # noqa: S105 - a test user's


@pytest.fixture
def wang(db):
    """A planner with a real password (argon2: one hash per test that needs it)."""
    with db.begin() as conn:
        add_user(conn, SYSTEM, NewUser("wang", Role.PLANNER, password=PASSWORD), (), 10)
    return "wang"


@pytest.fixture
def api(db, settings):
    """A client without credentials, seen as coming from 10.1.2.3."""
    with TestClient(create_app(settings, engine=db), client=("10.1.2.3", 40000)) as c:
        yield c


def log_in(api, username, password):
    return api.post("/api/v1/auth/token", data={"username": username, "password": password})


def audit(db, action):
    with db.connect() as conn:
        return conn.execute(
            text(
                "SELECT actor, role, object_id, host(client) AS client, request_id "
                "FROM audit_log WHERE action = :a ORDER BY id"
            ),
            {"a": action},
        ).all()


def test_login_answers_a_bearer_token_that_works_until_logout(api, db, wang):
    r = log_in(api, "wang", PASSWORD)
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 8 * 3600  # noqa: S105
    assert body["username"] == "wang" and body["role"] == "planner"
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    me = api.get("/api/v1/auth/me", headers=auth).json()
    assert me == {
        "username": "wang",
        "name": "wang",
        "role": "planner",
        "grids": [],
        "districts": [],
        "department": None,
    }
    assert api.post("/api/v1/auth/logout", headers=auth).status_code == 204
    # Revoked in this process at once, not after the token cache's seconds.
    gone = api.get("/api/v1/auth/me", headers=auth)
    assert gone.status_code == 401 and gone.headers["www-authenticate"] == "Bearer"
    assert [r.actor for r in audit(db, "auth.login")] == ["wang"]
    assert [r.actor for r in audit(db, "auth.logout")] == ["wang"]
    assert audit(db, "auth.login")[0].client == "10.1.2.3"


def test_wrong_password_and_unknown_user_get_the_same_401(api, db, wang):
    wrong = log_in(api, "wang", "not-the-password")
    nobody = log_in(api, "nobody-here", PASSWORD)
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json() == {"detail": "wrong username or password"}
    assert [r.actor for r in audit(db, "auth.login_failed")] == ["wang", "nobody-here"]


def test_repeated_failures_lock_the_username_from_that_address_with_retry_after(api, db, wang):
    for _ in range(5):
        assert log_in(api, "wang", "guess").status_code == 401
    locked = log_in(api, "wang", PASSWORD)  # even the right password, while locked
    assert locked.status_code == 429
    wait = int(locked.headers["retry-after"])
    assert 0 < wait <= 900 and f"{wait} s" in locked.json()["detail"]
    assert [r.actor for r in audit(db, "auth.login_locked")] == ["wang"]


def test_repeated_failures_from_one_address_lock_it(db, settings, wang):
    rules = settings.auth.model_copy(update={"max_failures_per_client": 3})
    app = create_app(settings.model_copy(update={"auth": rules}), engine=db)
    with TestClient(app, client=("10.9.9.9", 1)) as c:
        for name in ("a1", "a2", "a3"):
            assert log_in(c, name, "guess").status_code == 401
        assert log_in(c, "wang", PASSWORD).status_code == 429
    with TestClient(app, client=("10.9.9.10", 1)) as other:
        assert log_in(other, "wang", PASSWORD).status_code == 200


def test_an_expired_or_disabled_users_token_is_refused(db, settings):
    # A token cache of 0.2 s (2 s as shipped): a token is checked again soon after.
    quick = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"token_cache_s": 0.2})}
    )
    short = login_as(db, "planner", "short", ttl_s=1)
    lasting = login_as(db, "planner", "leaver")
    with TestClient(create_app(quick, engine=db), client=("10.1.2.3", 40000)) as api:
        assert api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {short}"}).is_success
        time.sleep(1.3)  # past the expiry and the token cache
        r = api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {short}"})
        assert r.status_code == 401
        assert api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {lasting}"}).is_success
        with db.begin() as conn:
            from geo.identity.users import disable_user

            disable_user(conn, SYSTEM, "leaver")
        time.sleep(0.3)
        r = api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {lasting}"})
        assert r.status_code == 401


def test_common_and_short_passwords_are_refused(db):
    with db.begin() as conn:
        for password, needle in (
            ("short1!", "at least 10"),
            ("password123", "most common"),
            ("qwertyuiop", "most common"),
            ("zhang-wei-zhangwei", "username"),
        ):
            with pytest.raises(InvalidInput, match=needle):
                add_user(conn, SYSTEM, NewUser("zhangwei", Role.PLANNER, password=password), (), 10)


def test_every_api_route_but_the_login_needs_a_token(api):
    paths = api.get("/openapi.json").json()["paths"]
    checked = 0
    for path, ops in paths.items():
        if not path.startswith("/api/v1/") or path == "/api/v1/auth/token":
            continue
        concrete = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
        for method in ops:
            r = api.request(method.upper(), concrete)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 25


def test_every_page_sends_the_browser_to_the_login_page(api):
    for path in ("/", "/dashboard", "/report", "/maps/all", "/maps/flood/coordinator"):
        r = api.get(path, params={"lang": "en"}, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=" + path.replace("/", "%2F"))
    assert api.get("/login").status_code == 200


def test_health_tells_an_anonymous_caller_only_that_it_is_up(api, db):
    assert api.get("/health").json() == {"status": "ok"}
    token = login_as(db, "planner")
    full = api.get("/health", headers={"Authorization": f"Bearer {token}"}).json()
    assert full["database"] == "reachable" and "counts" in full


def test_request_ids_are_echoed_or_made(api, db):
    token = {"Authorization": f"Bearer {login_as(db, 'admin')}"}
    mine = api.get("/api/v1/auth/me", headers={**token, "X-Request-ID": "phone-42.7"})
    assert mine.headers["x-request-id"] == "phone-42.7"
    made = api.get("/api/v1/auth/me", headers={**token, "X-Request-ID": "bad id <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", api.get("/health").headers["x-request-id"])


def test_the_audit_log_is_for_admins_and_cannot_be_changed(api, db, wang):
    log_in(api, "wang", "guess")
    planner = {"Authorization": f"Bearer {login_as(db, 'planner')}"}
    admin = {"Authorization": f"Bearer {login_as(db, 'admin')}"}
    assert api.get("/api/v1/audit", headers=planner).status_code == 403
    page = api.get("/api/v1/audit", params={"action": "auth.*"}, headers=admin)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert [e["action"] for e in page.json()["entries"]] == ["auth.login_failed"]
    with db.connect() as conn:
        for sql in (
            "UPDATE audit_log SET actor = 'x'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(Exception, match="append-only"):
                conn.execute(text(sql))
            conn.rollback()


def test_an_attacker_cannot_lock_the_user_out_from_elsewhere_until_many_addresses_fail(
    db, settings, wang
):
    app = create_app(settings, engine=db)

    def from_(address):
        return TestClient(app, client=(address, 1))

    with from_("10.6.6.6") as attacker:
        for _ in range(5):
            assert log_in(attacker, "wang", "guess").status_code == 401
        assert log_in(attacker, "wang", PASSWORD).status_code == 429
    with from_("10.1.1.1") as wang_at_work:
        assert log_in(wang_at_work, "wang", PASSWORD).status_code == 200
    # From four addresses' worth of failures on, the username is locked everywhere.
    for n in range(2, 5):
        with from_(f"10.6.6.{n}") as more:
            for _ in range(5):
                log_in(more, "wang", "guess")
    with from_("10.1.1.1") as wang_at_work:
        assert log_in(wang_at_work, "wang", PASSWORD).status_code == 429


def test_a_refused_password_is_never_echoed(api):
    r = log_in(api, "wang", "x" * 300)
    assert r.status_code == 422 and "xxxx" not in r.text
