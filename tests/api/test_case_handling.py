"""The standard's loop worked by people (issue 14, items 1 and 2): 立案, dispatch to a department
and a handler, 回退, 返工, 核查, duplicates and rejections with what they need, 督办, department
inboxes, bulk moves, and who is told."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from tests.api.test_reports import WEST, grids, report  # noqa: F401 - the grids fixture
from tests.factories import after_photo, clients_for, login_as

GAS = "燃气公司"


@pytest.fixture
def people(grids, settings):  # noqa: F811 - the fixture imported above
    """A worker of WEST, a dispatcher, two users of the gas company, and their clients."""
    app = create_app(settings, engine=grids)
    tokens = {
        "worker": login_as(grids, "worker", "wang-wgy", grids=(WEST,)),
        "dispatcher": login_as(grids, "dispatcher", "zhao-zz"),
        "gas": login_as(grids, "department", "qian-rq", department=GAS),
        "gas2": login_as(grids, "department", "sun-rq", department=GAS),
        "fire": login_as(grids, "department", "li-xf", department="消防救援支队"),
    }
    with clients_for(app, tokens) as clients:
        yield clients


def send(c: TestClient, **kw) -> str:
    r = c.post("/api/v1/reports", json=report(**kw))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def move(c: TestClient, rid: str, to: str, **kw):
    return c.post(f"/api/v1/reports/{rid}/transitions", json={"to": to, **kw})


def ok(r) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def test_the_whole_loop_with_a_return_and_a_rework(people, db):
    w, d, gas = people["worker"], people["dispatcher"], people["gas"]
    rid = send(w)
    ok(move(d, rid, "accepted", note="立案"))
    ok(move(d, rid, "dispatched", department="消防救援支队"))
    back = ok(move(people["fire"], rid, "returned", reason="燃气泄漏不属于消防"))
    assert back["status"] == "returned" and back["return_count"] == 1
    sent = ok(move(d, rid, "dispatched", department=GAS, handler="qian-rq"))
    assert sent["department"] == GAS and sent["handler"] == "qian-rq"
    ok(move(gas, rid, "in_progress"))
    after_photo(db, rid)
    ok(move(gas, rid, "resolved", level="community"))
    redo = ok(move(w, rid, "in_progress", reason="阀门仍漏气"))
    assert redo["rework_count"] == 1 and redo["resolution_level"] is None
    # The photo of the failed fix does not count again: a new one is needed.
    stale = move(gas, rid, "resolved", level="community")
    assert stale.status_code == 409 and "after" in stale.json()["detail"]
    after_photo(db, rid)
    ok(move(gas, rid, "resolved", level="community"))
    done = ok(move(w, rid, "verified", note="复核通过"))
    assert done["status"] == "verified" and done["resolution_level"] == "community"
    steps = [(h["from_status"], h["to_status"], h["reason"]) for h in done["history"][1:]]
    assert steps == [
        ("reported", "accepted", None),
        ("accepted", "dispatched", None),
        ("dispatched", "returned", "燃气泄漏不属于消防"),
        ("returned", "dispatched", None),
        ("dispatched", "in_progress", None),
        ("in_progress", "resolved", None),
        ("resolved", "in_progress", "阀门仍漏气"),
        ("in_progress", "resolved", None),
        ("resolved", "verified", None),
    ]
    dispatches = [h for h in done["history"] if h["to_status"] == "dispatched"]
    assert [(h["department"], h["handler"]) for h in dispatches] == [
        ("消防救援支队", None),
        (GAS, "qian-rq"),
    ]


@pytest.mark.parametrize(
    ("path", "to", "kw", "says"),
    [
        ([], "rejected", {}, "needs reason"),
        ([], "duplicate", {}, "needs duplicate_of"),
        (["accepted", "dispatched"], "returned", {}, "needs reason"),
        (["accepted", "dispatched", "in_progress"], "resolved", {}, "needs level"),
        (["accepted"], "dispatched", {"department": "月球开发局"}, "unknown department"),
        (["accepted"], "dispatched", {"handler": "li-xf"}, "not an active user of 燃气公司"),
        (["accepted"], "dispatched", {"handler": "nobody"}, "not an active user"),
    ],
)
def test_a_move_without_what_it_needs_is_refused_and_nothing_changes(people, path, to, kw, says):
    d = people["dispatcher"]
    rid = send(people["worker"])
    for step in path:
        actor = people["gas"] if step == "in_progress" else d
        ok(move(actor, rid, step))
    actor = people["gas"] if to in ("returned", "resolved") else d
    r = move(actor, rid, to, **kw)
    assert r.status_code == 422 and says in r.json()["detail"], r.text
    status = d.get(f"/api/v1/reports/{rid}").json()["status"]
    assert status == (path[-1] if path else "reported")


def test_a_dispatch_goes_to_the_routed_department_unless_named(people):
    d = people["dispatcher"]
    rid = send(people["worker"])
    ok(move(d, rid, "accepted"))
    assert ok(move(d, rid, "dispatched"))["department"] == GAS  # gas leaks route there


def test_a_duplicate_names_its_original_never_another_duplicate(people):
    w, d = people["worker"], people["dispatcher"]
    first, second, third = send(w), send(w, x=260), send(w, x=270)
    r = move(d, second, "duplicate", duplicate_of=second)
    assert r.status_code == 422 and "no other report" in r.json()["detail"]
    r = move(d, second, "duplicate", duplicate_of=str(uuid.uuid4()))
    assert r.status_code == 422
    assert ok(move(d, second, "duplicate", duplicate_of=first))["duplicate_of"] == first
    r = move(d, third, "duplicate", duplicate_of=second)
    assert r.status_code == 422 and f"itself a duplicate of {first}" in r.json()["detail"]


def test_a_disputes_report_resolves_without_an_after_photo(people):
    d, w = people["dispatcher"], people["worker"]
    rid = send(w, theme="dispute", category="family")
    ok(move(d, rid, "accepted"))
    dept = ok(move(d, rid, "dispatched"))["department"]
    user = login_as(d.app.state.engine, "department", "zhou-tj", department=dept)
    with TestClient(d.app, headers={"Authorization": f"Bearer {user}"}) as mediator:
        ok(move(mediator, rid, "in_progress"))
        assert ok(move(mediator, rid, "resolved", level="community"))["status"] == "resolved"


def test_inboxes_filter_mine_unassigned_and_supervised(people):
    d, gas, gas2 = people["dispatcher"], people["gas"], people["gas2"]
    ids = [send(people["worker"], x=100 + 40 * i) for i in range(3)]
    for rid in ids:
        ok(move(d, rid, "accepted"))
    ok(move(d, ids[0], "dispatched", handler="qian-rq"))
    ok(move(d, ids[1], "dispatched", handler="sun-rq"))
    ok(move(d, ids[2], "dispatched"))

    def inbox(c, **params) -> set[str]:
        r = c.get("/api/v1/reports", params=params)
        assert r.status_code == 200
        return {f["id"] for f in r.json()["features"]}

    assert inbox(gas, assigned="mine") == {ids[0]}
    assert inbox(gas2, assigned="mine") == {ids[1]}
    assert inbox(gas, assigned="unassigned") == {ids[2]}
    assert inbox(gas) == set(ids) == inbox(gas, assigned="all")
    assert inbox(people["fire"]) == set()  # not theirs
    # Taking up an unassigned task makes it yours.
    ok(move(gas2, ids[2], "in_progress"))
    assert inbox(gas2, assigned="mine") == {ids[1], ids[2]}
    r = d.put(f"/api/v1/reports/{ids[1]}/supervision", json={"note": "今日必须处置"})
    sup = ok(r)["supervision"]
    assert sup["by"] == "zhao-zz" and sup["note"] == "今日必须处置" and sup["at"]
    assert inbox(d, supervised="true") == {ids[1]}
    assert inbox(d, supervised="false") == {ids[0], ids[2]}
    assert ok(d.delete(f"/api/v1/reports/{ids[1]}/supervision"))["supervision"] is None
    assert inbox(d, supervised="true") == set()


def test_supervision_is_a_dispatchers_and_not_on_closed_reports(people):
    d, w = people["dispatcher"], people["worker"]
    rid = send(w)
    r = w.put(f"/api/v1/reports/{rid}/supervision", json={})
    assert r.status_code == 403 and "督办 is set by a dispatcher or an admin" in r.json()["detail"]
    ok(move(d, rid, "rejected", reason="重复上报"))
    assert d.put(f"/api/v1/reports/{rid}/supervision", json={}).status_code == 409
    assert d.put(f"/api/v1/reports/{uuid.uuid4()}/supervision", json={}).status_code == 404


def test_bulk_accept_and_dispatch_answer_per_report_and_audit_each(people, db):
    d = people["dispatcher"]
    ids = [send(people["worker"], x=100 + 40 * i) for i in range(4)]
    ok(move(d, ids[3], "rejected", reason="误报"))
    missing = str(uuid.uuid4())
    r = ok(d.post("/api/v1/reports:transitions", json={"ids": [*ids, missing], "to": "accepted"}))
    assert (r["moved"], r["failed"]) == (3, 2)
    assert [x["status"] for x in r["results"]] == [200, 200, 200, 409, 404]
    r = ok(
        d.post(
            "/api/v1/reports:transitions",
            json={"ids": ids[:3], "to": "dispatched", "department": GAS, "handler": "qian-rq"},
        )
    )
    assert r["moved"] == 3 and {x["report"]["handler"] for x in r["results"]} == {"qian-rq"}
    with db.connect() as conn:
        audited = conn.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE action = 'report.transition' "
                "AND changes->'status'->>1 = 'dispatched'"
            )
        ).scalar_one()
    assert audited == 3
    fresh = send(people["worker"], x=400)
    refused = people["worker"].post(
        "/api/v1/reports:transitions", json={"ids": [fresh], "to": "accepted"}
    )
    assert ok(refused)["results"][0]["status"] == 403


def test_who_is_told_of_each_move(people, db):
    w, d, gas = people["worker"], people["dispatcher"], people["gas"]
    rid = send(w)
    ok(move(d, rid, "accepted"))
    ok(move(d, rid, "dispatched", handler="qian-rq"))

    def kinds(c) -> list[str]:
        r = c.get("/api/v1/notifications")
        assert r.status_code == 200, r.text
        body = r.json()
        items = body["notifications"] if isinstance(body, dict) else body
        return sorted(n["kind"] for n in items if n["report_id"] == rid)

    assert kinds(gas) == ["assigned", "dispatched"]
    assert kinds(people["gas2"]) == ["dispatched"]
    assert kinds(people["fire"]) == []
    ok(move(gas, rid, "in_progress"))
    after_photo(db, rid)
    ok(move(gas, rid, "resolved", level="grid"))
    assert kinds(w) == ["check_task", "resolved"]  # the grid's worker, also the reporter
    ok(d.put(f"/api/v1/reports/{rid}/supervision", json={"note": "加快"}))
    assert kinds(gas) == ["assigned", "dispatched", "supervised"]
    with db.connect() as conn:
        outbox = conn.execute(text("SELECT kind FROM outbox ORDER BY id")).scalars().all()
    assert outbox == ["dispatched", "assigned", "check_task", "resolved", "supervised"]


def test_themes_list_states_moves_with_what_they_need_and_roles(people):
    body = ok(people["worker"].get("/api/v1/themes"))
    assert set(body["statuses"]) >= {"accepted", "returned"}
    needs = {(m["from"], m["to"]): m["needs"] for m in body["moves"]}
    assert needs[("dispatched", "returned")] == ["reason"]
    assert needs[("reported", "duplicate")] == ["duplicate_of"]
    assert needs[("reported", "accepted")] == []


def test_a_report_lists_the_moves_its_reader_may_make_now(people):
    w, d, gas = people["worker"], people["dispatcher"], people["gas"]
    rid = send(w)

    def moves(c) -> list:
        return ok(c.get(f"/api/v1/reports/{rid}"))["moves"]

    assert moves(w) == []
    assert [m["to"] for m in moves(d)] == ["accepted", "rejected", "duplicate"]
    assert moves(d)[1]["needs"] == ["reason"]
    ok(move(d, rid, "accepted"))
    ok(move(d, rid, "dispatched"))
    assert [m["to"] for m in moves(gas)] == ["in_progress", "returned"]
    assert moves(d) == []


def test_a_fix_on_the_spot_is_stored_resolved_and_checked_by_a_dispatcher(people, db):
    w, d = people["worker"], people["dispatcher"]
    r = w.post("/api/v1/reports", json={**report(), "on_site": True})
    assert r.status_code == 201, r.text
    fixed = r.json()
    assert (fixed["status"], fixed["resolution_level"], fixed["on_site"]) == (
        "resolved",
        "grid",
        True,
    )
    rid = fixed["id"]
    steps = ok(w.get(f"/api/v1/reports/{rid}"))["history"]
    assert [(h["from_status"], h["to_status"], h["note"]) for h in steps[1:]] == [
        ("reported", "resolved", "自行处置")
    ]
    # Its worker does not check their own fix; the desk does, once the after photo is there.
    assert move(w, rid, "verified").status_code == 403
    assert ok(w.get(f"/api/v1/reports/{rid}"))["moves"] == []
    early = move(d, rid, "verified")
    assert early.status_code == 409 and "after" in early.json()["detail"]
    after_photo(db, rid)
    assert ok(move(d, rid, "verified"))["status"] == "verified"
    tasks = ok(d.get("/api/v1/notifications"))["notifications"]
    assert [n["kind"] for n in tasks if n["report_id"] == rid] == ["check_task"]


def test_only_a_worker_reports_a_fix_on_the_spot(people):
    r = people["dispatcher"].post("/api/v1/reports", json={**report(), "on_site": True})
    assert r.status_code == 403 and "自行处置" in r.json()["detail"]
    r = people["worker"].post("/api/v1/reports", json={**report(), "on_site": "yes"})
    assert r.status_code == 422
