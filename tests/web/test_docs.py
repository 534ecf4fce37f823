"""The API docs: /docs (Swagger UI) and /redoc load only from riskgrid and, in Chromium with every
outside request aborted, list the operations; Swagger's Authorize logs in with a username and
password; the OpenAPI document's login requirement matches the answers."""

import re

import pytest

from tests.web.conftest import ARTIFACTS, offline_page
from tests.web.test_login import PASSWORD, add_password_user

OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_answer_anyone_and_load_only_local_assets(anonymous, path):
    r = anonymous.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/static/vendor/" in r.text and "/openapi.json" in r.text
    assert not OUTSIDE.search(r.text) and "fonts.googleapis" not in r.text
    for asset in re.findall(r"""(?:src|href)="(/static/[^"]+)""", r.text):
        assert anonymous.get(asset).status_code == 200, asset


def test_the_document_says_which_operations_need_a_login(anonymous):
    doc = anonymous.get("/openapi.json").json()
    flow = doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]
    assert flow["tokenUrl"] == "/api/v1/auth/token"
    secured = set()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if "security" in operation:
                secured.add((method, path))
                url = re.sub(r"\{[^}]+\}", "x", path)
                status = anonymous.request(method, url).status_code
                assert status == 401, (method, path, status)
    assert len(secured) > 20
    assert {p for _, p in secured} == {p for p in doc["paths"] if p.startswith("/api/v1/")} - {
        "/api/v1/auth/token"
    }
    # What answers without a login says so: no lock on the token route, /health, the pages.
    assert anonymous.post("/api/v1/auth/token").status_code == 422
    assert anonymous.get("/health").status_code == 200


def _swagger_operations(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll('.opblock-summary')].map(s =>
        s.querySelector('.opblock-summary-method').innerText.trim() + ' ' +
        s.querySelector('.opblock-summary-path').dataset.path)""")


def test_swagger_ui_offline_lists_the_operations_and_logs_in(live_server, demo_engine):
    username, _ = add_password_user(demo_engine)
    with offline_page(live_server, viewport={"width": 1280, "height": 900}) as (
        page,
        outside,
        errors,
    ):
        page.goto(f"{live_server}/docs", wait_until="networkidle")
        page.wait_for_selector(".opblock-summary-path[data-path='/api/v1/reports']")
        operations = _swagger_operations(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "docs_swagger.png"))
        # Authorize with a username and password (the OAuth2 password flow), then try a route.
        page.click("button.authorize")
        page.fill("#oauth_username", username)
        page.fill("#oauth_password", PASSWORD)
        page.click(".auth-container button.authorize")
        page.wait_for_selector(".auth-container h6:text-is('Authorized')")
        page.click(".auth-container button.btn-done")
        me = page.locator("#operations-auth-me_api_v1_auth_me_get")
        me.locator(".opblock-summary").click()
        me.locator("button.try-out__btn").click()
        with page.expect_response(f"{live_server}/api/v1/auth/me") as answer:
            me.locator("button.execute").click()
        sent = answer.value.request.headers.get("authorization", "")
        answered = answer.value.status
        cell = me.locator(".live-responses-table tbody .response-col_status").first
        cell.wait_for()
        status = cell.inner_text()
        body = me.locator(".live-responses-table tbody .microlight").first.inner_text()
    assert outside == [] and errors == []
    assert {"POST /api/v1/reports", "GET /api/v1/reports", "POST /api/v1/auth/token"} <= set(
        operations
    )
    assert len(operations) > 20
    assert sent.startswith("Bearer ") and answered == 200
    assert status.strip() == "200" and username in body


def test_redoc_offline_lists_the_operations(live_server, anonymous):
    summary = anonymous.get("/openapi.json").json()["paths"]["/api/v1/reports"]["post"]["summary"]
    with offline_page(live_server, viewport={"width": 1280, "height": 900}) as (
        page,
        outside,
        errors,
    ):
        page.goto(f"{live_server}/redoc", wait_until="networkidle")
        page.wait_for_selector("[data-section-id^='operation/'] h2")
        headings = page.evaluate("""() => [...document.querySelectorAll(
            "[data-section-id^='operation/'] h2")].map(h => h.innerText.trim())""")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "docs_redoc.png"))
    assert outside == [] and errors == []
    assert summary in headings and len(headings) > 20
