"""Notifications and outbox events: who gets them, what leaves for the gateway, once per event."""

from __future__ import annotations

import uuid

import orjson
import pytest
from sqlalchemy import text

from boundaries.importer import ImportOptions, import_file
from geo.errors import InvalidInput, NotFound
from geo.identity.principal import Principal
from geo.reports import notify
from geo.settings import ImportSettings
from geo.vocabulary import NotificationKind, Role
from tests.factories import grid_frame, login_as, tiled, write

K = NotificationKind
DISTRICT = "230602"
PERSONAL = ("张三", "13800138000", "李四", "13900000000", "幸福小区3号楼")


def user(db, role: str, department: str | None = None, **scope: tuple[str, ...]) -> int:
    """Store a user and return its id."""
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    login_as(db, role, username=name, department=department, **scope)
    with db.connect() as conn:
        return conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": name}).scalar()


def report(db, district: str | None = DISTRICT, department: str | None = "燃气公司") -> uuid.UUID:
    """Store one dispatched report with personal data in it; return its id."""
    rid = uuid.uuid4()
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO reports (id, theme, category, severity, status, geom, source_crs, "
                "assignment_method, reported_at, description, reporter, district_code, "
                "department, due_at) VALUES (:id, 'fire', 'electrical', 2, 'dispatched', "
                "ST_SetSRID(ST_MakePoint(125.0, 46.6), 4326), 'wgs84', 'unassigned', now(), "
                ":d, :r, :district, :dept, now() + interval '2 days')"
            ),
            {
                "id": rid,
                "d": "张三 13800138000 家门口电线冒烟，幸福小区3号楼",
                "r": "李四",
                "district": district,
                "dept": department,
            },
        )
    return rid


def emit(db, *args, **kwargs) -> uuid.UUID:
    with db.begin() as conn:
        return notify.emit(conn, *args, **kwargs)


def told(db, event_id: uuid.UUID) -> set[int]:
    with db.connect() as conn:
        return set(
            conn.execute(
                text("SELECT user_id FROM notifications WHERE event_id = :e"), {"e": event_id}
            ).scalars()
        )


def outbox(db, event_id: uuid.UUID) -> list:
    with db.connect() as conn:
        return conn.execute(
            text("SELECT kind, payload FROM outbox WHERE event_id = :e"), {"e": event_id}
        ).all()


def test_dispatched_reaches_the_enabled_users_of_that_department_only(db):
    gas = {user(db, "department", "燃气公司"), user(db, "department", "燃气公司")}
    other = user(db, "department", "供电公司")
    gone = user(db, "department", "燃气公司")
    with db.begin() as conn:
        conn.execute(text("UPDATE users SET disabled_at = now() WHERE id = :i"), {"i": gone})
    event = emit(db, K.DISPATCHED, report(db), department="燃气公司")
    assert told(db, event) == gas
    assert other not in told(db, event)
    [(kind, payload)] = outbox(db, event)
    assert kind == "dispatched"
    assert payload["recipients"] == {
        "users": sorted(gas),
        "department": "燃气公司",
        "district": None,
        "grid": None,
    }


def test_district_dispatchers_are_those_bound_to_it_and_the_city_wide_ones(db):
    bound = user(db, "dispatcher", districts=(DISTRICT,))
    elsewhere = user(db, "dispatcher", districts=("230603",))
    city_wide = user(db, "dispatcher")
    user(db, "coordinator")  # sees the district too, but does not dispatch
    user(db, "admin")
    event = emit(db, K.ESCALATED, report(db), district_dispatchers=True)
    assert told(db, event) == {bound, city_wide}
    assert outbox(db, event)[0].payload["recipients"]["district"] == DISTRICT
    # A report in no district reaches the city-wide dispatchers only.
    event = emit(db, K.ESCALATED, report(db, district=None), district_dispatchers=True)
    assert told(db, event) == {city_wide}
    # A district named explicitly.
    event = emit(db, K.ESCALATED, report(db), district_dispatchers="230603")
    assert told(db, event) == {elsewhere, city_wide}


def test_a_check_task_goes_to_the_workers_of_the_reports_grid(db, tmp_path):
    rows = tiled(2)
    path = write(grid_frame(rows), tmp_path / "g.geojson")
    import_file(db, path, ImportOptions(), ImportSettings())
    mine, other = rows[0]["code"], rows[1]["code"]
    here = user(db, "worker", grids=(mine,))
    user(db, "worker", grids=(other,))
    rid = report(db)
    with db.begin() as conn:
        conn.execute(
            text("UPDATE reports SET grid_code = :g WHERE id = :id"), {"g": mine, "id": rid}
        )
    event = emit(db, K.CHECK_TASK, rid, grid_workers=True)
    assert told(db, event) == {here}
    recipients = outbox(db, event)[0].payload["recipients"]
    assert recipients["grid"] == mine and recipients["users"] == [here]
    # A report in no grid has no worker to check it.
    assert told(db, emit(db, K.CHECK_TASK, report(db), grid_workers=True)) == set()


