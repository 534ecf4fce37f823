"""Logging in to the pages: every page and map sends the browser to /login without a login, the
session cookie's flags, the login form's own CSRF token (double submit, before any session),
the CSRF token of cookie-authenticated writes, `next` kept on this site,
the navigation naming who is logged in, and in Chromium: log in, see a map, log out; the phone
page logging in again in place after its login ended offline, its outbox kept."""

import uuid
from http.cookies import SimpleCookie
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.deps import SESSION_COOKIE, csrf_token
from api.routers.login_pages import FORM_COOKIE, FORM_TOKEN_TTL_S
from geo.identity import tokens, users
from geo.identity.principal import SYSTEM
from geo.vocabulary import Role
from tests.factories import login_as
from tests.web.conftest import ARTIFACTS, offline_page, phone_context
from tests.web.test_maps import DRAWN_PIXELS

PASSWORD = "tundra-Lamp-92-quay"  # noqa: S105 (a test user: long and uncommon enough)
PAGES = ("/", "/dashboard", "/report", "/maps/all", "/maps/flood/coordinator")
ADDRESS = ("127.0.0.1", 50000)  # the audit log keeps the client's address as inet
AREA = {  # a rectangle in 萨尔图区, where the demo has grids, hazards and households
    "type": "Polygon",
    "coordinates": [[[125.01, 46.53], [125.09, 46.53], [125.09, 46.57], [125.01, 46.57],
                     [125.01, 46.53]]],
}  # fmt: skip


def add_password_user(engine, role: Role = Role.PLANNER, **scope) -> tuple[str, int]:
    """Store a user who logs in with PASSWORD (argon2: ~0.1 s); return (username, id)."""
    name = f"{role.value}-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        added = users.add_user(
            conn, SYSTEM, users.NewUser(name, role, password=PASSWORD, **scope), (), 10
        )
    return name, added.id


@pytest.fixture
def browser_client(db, settings):
    """A client with no credentials that keeps cookies, as a browser does."""
    with TestClient(create_app(settings, engine=db), client=ADDRESS) as c:
        yield c


def _cookie(response) -> SimpleCookie:
    jar = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


def _sets_session(response) -> bool:
    return any(h.startswith(f"{SESSION_COOKIE}=") for h in response.headers.get_list("set-cookie"))


def _field(page: str) -> str:
    """Return the login form's CSRF field value in a page."""
    return page.split('name="csrf" value="')[1].split('"')[0]


