"""GET /api/v1/notifications, /count, POST /read, the badge on every page and /notifications:
a user's own notifications only."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from geo.reports import notify
from geo.vocabulary import NotificationKind
from tests.factories import login_as

K = NotificationKind


class Someone:
    """A logged-in user: their id and a client with their token."""

    def __init__(self, db, settings, role: str, **scope) -> None:
        name = f"{role}-{uuid.uuid4().hex[:6]}"
        token = login_as(db, role, username=name, **scope)
        with db.connect() as conn:
            self.id = conn.execute(
                text("SELECT id FROM users WHERE username = :u"), {"u": name}
            ).scalar_one()
        # Entered: the app's lifespan hands it the engine.
        self.client = TestClient(create_app(settings, engine=db)).__enter__()
        self.client.headers["Authorization"] = f"Bearer {token}"


@pytest.fixture
def two(db, settings):
    """A worker and a department user, each with notifications of their own."""
    worker = Someone(db, settings, "worker", grids=("230602001001001",))
    gas = Someone(db, settings, "department", department="燃气公司")
    rid = uuid.uuid4()
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO reports (id, theme, category, severity, status, geom, source_crs, "
                "assignment_method, reported_at) VALUES (:id, 'fire', 'electrical', 2, "
                "'dispatched', ST_SetSRID(ST_MakePoint(125, 46.6), 4326), 'wgs84', "
                "'unassigned', now())"
            ),
            {"id": rid},
        )
        for kind in (K.CHECK_TASK, K.RESOLVED, K.OVERDUE):
            notify.emit(conn, kind, rid, users=(worker.id,), data={"note": "请核查"})
        notify.emit(conn, K.DISPATCHED, rid, department="燃气公司")
    yield worker, gas, rid
    worker.client.__exit__(None, None, None)
    gas.client.__exit__(None, None, None)


def test_a_user_lists_their_own_newest_first(two):
    worker, gas, rid = two
    r = worker.client.get("/api/v1/notifications")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert [n["kind"] for n in body["notifications"]] == ["overdue", "resolved", "check_task"]
    assert body["unread"] == 3 and body["next_before"] is None
    first = body["notifications"][0]
    assert first["report_id"] == str(rid) and first["read_at"] is None
    assert first["data"]["note"] == "请核查" and first["data"]["category"] == "electrical"
    theirs = gas.client.get("/api/v1/notifications").json()["notifications"]
    assert [n["kind"] for n in theirs] == ["dispatched"]
    assert not {n["id"] for n in theirs} & {n["id"] for n in body["notifications"]}


def test_pages_with_limit_and_before(two):
    worker, _, _ = two
    page = worker.client.get("/api/v1/notifications", params={"limit": 2}).json()
    assert len(page["notifications"]) == 2 and page["next_before"] is not None
    rest = worker.client.get(
        "/api/v1/notifications", params={"limit": 2, "before": page["next_before"]}
    ).json()
    assert [n["kind"] for n in rest["notifications"]] == ["check_task"]
    assert rest["next_before"] is None


def test_mark_read_changes_the_callers_own_only(two):
    worker, gas, _ = two
    mine = [n["id"] for n in worker.client.get("/api/v1/notifications").json()["notifications"]]
    [theirs] = [n["id"] for n in gas.client.get("/api/v1/notifications").json()["notifications"]]
    r = worker.client.post("/api/v1/notifications/read", json={"ids": [mine[0], theirs]})
    assert r.status_code == 200 and r.json() == {"marked": 1, "unread": 2}
    assert gas.client.get("/api/v1/notifications/count").json() == {"unread": 1}
    assert worker.client.get("/api/v1/notifications/count").json() == {"unread": 2}
    unread = worker.client.get("/api/v1/notifications", params={"unread": True}).json()
    assert mine[0] not in {n["id"] for n in unread["notifications"]}
    assert len(unread["notifications"]) == 2
    # Marking again changes nothing; all: the rest.
    again = worker.client.post("/api/v1/notifications/read", json={"ids": [mine[0]]})
    assert again.json() == {"marked": 0, "unread": 2}
    rest = worker.client.post("/api/v1/notifications/read", json={"all": True})
    assert rest.json() == {"marked": 2, "unread": 0}
    assert gas.client.get("/api/v1/notifications/count").json() == {"unread": 1}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": [1], "all": True},
        {"all": False},
        {"ids": []},
        {"ids": [True]},
        {"ids": ["1"]},
        {"ids": [0]},
        {"all": "yes"},
        {"ids": [1], "user_id": 2},
        {"ids": list(range(1, 1002))},
    ],
)
def test_a_read_body_must_name_ids_or_all(two, body):
    worker, _, _ = two
    r = worker.client.post("/api/v1/notifications/read", json=body)
    assert r.status_code == 422, r.text
    assert worker.client.get("/api/v1/notifications/count").json() == {"unread": 3}


def test_query_parameters_are_checked(two):
    worker, _, _ = two
    for params in ({"limit": 0}, {"limit": 201}, {"before": 0}, {"before": 2**63}):
        assert worker.client.get("/api/v1/notifications", params=params).status_code == 422


def test_without_a_login_every_route_is_401(anonymous):
    assert anonymous.get("/api/v1/notifications").status_code == 401
    assert anonymous.get("/api/v1/notifications/count").status_code == 401
    assert anonymous.post("/api/v1/notifications/read", json={"all": True}).status_code == 401


def _badge(html: str) -> str | None:
    found = re.search(r'class="notifications"[^>]*data-unread="(\d+)"', html)
    return found.group(1) if found else None


def test_every_page_shows_the_unread_count_and_links_to_the_list(two):
    worker, gas, _ = two
    for path in ("/", "/dashboard", "/report"):
        page = worker.client.get(path)
        assert page.status_code == 200, path
        assert _badge(page.text) == "3"
        assert '<span class="badge"' in page.text and 'href="/notifications"' in page.text
    english = worker.client.get("/", params={"lang": "en"}).text
    assert 'href="/notifications?lang=en"' in english and "3 unread" in english
    assert _badge(gas.client.get("/").text) == "1"
    gas.client.post("/api/v1/notifications/read", json={"all": True})
    read = gas.client.get("/").text
    assert _badge(read) == "0" and '<span class="badge"' not in read


def test_the_notifications_page_lists_them_with_the_words_of_each_kind(two):
    worker, _, rid = two
    page = worker.client.get("/notifications")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    for words in ("核查任务", "已处置", "超期", "请核查", f"/console/reports/{rid}"):
        assert words in page.text
    assert page.text.count('class="unread"') == 3 and 'id="mark-all-read"' in page.text
    assert "派遣到本部门" not in page.text  # the department's, not the worker's
    english = worker.client.get("/notifications", params={"lang": "en"}).text
    assert "To check on site" in english and "Mark all as read" in english
    only = worker.client.get("/notifications", params={"unread": "true"}).text
    assert only.count('class="unread"') == 3
    worker.client.post("/api/v1/notifications/read", json={"all": True})
    assert (
        'class="unread"' not in worker.client.get("/notifications", params={"unread": "true"}).text
    )
    assert "暂无通知" in worker.client.get("/notifications", params={"unread": "true"}).text


def test_the_page_needs_a_login(anonymous):
    r = anonymous.get("/notifications", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_the_badge_counts_to_99_plus(two, db):
    worker, _, rid = two
    with db.begin() as conn:
        for _ in range(100):
            notify.emit(conn, K.OVERDUE, rid, users=(worker.id,))
    page = worker.client.get("/").text
    assert _badge(page) == "100" and ">99+</span>" in page
    assert worker.client.get("/api/v1/notifications/count").json() == {"unread": 103}