def test_named_users_are_told_but_never_the_actor(db):
    handler = user(db, "department", "燃气公司")
    dispatcher = user(db, "dispatcher")
    me = Principal(dispatcher, "me", Role.DISPATCHER)
    event = emit(db, K.ASSIGNED, report(db), users=(handler, dispatcher), who=me)
    assert told(db, event) == {handler}
    # The department's dispatch by a user of it: the others are told, the mover not.
    colleague = user(db, "department", "燃气公司")
    mover = Principal(handler, "h", Role.DEPARTMENT, department="燃气公司")
    event = emit(db, K.DISPATCHED, report(db), department="燃气公司", who=mover)
    assert told(db, event) == {colleague}


def test_payload_holds_codes_and_times_but_no_personal_data(db):
    rid = report(db)
    handler = user(db, "department", "燃气公司")
    note = {"reason": "不属于本部门", "note": "联系 张三 13900000000 幸福小区3号楼"}
    event = emit(db, K.RETURNED, rid, users=(handler,), data=note)
    [(_, payload)] = outbox(db, event)
    assert set(payload) == {"event_id", "kind", "occurred_at", "report", "recipients"}
    assert payload["event_id"] == str(event) and payload["kind"] == "returned"
    assert payload["report"]["id"] == str(rid)
    assert set(payload["report"]) == {
        "id",
        "theme",
        "category",
        "status",
        "grid",
        "district",
        "department",
        "due_at",
    }
    assert payload["report"]["due_at"].endswith("Z")
    sent = orjson.dumps(payload).decode()
    assert not [p for p in PERSONAL if p in sent]
    assert "reason" not in sent and "不属于本部门" not in sent
    # The note stays inside: the handler's notification has it.
    with db.connect() as conn:
        data = conn.execute(
            text("SELECT data FROM notifications WHERE event_id = :e"), {"e": event}
        ).scalar_one()
    assert data["note"] == note["note"] and data["category"] == "electrical"


def test_the_same_event_twice_is_stored_once(db):
    gas = {user(db, "department", "燃气公司"), user(db, "department", "燃气公司")}
    rid = report(db)
    key = notify.event_key("overdue", rid, "2024-10-08T09:00:00Z")
    assert key == notify.event_key("overdue", rid, "2024-10-08T09:00:00Z")
    assert key != notify.event_key("overdue", rid, "2024-10-09T09:00:00Z")
    for _ in range(2):
        assert emit(db, K.OVERDUE, rid, department="燃气公司", event_id=key) == key
    assert told(db, key) == gas
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM notifications")).scalar() == 2
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar() == 1


def test_an_event_exists_only_if_the_move_committed(db):
    handler = user(db, "department", "燃气公司")
    rid = report(db)
    with pytest.raises(RuntimeError), db.begin() as conn:
        notify.emit(conn, K.SUPERVISED, rid, users=(handler,))
        raise RuntimeError("the move failed after the event")
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM notifications")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar() == 0


def test_an_event_without_recipients_still_goes_out(db):
    event = emit(db, K.RESOLVED, report(db), department="没有人的部门")
    assert told(db, event) == set()
    assert outbox(db, event)[0].payload["recipients"]["users"] == []


def test_unknown_kind_and_missing_report_are_refused(db):
    with pytest.raises(InvalidInput, match="check_task"), db.begin() as conn:
        notify.emit(conn, "lunch", report(db))
    with pytest.raises(NotFound), db.begin() as conn:
        notify.emit(conn, K.OVERDUE, uuid.uuid4())


def test_list_count_and_mark_read_touch_the_users_own_only(db):
    a, b = user(db, "worker"), user(db, "worker")
    rid = report(db)
    for kind in (K.CHECK_TASK, K.RESOLVED, K.OVERDUE):
        emit(db, kind, rid, users=(a, b))
    with db.begin() as conn:
        page = notify.notifications(conn, a, limit=2)
        assert [n["kind"] for n in page["notifications"]] == ["overdue", "resolved"]
        assert page["unread"] == 3 and page["next_before"] is not None
        rest = notify.notifications(conn, a, limit=2, before=page["next_before"])
        assert [n["kind"] for n in rest["notifications"]] == ["check_task"]
        assert rest["next_before"] is None
        theirs = [n["id"] for n in notify.notifications(conn, b)["notifications"]]
        mine = page["notifications"][0]["id"]
        assert notify.mark_read(conn, a, [mine, *theirs]) == 1
        assert notify.unread_count(conn, a) == 2 and notify.unread_count(conn, b) == 3
        assert notify.unread_count(conn, b, cap=2) == 2
        unread = notify.notifications(conn, a, unread_only=True)["notifications"]
        assert mine not in {n["id"] for n in unread} and len(unread) == 2
        assert notify.mark_read(conn, a) == 2
        assert notify.unread_count(conn, a) == 0 and notify.unread_count(conn, b) == 3