def form_post(c: TestClient, data: dict, **kwargs):
    """POST /login as a browser does: from the login page it was given (cookie and field)."""
    if FORM_COOKIE not in c.cookies:
        c.get("/login", follow_redirects=False)
    return c.post("/login", data={**data, "csrf": c.cookies[FORM_COOKIE]}, **kwargs)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_and_map_sends_to_the_login_page(anonymous, path):
    r = anonymous.get(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/login?next={quote(path, '')}"
    query = anonymous.get(path, params={"campaign": "CA04", "lang": "en"}, follow_redirects=False)
    assert query.headers["location"] == "/login?next=" + quote(f"{path}?campaign=CA04&lang=en", "")


def test_static_assets_and_the_login_page_stay_public(anonymous):
    assert anonymous.get("/static/css/base.css").status_code == 200
    assert anonymous.get("/static/js/session.js").status_code == 200
    r = anonymous.get("/login", params={"next": "/maps/all"})
    assert r.status_code == 200 and 'name="next" value="/maps/all"' in r.text
    # Only the language switch: no links to pages that need a login, no one logged in.
    nav = r.text.split('<nav class="site-nav"')[1].split("</nav>")[0]
    assert "/dashboard" not in nav and "/maps/" not in nav and "logout" not in nav
    assert 'href="/login?next=%2Fmaps%2Fall&amp;lang=en"' in nav
    assert r.headers["cache-control"] == "no-store"
    en = anonymous.get("/login", params={"lang": "en"})
    assert '<html lang="en">' in en.text and "Log in to riskgrid" in en.text
    assert 'action="/login?lang=en"' in en.text


def test_login_sets_a_session_cookie_and_goes_on_to_next(browser_client, db):
    name, _ = add_password_user(db)
    r = form_post(
        browser_client,
        {"username": name, "password": PASSWORD, "next": "/maps/flood?campaign=CA04"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/maps/flood?campaign=CA04"
    morsel = _cookie(r)[SESSION_COOKIE]
    # Logged in: the form's token is spent (a later login starts from a fresh one).
    assert FORM_COOKIE not in browser_client.cookies
    assert morsel["httponly"] and morsel["samesite"].lower() == "lax" and not morsel["secure"]
    assert morsel["path"] == "/" and int(morsel["max-age"]) == 8 * 3600
    # The cookie opens the pages, and they name who is logged in.
    page = browser_client.get("/dashboard")
    assert page.status_code == 200 and f'data-username="{name}"' in page.text
    assert f'<meta name="csrf-token" content="{csrf_token(morsel.value)}">' in page.text
    # Logged in already: the login page goes straight on.
    again = browser_client.get("/login", params={"next": "/report"}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/report"


def test_cookie_is_secure_when_served_over_https(db, settings):
    name, _ = add_password_user(db)
    app = create_app(settings, engine=db)
    with TestClient(app, base_url="https://testserver", client=ADDRESS) as c:
        form = c.get("/login")
        r = form_post(c, {"username": name, "password": PASSWORD}, follow_redirects=False)
    morsel = _cookie(r)[SESSION_COOKIE]
    assert r.headers["location"] == "/" and morsel["secure"] and morsel["httponly"]
    assert _cookie(form)[FORM_COOKIE]["secure"]


def test_wrong_password_shows_the_form_again_with_a_message(browser_client, db):
    name, _ = add_password_user(db)
    r = form_post(
        browser_client, {"username": name, "password": "not-it-at-all", "next": "/dashboard"}
    )
    assert r.status_code == 401 and not _sets_session(r)
    assert _field(r.text) == browser_client.cookies[FORM_COOKIE]  # the form works again
    assert "用户名或密码错误" in r.text and f'value="{name}"' in r.text
    assert 'name="next" value="/dashboard"' in r.text and 'id="login-form"' in r.text
    unknown = form_post(
        browser_client, {"username": "nobody-here", "password": PASSWORD}, params={"lang": "en"}
    )
    assert unknown.status_code == 401 and "Wrong username or password" in unknown.text
    assert browser_client.get("/", follow_redirects=False).status_code == 303


def test_lockout_answers_429_with_the_wait(browser_client, db, settings):
    name, _ = add_password_user(db)
    for _ in range(settings.auth.max_failures_per_user):
        assert form_post(browser_client, {"username": name, "password": "x"}).status_code == 401
    r = form_post(browser_client, {"username": name, "password": PASSWORD})
    wait = int(r.headers["retry-after"])
    assert r.status_code == 429 and 0 < wait <= settings.auth.failure_window_s
    assert f"请 {-(-wait // 60)} 分钟后再试" in r.text and not _sets_session(r)
    en = form_post(browser_client, {"username": name, "password": PASSWORD}, params={"lang": "en"})
    assert en.status_code == 429 and "try again in" in en.text and " min" in en.text


def test_login_page_gives_the_form_a_token_in_a_cookie_and_a_hidden_field(browser_client):
    r = browser_client.get("/login", params={"next": "/dashboard"})
    morsel = _cookie(r)[FORM_COOKIE]
    assert len(morsel.value) == 43 and _field(r.text) == morsel.value
    assert morsel["httponly"] and morsel["samesite"].lower() == "strict"
    assert morsel["path"] == "/login" and int(morsel["max-age"]) == FORM_TOKEN_TTL_S
    # A second tab gets the same token: the first one's form still works.
    assert _field(browser_client.get("/login").text) == morsel.value
    # Another browser gets another.
    with TestClient(browser_client.app, client=ADDRESS) as other:
        assert _field(other.get("/login").text) != morsel.value


def test_login_form_without_its_token_is_refused_and_shown_again(browser_client, db):
    name, _ = add_password_user(db)
    creds = {"username": name, "password": PASSWORD, "next": "/dashboard"}
    token = _field(browser_client.get("/login").text)
    for csrf in ("", "0" * 43, token + "x", "é" * 43):  # no field, a wrong one, not ASCII
        r = browser_client.post("/login", data={**creds, "csrf": csrf}, follow_redirects=False)
        assert r.status_code == 403 and not _sets_session(r)
        assert "登录表单已过期" in r.text and 'id="login-form"' in r.text
        assert f'value="{name}"' in r.text and 'name="next" value="/dashboard"' in r.text
        assert _field(r.text) == token  # the form shown again works
    with db.connect() as conn:  # refused before any password was checked
        assert (
            conn.execute(
                text("SELECT count(*) FROM audit_log WHERE actor = :u"), {"u": name}
            ).scalar_one()
            == 0
        )
    ok = browser_client.post("/login", data={**creds, "csrf": token}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/dashboard"


def test_another_site_cannot_log_a_browser_in_as_the_attacker(browser_client, db):
    """The attacker's page posts its own username and password and a token of its own; the
    victim's browser sends no form cookie cross-site (SameSite=Strict) or a different one."""
    attacker, _ = add_password_user(db)
    with TestClient(browser_client.app, client=ADDRESS) as theirs:
        their_token = _field(theirs.get("/login").text)
    forged = {"username": attacker, "password": PASSWORD, "csrf": their_token}
    r = browser_client.post("/login", data=forged, params={"lang": "en"})
    assert r.status_code == 403 and "The login form had expired" in r.text
    browser_client.get("/login")  # the victim has a login page open: another token
    again = browser_client.post("/login", data=forged, follow_redirects=False)
    assert again.status_code == 403 and SESSION_COOKIE not in browser_client.cookies


@pytest.mark.parametrize(
    "next_url",
    ["//evil.example", "https://evil.example/x", "/\\evil.example", "/\t/evil.example",
     "\\\\evil.example", "evil.example", "/login", "javascript:alert(1)", "/%0a/x\n/evil"],
)  # fmt: skip
def test_next_never_leaves_the_site(browser_client, db, next_url):
    name, _ = add_password_user(db)
    r = form_post(
        browser_client,
        {"username": name, "password": PASSWORD, "next": next_url},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = browser_client.get("/login", params={"next": next_url}, follow_redirects=False)
    assert page.headers["location"] == "/"


def test_logout_ends_the_session(browser_client, db):
    name, _ = add_password_user(db)
    form_post(browser_client, {"username": name, "password": PASSWORD})
    token = browser_client.cookies[SESSION_COOKIE]
    for wrong in ("0" * 64, "é" * 64):  # not ASCII: refused too, never a 500
        refused = browser_client.post("/logout", data={"csrf": wrong}, follow_redirects=False)
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    r = browser_client.post(
        "/logout", data={"csrf": csrf_token(token)}, params={"lang": "en"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/login?lang=en"
    assert SESSION_COOKIE not in browser_client.cookies
    # The token itself is revoked: a copy of the cookie opens nothing any more.
    browser_client.cookies.set(SESSION_COOKIE, token)
    assert browser_client.get("/", follow_redirects=False).status_code == 303
    with db.connect() as conn:
        actions = conn.execute(
            text("SELECT action FROM audit_log WHERE actor = :u ORDER BY id"), {"u": name}
        ).scalars()
        assert list(actions) == ["auth.login", "auth.logout"]


@pytest.fixture(scope="module")
def demo_app(demo_database):
    settings, engine, _ = demo_database
    with TestClient(create_app(settings, engine=engine), client=ADDRESS) as c:
        yield c, engine


def _session(c: TestClient, token: str | None) -> TestClient:
    """Return the client holding only the session cookie of `token` (None: no cookie)."""
    c.cookies.clear()
    if token is not None:
        c.cookies.set(SESSION_COOKIE, token)
    return c


def test_cookie_authenticated_writes_need_the_csrf_token(demo_app):
    c, engine = demo_app
    token = login_as(engine, "coordinator")
    body = {"geometry": AREA, "crs": "wgs84"}
    _session(c, token)
    for header in ({}, {"X-CSRF-Token": "0" * 64}, {"X-CSRF-Token": csrf_token(token + "x")}):
        r = c.post("/api/v1/risk/query", json=body, headers=header)
        assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
    ok = c.post(
        "/api/v1/risk/query",
        json=body,
        headers={"X-CSRF-Token": csrf_token(token)},
    )
    assert ok.status_code == 200 and ok.json()["grids"]
    # Reading needs none.
    assert c.get("/api/v1/auth/me").json()["role"] == "coordinator"
    # A bearer token cannot be sent by another site's form: it needs no CSRF token.
    _session(c, None)
    bearer = c.post("/api/v1/risk/query", json=body, headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200


def test_cached_map_shows_each_viewer_their_own_navigation(demo_app):
    c, engine = demo_app
    first, second = (login_as(engine, "planner") for _ in range(2))
    a = _session(c, first).get("/maps/fire")
    b = _session(c, second).get("/maps/fire")
    assert b.headers["x-cache"] == "hit" and a.headers["cache-control"] == "no-store"
    for page, token in ((a, first), (b, second)):
        user = page.text.split('data-username="')[1].split('"')[0]
        with engine.connect() as conn:
            assert tokens.authenticate(conn, token).username == user
        assert f'<meta name="csrf-token" content="{csrf_token(token)}">' in page.text
        assert f'name="csrf" value="{csrf_token(token)}"' in page.text
        assert "riskgrid: navigation" not in page.text
    # A planner may not open the flood coordinator's map: no link to it.
    assert 'href="/maps/flood/coordinator"' not in a.text
    # With a bearer token the page names the user but has no cookie to log out of.
    _session(c, None)
    bearer = c.get("/maps/fire", headers={"Authorization": f"Bearer {first}"})
    assert 'data-username="' in bearer.text and 'name="csrf-token"' not in bearer.text
    assert 'class="logout"' not in bearer.text


@pytest.mark.parametrize(("role", "links"), [("worker", False), ("dispatcher", True)])
def test_navigation_links_only_to_pages_the_role_may_open(demo_app, role, links):
    c, engine = demo_app
    page = (
        _session(c, None)
        .get("/", headers={"Authorization": f"Bearer {login_as(engine, role)}"})
        .text
    )
    assert ('href="/maps/flood/coordinator"' in page) == links
    assert 'href="/maps/all"' in page and 'href="/report"' in page


def test_log_in_see_the_map_log_out_in_chromium(live_server, demo_engine):
    name, _ = add_password_user(demo_engine)
    with offline_page(live_server, viewport={"width": 1280, "height": 800}) as (
        page,
        outside,
        errors,
    ):
        page.goto(f"{live_server}/maps/all")
        at_login = page.url
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "login_zh.png"))
        page.fill("#username", name)
        page.fill("#password", "wrong-password-1")
        page.click("#login-form button[type=submit]")
        wrong = page.inner_text("#login-error")
        page.fill("#password", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(f"{live_server}/maps/all")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)
        drawn = page.evaluate(DRAWN_PIXELS)
        who = page.inner_text("#theme-switcher nav.site-nav .who")
        cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
        page.screenshot(path=str(ARTIFACTS / "map_logged_in.png"))
        page.click("#theme-switcher form.logout button")
        page.wait_for_url(f"{live_server}/login")
        after_logout = page.url
        left = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
        page.goto(f"{live_server}/maps/all")
        again = page.url
        page.goto(f"{live_server}/login?lang=en&next=%2Fdashboard")
        page.screenshot(path=str(ARTIFACTS / "login_en.png"))
    assert outside == []
    assert all("401" in e for e in errors), errors  # the wrong password's page, nothing else
    assert at_login == f"{live_server}/login?next=%2Fmaps%2Fall"
    assert wrong == "用户名或密码错误，请重新输入。"
    assert drawn and max(drawn) > 1000 and name in who
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    assert after_logout == f"{live_server}/login" and left == []
    assert again == f"{live_server}/login?next=%2Fmaps%2Fall"


def test_logged_in_navigation_in_chromium(live_server, demo_engine):
    token = login_as(demo_engine, "coordinator", username="nav-coordinator")
    with offline_page(live_server, token, viewport={"width": 1280, "height": 800}) as (
        page,
        outside,
        errors,
    ):
        shown = {}
        for lang in ("zh", "en"):
            page.goto(f"{live_server}/dashboard?lang={lang}")
            shown[lang] = page.inner_text("nav.site-nav")
            page.screenshot(path=str(ARTIFACTS / f"nav_{lang}.png"))
    assert outside == [] and errors == []
    assert "nav-coordinator" in shown["zh"] and "汛期协调员" in shown["zh"]
    assert "退出登录" in shown["zh"] and "汛期协调地图" in shown["zh"]
    assert "flood coordinator" in shown["en"] and "Log out" in shown["en"]


@pytest.fixture
def phone_worker(demo_engine, demo_client):
    """A grid worker who logs in with PASSWORD, bound to the grid at 萨尔图区; their reports
    are removed from the shared demo database afterwards."""
    lon, lat = 125.0427, 46.5876
    found = demo_client.get("/api/v1/grids/lookup", params={"lon": lon, "lat": lat}).json()
    code = found["features"][0]["properties"]["code"]
    name, uid = add_password_user(demo_engine, Role.WORKER, grids=(code,))
    yield name, uid, code, (lon, lat)
    with demo_engine.begin() as conn:
        conn.execute(text("DELETE FROM reports WHERE reporter_id = :u"), {"u": uid})


def _count_reports(engine, uid: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM reports WHERE reporter_id = :u"), {"u": uid}
        ).scalar_one()


def test_phone_page_logs_in_again_after_its_login_ended_offline(
    live_server, demo_engine, phone_worker
):
    name, uid, code, (lon, lat) = phone_worker
    cookie = login_as(demo_engine, "worker", username=name)  # the page's session, as /login sets
    context, page = phone_context(live_server, cookie, lon, lat)
    page.goto(f"{live_server}/report")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#theme", "gas")
    page.select_option("#category", "gas_leak")
    page.click("#gps")
    page.wait_for_function("() => document.getElementById('lon').value !== ''")
    page.click("#send")  # online, with the session cookie and its CSRF token
    page.wait_for_selector("#grid-code")
    online = page.inner_text("#grid-code")
    login_hidden_at_first = page.locator("#login").is_hidden()
    # Offline: the report waits; meanwhile the login ends (revoked, as by an admin).
    context.set_offline(True)
    page.click("#send")
    page.wait_for_function("() => document.getElementById('outbox').dataset.count === '1'")
    with demo_engine.begin() as conn:
        conn.execute(
            text("UPDATE auth_tokens SET revoked_at = now() WHERE token_sha256 = :h"),
            {"h": tokens.digest(cookie)},
        )
    page.wait_for_timeout(2200)  # past the server's token cache (auth.token_cache_s, 2 s)
    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_selector("#login:not([hidden])")
    kept = page.evaluate("document.getElementById('outbox').dataset.count")
    sent_before_login = _count_reports(demo_engine, uid)
    username_box = page.input_value("#login-username")
    page.screenshot(path=str(ARTIFACTS / "report_login_again.png"))
    page.fill("#login-password", "not-the-password")
    page.click("#login-send")
    page.wait_for_function(
        "() => document.getElementById('login-result').textContent.includes('密码错误')"
    )
    page.fill("#login-password", PASSWORD)
    page.click("#login-send")
    page.wait_for_function("() => document.getElementById('outbox').dataset.count === '0'")
    kept_token = page.evaluate("JSON.parse(localStorage.getItem('riskgrid.token'))")
    login_hidden_after = page.locator("#login").is_hidden()
    page.click("#send")  # with the page's own token now
    page.wait_for_function(
        "() => document.getElementById('result').textContent.includes('" + code + "')"
    )
    page.screenshot(path=str(ARTIFACTS / "report_logged_in_again.png"))
    # Logging out ends the page's own token too, and the page leads to the login page.
    page.click("nav.site-nav form.logout button")
    page.wait_for_url(f"{live_server}/login")
    left_in_browser = page.evaluate("localStorage.getItem('riskgrid.token')")
    page.goto(f"{live_server}/report")
    reloaded = page.url
    context.close()
    assert online == code and login_hidden_at_first
    assert kept == "1" and sent_before_login == 1 and username_box == name
    assert kept_token["username"] == name and kept_token["token"] != cookie
    assert login_hidden_after
    assert _count_reports(demo_engine, uid) == 3
    assert left_in_browser is None and reloaded == f"{live_server}/login?next=%2Freport"
    with demo_engine.connect() as conn:
        revoked = conn.execute(
            text("SELECT revoked_at IS NOT NULL FROM auth_tokens WHERE token_sha256 = :h"),
            {"h": tokens.digest(kept_token["token"])},
        ).scalar_one()
    assert revoked
