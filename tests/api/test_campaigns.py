"""Campaigns as objects: created strictly, moved along draft → launched ⇄ paused → closed, edited
with an audit of what changed, by dispatchers and admins only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from geo.settings import Settings
from tests.geo.campaigns.place import (
    CHECKLIST,
    D_A,
    D_B,
    D_C,
    as_,
    campaign_body,
    emptied,
    prepared,
)


@pytest.fixture(scope="module")
def place(test_database: tuple[Settings, Engine], tmp_path_factory) -> Engine:
    return prepared(test_database[1], tmp_path_factory.mktemp("campaigns"))


@pytest.fixture
def world(place: Engine) -> Engine:
    return emptied(place)


@pytest.fixture(scope="module")
def api(place: Engine, test_database: tuple[Settings, Engine]) -> Iterator[TestClient]:
    with TestClient(create_app(test_database[0], engine=place)) as c:
        yield c


OLD_KEYS = {"code", "name", "theme", "starts_on", "ends_on", "description"}


def _audit(engine, action: str) -> list:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT actor, object_id, changes FROM audit_log WHERE action = :a ORDER BY id"),
            {"a": action},
        ).all()


def test_campaign_lifecycle_with_refused_moves(api, world):
    boss = as_(world, "dispatcher", username="boss")
    r = api.post("/api/v1/campaigns", json=campaign_body(), headers=boss)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["status"] == "draft" and c["moves"] == ["launch"] and c["created_by"] == "boss"
    assert c["districts"] == [D_A, D_B] and c["departments"] == ["水务局", "应急管理局"]
    assert [i["code"] for i in c["checklist"]] == [i["code"] for i in CHECKLIST]
    assert c["checklist"][1]["tally"] == "relocations" and c["targets"] is None

    # The same body again is the stored campaign; another body under the code is refused.
    again = api.post("/api/v1/campaigns", json=campaign_body(), headers=boss)
    assert again.status_code == 200 and again.json()["code"] == "CA11"
    other = api.post("/api/v1/campaigns", json=campaign_body(name="别的"), headers=boss)
    assert other.status_code == 409 and "taken" in other.json()["detail"]

    listed = api.get("/api/v1/campaigns", headers=as_(world, "planner")).json()
    assert [x["code"] for x in listed] == ["CA11"]
    assert OLD_KEYS | {"status", "checklist", "districts", "moves"} <= set(listed[0])
    assert api.get("/api/v1/campaigns", params={"status": "launched"}, headers=boss).json() == []

    def move(name: str, expect: int) -> dict:
        r = api.post(f"/api/v1/campaigns/CA11/{name}", headers=boss)
        assert r.status_code == expect, (name, r.text)
        return r.json()

    refused = move("pause", 409)["detail"]
    assert "draft" in refused and "possible now: launch" in refused
    assert move("close", 409)["detail"].endswith("possible now: launch")
    launched = move("launch", 200)
    assert launched["status"] == "launched" and launched["launched_at"]
    assert launched["moves"] == ["pause", "close"]
    assert "possible now: pause, close" in move("launch", 409)["detail"]
    assert move("pause", 200)["status"] == "paused"
    assert move("launch", 200)["status"] == "launched"
    closed = move("close", 200)
    assert closed["status"] == "closed" and closed["moves"] == [] and closed["closed_at"]
    assert "none" in move("launch", 409)["detail"]
    edit = api.patch("/api/v1/campaigns/CA11", json={"name": "x"}, headers=boss)
    assert edit.status_code == 409 and "kept as it ran" in edit.json()["detail"]

    moves = [a[1:] for a in _audit(world, "campaign.launch")] + [
        a[1:] for a in _audit(world, "campaign.close")
    ]
    assert moves[0] == ("CA11", {"status": ["draft", "launched"]})
    assert moves[1] == ("CA11", {"status": ["paused", "launched"]})
    assert moves[2] == ("CA11", {"status": ["launched", "closed"]})
    assert [a[0] for a in _audit(world, "campaign.create")] == ["boss"]
    missing = api.get("/api/v1/campaigns/CA99", headers=boss)
    assert missing.status_code == 404
    assert api.post("/api/v1/campaigns/CA99/launch", headers=boss).status_code == 404


INVALID = [
    ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"theme": "weather"}, "theme: unknown 'weather'; one of: flood"),
    ({"categories": ["gas_leak"]}, "gas_leak not of theme flood; its categories: waterlogging"),
    ({"ends_on": "2025-07-01"}, "ends_on 2025-07-01 is before starts_on 2025-07-20"),
    ({"starts_on": 20250720}, "starts_on: must be a date written YYYY-MM-DD"),
    (
        {"districts": ["230699"]},
        "districts: 230699 not stored districts; they are: 230602 萨尔图区",
    ),
    ({"districts": []}, "districts: List should have at least 1 item"),
    ({"departments": ["天气局"]}, "departments: 天气局 not in the routing table"),
    ({"checklist": []}, "checklist: List should have at least 1 item"),
    (
        {"checklist": [CHECKLIST[0], CHECKLIST[0]]},
        "checklist[1] (low_lying): the code 'low_lying' is used twice",
    ),
    (
        {"checklist": [{**CHECKLIST[0], "tally": "relocations"}]},
        "tally relocations sums numbers; make the item's answer number",
    ),
    (
        {"checklist": [CHECKLIST[1], {**CHECKLIST[2], "tally": "relocations"}]},
        "tally relocations is already counted by 'to_relocate'",
    ),
    ({"checklist": [{**CHECKLIST[0], "answer": "maybe"}]}, "checklist.0.answer: Input should be"),
    ({"checklist": [{**CHECKLIST[0], "required": 1}]}, "checklist.0.required: Input should be"),
    ({"targets": {"register": "cats"}}, "targets: Input tag 'cats' found using 'register_'"),
    (
        {"targets": {"register": "households", "filter": {"age": 3}}},
        "targets.households.filter.age: Extra inputs are not permitted",
    ),
    (
        {"targets": {"register": "workshops", "filter": {}}},
        "targets.workshops.filter: Extra inputs are not permitted",
    ),
    ({"code": "CA 11"}, "code: String should match pattern"),
    ({"name": "a\x00b"}, "name: must not contain NUL"),
]


def test_invalid_bodies_answer_422_saying_what_to_change(api, world):
    admin = as_(world, "admin")
    for change, message in INVALID:
        r = api.post("/api/v1/campaigns", json=campaign_body(**change), headers=admin)
        assert r.status_code == 422, (change, r.text)
        assert message in r.json()["detail"], (change, r.json()["detail"])
    with world.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM campaigns")).scalar() == 0


def test_only_dispatchers_and_admins_manage_campaigns(api, world):
    for role, scope in (
        ("worker", {"grids": ("230602001001001",)}),
        ("planner", {}),
        ("coordinator", {}),
        ("department", {"department": "水务局"}),
    ):
        r = api.post("/api/v1/campaigns", json=campaign_body(), headers=as_(world, role, **scope))
        assert r.status_code == 403, role
        assert "dispatchers and admins" in r.json()["detail"]
    assert api.post("/api/v1/campaigns", json=campaign_body()).status_code == 401
    district = as_(world, "dispatcher", districts=(D_A,))
    wide = api.post("/api/v1/campaigns", json=campaign_body(), headers=district)
    assert wide.status_code == 403 and "230603 outside yours" in wide.json()["detail"]
    own = api.post(
        "/api/v1/campaigns", json=campaign_body(code="CA12", districts=[D_A]), headers=district
    )
    assert own.status_code == 201
    # Nor may a worker launch it, or the district dispatcher widen it past their districts.
    worker = as_(world, "worker", grids=("230602001001001",))
    assert api.post("/api/v1/campaigns/CA12/launch", headers=worker).status_code == 403
    widen = api.patch("/api/v1/campaigns/CA12", json={"districts": [D_A, D_C]}, headers=district)
    assert widen.status_code == 403
    assert api.post("/api/v1/campaigns/CA12/launch", headers=district).status_code == 200


def test_edits_are_audited_and_a_launched_campaign_keeps_what_visits_rely_on(api, world):
    boss = as_(world, "dispatcher", username="boss")
    assert api.post("/api/v1/campaigns", json=campaign_body(), headers=boss).status_code == 201
    draft = api.patch(
        "/api/v1/campaigns/CA11", json={"theme": "fire", "categories": []}, headers=boss
    )
    assert draft.status_code == 200 and draft.json()["theme"] == "fire"
    back = {
        "theme": "flood",
        "targets": {"register": "households", "filter": {"living_alone_over": 60}},
    }
    assert api.patch("/api/v1/campaigns/CA11", json=back, headers=boss).status_code == 200
    assert api.post("/api/v1/campaigns/CA11/launch", headers=boss).status_code == 200

    edit = {"name": "创安十一号（延长）", "ends_on": "2025-07-30", "districts": [D_A]}
    r = api.patch("/api/v1/campaigns/CA11", json=edit, headers=boss)
    assert r.status_code == 200, r.text
    assert r.json()["ends_on"] == "2025-07-30" and r.json()["districts"] == [D_A]
    entries = _audit(world, "campaign.update")
    assert len(entries) == 3
    actor, code, changes = entries[-1]
    assert (actor, code) == ("boss", "CA11")
    assert changes == {
        "name": ["创安十一号", "创安十一号（延长）"],
        "ends_on": ["2025-07-24", "2025-07-30"],
        "districts": [[D_A, D_B], [D_A]],
    }
    # Nothing changed: nothing audited.
    assert api.patch("/api/v1/campaigns/CA11", json=edit, headers=boss).status_code == 200
    assert len(_audit(world, "campaign.update")) == 3

    def refused(patch: dict, words: str) -> None:
        r = api.patch("/api/v1/campaigns/CA11", json=patch, headers=boss)
        assert r.status_code == 409 and words in r.json()["detail"], r.text

    refused({"theme": "fire", "categories": []}, "its theme stay as launched")
    refused({"targets": {"register": "workshops"}}, "its targets stay as launched")
    refused({"checklist": CHECKLIST[1:]}, "'low_lying' cannot be removed")
    kind = [{**CHECKLIST[0], "answer": "text"}, *CHECKLIST[1:]]
    refused({"checklist": kind}, "'low_lying' keeps its answer (yes_no)")
    added = [*CHECKLIST, {"code": "sandbags", "label": "沙袋数", "answer": "number"}]
    relabelled = [{**added[0], "label": "低洼易涝点"}, *added[1:]]
    r = api.patch("/api/v1/campaigns/CA11", json={"checklist": relabelled}, headers=boss)
    assert r.status_code == 200 and r.json()["checklist"][-1]["code"] == "sandbags"
    assert set(_audit(world, "campaign.update")[-1][2]) == {"checklist"}
    assert api.patch("/api/v1/campaigns/CA11", json={}, headers=boss).status_code == 422
