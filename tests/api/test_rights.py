"""Who may do what with reports: the rights matrix (each role × each report route × an object in
and out of their scope), the audit rows of report writes, the actor taken from the login, and
sensitive reports masked for the roles without the right to them."""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, text

from api.app import create_app
from boundaries.importer import ImportOptions, import_file
from geo.identity.principal import SYSTEM, Principal
from geo.reports import notify
from geo.reports.loop import reassign_open
from geo.settings import ImportSettings, PhotoSettings, Settings
from geo.vocabulary import NotificationKind, Role
from tests.conftest import TABLES
from tests.factories import after_photo, grid_frame, login_as, point_m, square_m, truncate, write

# Two districts side by side; two grids in each.
D_A, D_B = "230602", "230603"
A1, A2 = "230602001001001", "230602001001002"
B1, B2 = "230603001001001", "230603001001002"
CENTRE = {A1: (250, 250), A2: (750, 250), B1: (2250, 250), B2: (2750, 250)}
ADDRESS = ("192.0.2.44", 50123)  # a documentation address: the audit log stores it as inet
PER_TEST = (
    "notifications",
    "report_photos",
    "audit_log",
    "auth_tokens",
    "user_grids",
    "user_districts",
    "report_events",
)

# Who acts in the matrix, and their scope.
ACTORS: dict[str, dict] = {
    "wrk": {"role": "worker", "grids": (A1,)},
    "dsp": {"role": "dispatcher", "districts": (D_A,)},
    "city": {"role": "dispatcher"},  # unbound: every district
    "dept": {"role": "department", "department": "燃气公司"},  # gas leaks go to 燃气公司
    "crd": {"role": "coordinator", "districts": (D_A,)},
    "pln": {"role": "planner"},
    "adm": {"role": "admin"},
}

# The matrix. Objects: `in` lies in the actor's scope (in grid A1 of district A, a gas leak of
# 燃气公司, sent by another worker; the department sees it once it is dispatched to them, so a
# `reported` one is not theirs yet); `out` lies outside it (in grid B1 of district B; for the
# department user, a fire report in A1 routed elsewhere); `own` was sent by the worker themself,
# in B1, outside their grids. Reads answer a status, or seen / hidden in lists, CSV and stats;
# a batch answers its item's status (201) or the request's (403); `-`: no such case.
MATRIX = """
route                   object  wrk  dsp  city dept crd  pln  adm
get                     in      200  200  200  404  200  200  200
get                     out     404  404  200  404  404  200  200
get                     own     200  -    -    -    -    -    -
list                    in      seen seen seen hid  seen seen seen
list                    out     hid  hid  seen hid  hid  seen seen
list                    own     seen -    -    -    -    -    -
csv                     in      seen seen seen hid  seen seen seen
csv                     out     hid  hid  seen hid  hid  seen seen
csv                     own     seen -    -    -    -    -    -
stats                   in      seen seen seen hid  seen seen seen
stats                   out     hid  hid  seen hid  hid  seen seen
post                    in      201  201  201  403  403  403  201
post                    out     201  201  201  403  403  403  201
batch                   in      201  201  201  403  403  403  201
batch                   out     201  201  201  403  403  403  201
patch                   in      403  200  200  404  403  403  200
patch                   out     404  404  200  404  404  403  200
patch                   own     403  -    -    -    -    -    -
reported>accepted       in      403  200  200  404  403  403  200
reported>accepted       out     404  404  200  404  404  403  200
reported>rejected       in      403  200  200  404  403  403  200
reported>rejected       out     404  404  200  404  404  403  200
reported>duplicate      in      403  200  200  404  403  403  200
reported>duplicate      out     404  404  200  404  404  403  200
accepted>dispatched     in      403  200  200  404  403  403  200
accepted>dispatched     out     404  404  200  404  404  403  200
returned>dispatched     in      403  200  200  403  403  403  200
returned>dispatched     out     404  404  200  404  404  403  200
dispatched>in_progress  in      403  403  403  200  403  403  200
dispatched>in_progress  out     404  404  403  404  404  403  200
dispatched>returned     in      403  403  403  200  403  403  200
dispatched>returned     out     404  404  403  404  404  403  200
in_progress>resolved    in      403  403  403  200  403  403  200
in_progress>resolved    out     404  404  403  404  404  403  200
resolved>verified       in      200  200  200  403  403  403  200
resolved>verified       out     404  404  200  404  404  403  200
resolved>verified       own     403  -    -    -    -    -    -
resolved>in_progress    in      200  200  200  403  403  403  200
resolved>in_progress    out     404  404  200  404  404  403  200
resolved>in_progress    own     403  -    -    -    -    -    -
reported>dispatched     in      409  409  409  404  409  409  409
reported>dispatched     out     404  404  409  404  404  409  409
reported>verified       in      409  409  409  404  409  409  409
reported>verified       out     404  404  409  404  404  409  409
verified>in_progress    in      409  409  409  409  409  409  409
"""


def _cases(matrix: str = MATRIX) -> list:
    lines = [ln.split() for ln in matrix.strip().splitlines()]
    roles = lines[0][2:]
    cases = []
    for route, obj, *cells in lines[1:]:
        for role, cell in zip(roles, cells, strict=True):
            if cell != "-":
                cases.append(pytest.param(role, route, obj, cell, id=f"{role}-{route}-{obj}"))
    return cases


@pytest.fixture(scope="module")
def place(test_database: tuple[Settings, Engine], tmp_path_factory) -> Engine:
    """A database with districts A and B and two grids in each, for this module's tests."""
    _, engine = test_database
    with engine.begin() as conn:
        truncate(conn, TABLES)
    tmp = tmp_path_factory.mktemp("rights")
    districts = [
        {
            "code": D_A,
            "name": "萨尔图区",
            "level": "district",
            "geometry": square_m(-2000, -2000, 3500),
        },
        {
            "code": D_B,
            "name": "龙凤区",
            "level": "district",
            "geometry": square_m(1500, -2000, 3500),
        },
    ]
    import_file(
        engine,
        write(grid_frame(districts), tmp / "d.geojson"),
        ImportOptions(layer="areas"),
        ImportSettings(),
    )
    grids = [
        {
            "code": code,
            "name": f"网格{code[-1]}{code[5]}",
            "kind": "comprehensive",
            "community_code": code[:12],
            "geometry": square_m(x - 250, y - 250, 500),
        }
        for code, (x, y) in CENTRE.items()
    ]
    import_file(
        engine, write(grid_frame(grids), tmp / "g.geojson"), ImportOptions(), ImportSettings()
    )
    return engine


@pytest.fixture
def world(place: Engine) -> Engine:
    """The module's place with no reports, users or audit entries left from another test."""
    with place.begin() as conn:
        truncate(conn, ("reports", "users", *PER_TEST))
    return place


@pytest.fixture(scope="module")
def api(
    place: Engine, test_database: tuple[Settings, Engine], tmp_path_factory
) -> Iterator[TestClient]:
    """A client without credentials of its own: each request says who sends it. Its photos
    go to a folder of this module's."""
    rules = PhotoSettings(folder=tmp_path_factory.mktemp("rights-photos"))
    settings = test_database[0].model_copy(update={"photos": rules})
    with TestClient(create_app(settings, engine=place), client=ADDRESS) as c:
        yield c


def as_(engine: Engine, actor: str, username: str | None = None) -> dict[str, str]:
    """Return the Authorization header of a new user of `actor`'s role and scope."""
    a = ACTORS[actor]
    token = login_as(
        engine,
        a["role"],
        username,
        grids=a.get("grids", ()),
        districts=a.get("districts", ()),
        department=a.get("department"),
    )
    return {"Authorization": f"Bearer {token}"}


def body(grid: str, theme: str = "gas", category: str = "gas_leak", **kw) -> dict:
    lon, lat = point_m(*CENTRE[grid])
    return {"lon": lon, "lat": lat, "theme": theme, "category": category, **kw}


PATHS = {
    "reported": [],
    "accepted": ["accepted"],
    "dispatched": ["accepted", "dispatched"],
    "returned": ["accepted", "dispatched", "returned"],
    "in_progress": ["accepted", "dispatched", "in_progress"],
    "resolved": ["accepted", "dispatched", "in_progress", "resolved"],
    "verified": ["accepted", "dispatched", "in_progress", "resolved", "verified"],
}


def move(api: TestClient, rid: str, to: str, headers: dict, **kw):
    """Make a move with what it needs (a level, a reason; an `after` photo to resolve)."""
    extra = MOVE_NEEDS.get(to, {})
    if to == "resolved":
        after_photo(api.app.state.engine, rid)
    return api.post(
        f"/api/v1/reports/{rid}/transitions", json={"to": to, **extra, **kw}, headers=headers
    )


MOVE_NEEDS = {
    "resolved": {"level": "grid"},
    "rejected": {"reason": "不属于受理范围"},
    "returned": {"reason": "不属于本部门职责"},
    "in_progress": {"reason": "核查未通过"},  # ignored when taking a dispatched report up
}


def send(api: TestClient, payload: dict, headers: dict) -> str:
    r = api.post("/api/v1/reports", json=payload, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def stored(engine: Engine, api: TestClient, actor: str, obj: str, headers: dict) -> tuple:
    """Store the case's report and return (its id, its grid)."""
    if obj == "own":
        return send(api, body(B1), headers), B1
    sender = as_(engine, "wrk")  # another worker, bound to A1: sends anywhere
    if obj == "in":
        return send(api, body(A1), sender), A1
    if actor == "dept":  # outside a department: a report routed to another one
        return send(api, body(A1, "fire", "electrical"), sender), A1
    return send(api, body(B1), sender), B1


def act(api: TestClient, route: str, rid: str | None, grid: str, headers: dict) -> str:
    """Make the case's request; return its status, or seen / hid for a collection."""
    if route == "get":
        return str(api.get(f"/api/v1/reports/{rid}", headers=headers).status_code)
    if route in ("list", "csv", "stats"):
        return "seen" if shown(api, route, rid, headers) == {rid} else "hid"
    if route == "post":
        return str(api.post("/api/v1/reports", json=body(grid), headers=headers).status_code)
    if route == "batch":
        r = api.post("/api/v1/reports:batch", json={"reports": [body(grid)]}, headers=headers)
        return str(r.json()["results"][0]["status"] if r.status_code == 200 else r.status_code)
    if route == "patch":
        target = {A1: A2, B1: B2}[grid]
        r = api.patch(f"/api/v1/reports/{rid}", json={"grid": target}, headers=headers)
        return str(r.status_code)
    to = route.partition(">")[2]
    kw = {}
    if to == "duplicate":  # the report it duplicates: another one in the same grid
        kw["duplicate_of"] = send(api, body(grid), as_(engine_of(api), "wrk", "dup-sender"))
    return str(move(api, rid, to, headers, **kw).status_code)


def engine_of(api: TestClient) -> Engine:
    return api.app.state.engine


def shown(api: TestClient, route: str, rid: str | None, headers: dict) -> set[str | None]:
    """Return the ids a collection shows; for stats, {rid} when they count the case's report
    (the only one stored)."""
    if route == "list":
        r = api.get("/api/v1/reports", headers=headers)
        assert r.status_code == 200
        return {f["id"] for f in r.json()["features"]}
    if route == "csv":
        r = api.get("/api/v1/reports", params={"format": "csv"}, headers=headers)
        assert r.status_code == 200
        return {row["id"] for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))}
    r = api.get("/api/v1/stats", headers=headers)
    assert r.status_code == 200
    return {rid} if r.json()["total"] == 1 else set()


@pytest.mark.parametrize(("actor", "route", "obj", "expected"), _cases())
def test_rights_matrix(world, api, actor, route, obj, expected):
    headers = as_(world, actor)
    admin = as_(world, "adm")
    rid: str | None = None
    grid = A1 if obj == "in" else B1
    if route not in ("post", "batch"):
        rid, grid = stored(world, api, actor, obj, headers)
        for step in PATHS[route.partition(">")[0] if ">" in route else "reported"]:
            assert move(api, rid, step, admin).status_code == 200
    assert act(api, route, rid, grid, headers) == expected


# --- the answers' words ---------------------------------------------------------------------


def test_someone_elses_report_is_not_found_like_an_unknown_one(world, api):
    rid = send(api, body(B1), as_(world, "wrk"))
    mine = as_(world, "wrk")
    theirs = api.get(f"/api/v1/reports/{rid}", headers=mine)
    unknown = uuid.uuid4()
    none = api.get(f"/api/v1/reports/{unknown}", headers=mine)
    assert (theirs.status_code, none.status_code) == (404, 404)
    assert theirs.json()["detail"].replace(rid, "ID") == none.json()["detail"].replace(
        str(unknown), "ID"
    )


def test_a_move_of_another_role_says_who_makes_it(world, api):
    rid = send(api, body(A1), as_(world, "wrk"))
    r = move(api, rid, "accepted", as_(world, "crd"))
    assert r.status_code == 403
    assert r.json()["detail"] == (
        "a reported report is moved to accepted by a dispatcher or an admin; "
        "you are logged in as coordinator"
    )


def test_a_move_outside_the_loop_lists_the_next_steps_and_for_whom(world, api):
    rid = send(api, body(A1), as_(world, "wrk"))
    r = move(api, rid, "verified", as_(world, "dsp"))
    assert r.status_code == 409
    detail = r.json()["detail"]
    assert detail.startswith("a reported report cannot move to verified; allowed next: ")
    assert "accepted (by a dispatcher or an admin)" in detail
    assert "duplicate (by a dispatcher or an admin)" in detail


def test_a_worker_checks_only_the_resolved_reports_of_their_grids(world, api):
    worker = as_(world, "wrk")  # bound to A1
    admin = as_(world, "adm")
    elsewhere = send(api, body(B1), worker)
    at_home = send(api, body(A1), as_(world, "wrk"))
    for rid in (elsewhere, at_home):
        for step in PATHS["resolved"]:
            assert move(api, rid, step, admin).status_code == 200
    refused = move(api, elsewhere, "verified", worker)
    assert refused.status_code == 403
    assert "own grids (230602001001001)" in refused.json()["detail"]
    assert "grid 230603001001001" in refused.json()["detail"]
    assert move(api, at_home, "verified", worker).json()["status"] == "verified"


def test_a_bound_dispatcher_reassigns_within_their_districts(world, api):
    rid = send(api, body(A1), as_(world, "wrk"))
    r = api.patch(f"/api/v1/reports/{rid}", json={"grid": B1}, headers=as_(world, "dsp"))
    assert r.status_code == 403
    assert r.json()["detail"].startswith(
        "grid 230603001001001 lies in district 230603, outside yours (230602)"
    )
    moved = api.patch(f"/api/v1/reports/{rid}", json={"grid": B1}, headers=as_(world, "city"))
    assert moved.status_code == 200 and moved.json()["district"] == D_B


def test_themes_list_the_moves_and_who_makes_them(world, api):
    body_ = api.get("/api/v1/themes", headers=as_(world, "pln")).json()
    moves = {(m["from"], m["to"]): m["roles"] for m in body_["moves"]}
    assert moves[("resolved", "verified")] == ["worker", "dispatcher", "admin"]
    assert moves[("dispatched", "in_progress")] == ["department", "admin"]
    assert moves[("reported", "accepted")] == ["dispatcher", "admin"]
    assert ("reported", "dispatched") not in moves
    listed = {(frm, to) for frm, tos in body_["statuses"].items() for to in tos}
    assert listed == set(moves) and len(moves) == 10


# --- the actor is who is logged in ----------------------------------------------------------

ACTOR_REFUSED = "the actor is who is logged in"


def count(engine: Engine, table: str = "reports") -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608


def test_a_report_naming_its_reporter_is_refused(world, api):
    r = api.post("/api/v1/reports", json=body(A1, reporter="市长"), headers=as_(world, "wrk"))
    assert r.status_code == 422
    assert ACTOR_REFUSED in r.json()["detail"] and "remove reporter" in r.json()["detail"]
    assert count(world) == 0


def test_a_batch_item_naming_its_reporter_is_refused_alone(world, api):
    items = [body(A1, reporter="admin"), body(A2)]
    r = api.post("/api/v1/reports:batch", json={"reports": items}, headers=as_(world, "wrk"))
    assert r.status_code == 200
    first, second = r.json()["results"]
    assert first["status"] == 422 and ACTOR_REFUSED in first["detail"]
    assert second["status"] == 201
    assert count(world) == 1


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("post", "/transitions", {"to": "dispatched", "actor": "市长"}),
        ("patch", "", {"grid": A2, "actor": "admin"}),
    ],
)
def test_a_move_naming_its_actor_is_refused(world, api, method, path, payload):
    rid = send(api, body(A1), as_(world, "wrk"))
    r = getattr(api, method)(
        f"/api/v1/reports/{rid}{path}", json=payload, headers=as_(world, "adm")
    )
    assert r.status_code == 422
    assert ACTOR_REFUSED in r.json()["detail"] and "remove actor" in r.json()["detail"]
    after = api.get(f"/api/v1/reports/{rid}", headers=as_(world, "adm")).json()
    assert (after["status"], after["grid"]["code"]) == ("reported", A1)
    assert count(world, "report_events") == 0


# --- the audit of report writes -------------------------------------------------------------


def audit(engine: Engine, action: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT actor, role, object_type, object_id, request_id, host(client) AS client, "
                "changes FROM audit_log WHERE action = :a ORDER BY id"
            ),
            {"a": action},
        ).mappings()
        return [dict(r) for r in rows]


def test_a_report_is_stored_and_audited_under_the_login(world, api):
    worker = as_(world, "wrk", "wang-wgy")
    rid = str(uuid.uuid4())
    sent = body(A1, id=rid)
    r = api.post("/api/v1/reports", json=sent, headers={**worker, "X-Request-ID": "phone-7.42"})
    assert r.status_code == 201 and r.headers["x-request-id"] == "phone-7.42"
    assert r.json()["reporter"] == "wang-wgy"
    assert api.post("/api/v1/reports", json=sent, headers=worker).status_code == 200  # a replay
    assert audit(world, "report.create") == [
        {
            "actor": "wang-wgy",
            "role": "worker",
            "object_type": "report",
            "object_id": rid,
            "request_id": "phone-7.42",
            "client": ADDRESS[0],
            "changes": {
                "status": [None, "reported"],
                "grid": [None, A1],
                "category": [None, "gas_leak"],
            },
        }
    ]
    with world.connect() as conn:
        row = conn.execute(
            text(
                "SELECT r.reporter, r.reporter_id = u.id AS by_login FROM reports r "
                "JOIN users u ON u.username = 'wang-wgy' WHERE r.id = :id"
            ),
            {"id": rid},
        ).one()
    assert (row.reporter, row.by_login) == ("wang-wgy", True)


def test_the_same_id_sent_by_another_worker_is_a_conflict_that_names_nothing(world, api):
    rid = str(uuid.uuid4())
    send(api, body(A1, id=rid), as_(world, "wrk"))
    r = api.post("/api/v1/reports", json=body(A1, id=rid), headers=as_(world, "wrk"))
    assert r.status_code == 409
    assert "already used for a different report;" in r.json()["detail"]
    assert count(world) == 1


def test_moves_are_audited_and_kept_in_the_history_under_the_login(world, api):
    rid = send(api, body(A1), as_(world, "wrk"))
    dispatcher = as_(world, "dsp", "zhao-zz")
    gas = as_(world, "dept", "qian-rq")
    assert move(api, rid, "accepted", dispatcher).status_code == 200
    r = move(api, rid, "dispatched", {**dispatcher, "X-Request-ID": "desk-1"}, note="派单")
    assert r.status_code == 200 and r.headers["x-request-id"] == "desk-1"
    assert move(api, rid, "in_progress", gas).status_code == 200
    done = move(api, rid, "resolved", {**gas, "X-Request-ID": "fix-9"}, level="street")
    assert done.status_code == 200
    entries = audit(world, "report.transition")
    gas_user = entries[2]["changes"]["handler_id"][1]  # taking it up made it theirs
    assert [(e["actor"], e["role"], e["request_id"], e["changes"]) for e in entries] == [
        ("zhao-zz", "dispatcher", entries[0]["request_id"], {"status": ["reported", "accepted"]}),
        ("zhao-zz", "dispatcher", "desk-1", {"status": ["accepted", "dispatched"]}),
        (
            "qian-rq",
            "department",
            entries[2]["request_id"],
            {"status": ["dispatched", "in_progress"], "handler_id": [None, gas_user]},
        ),
        (
            "qian-rq",
            "department",
            "fix-9",
            {"status": ["in_progress", "resolved"], "level": [None, "street"]},
        ),
    ]
    assert {(e["object_type"], e["object_id"], e["client"]) for e in entries} == {
        ("report", rid, ADDRESS[0])
    }
    history = done.json()["history"]
    assert [(h["to_status"], h["actor"]) for h in history] == [
        ("reported", history[0]["actor"]),
        ("accepted", "zhao-zz"),
        ("dispatched", "zhao-zz"),
        ("in_progress", "qian-rq"),
        ("resolved", "qian-rq"),
    ]
    assert done.json()["handler"] == "qian-rq"


def test_a_refused_move_is_neither_made_nor_audited(world, api):
    rid = send(api, body(A1), as_(world, "wrk"))
    assert move(api, rid, "accepted", as_(world, "pln")).status_code == 403
    assert audit(world, "report.transition") == [] and count(world, "report_events") == 0
    assert (
        api.get(f"/api/v1/reports/{rid}", headers=as_(world, "adm")).json()["status"] == "reported"
    )


def test_a_reassignment_is_audited_with_the_grids(world, api):
    rid = send(api, body(A1), as_(world, "wrk"))
    city = as_(world, "city", "sun-zh")
    r = api.patch(
        f"/api/v1/reports/{rid}", json={"grid": B1}, headers={**city, "X-Request-ID": "move-3"}
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "move-3"
    assert r.json()["history"][-1]["actor"] == "sun-zh"
    assert audit(world, "report.reassign") == [
        {
            "actor": "sun-zh",
            "role": "dispatcher",
            "object_type": "report",
            "object_id": rid,
            "request_id": "move-3",
            "client": ADDRESS[0],
            "changes": {"grid": [A1, B1], "district": [D_A, D_B]},
        }
    ]


def test_reassignment_after_a_boundary_change_is_one_entry_with_the_number_moved(world, api):
    worker = as_(world, "wrk")
    ids = [send(api, body(A1), worker), send(api, body(B1), worker)]
    with world.begin() as conn:  # as if the boundaries had moved under them
        conn.execute(text("UPDATE reports SET grid_code = :g"), {"g": A2})
    ops = Principal(None, "ops-import", Role.ADMIN, request_id="import-17")
    with world.begin() as conn:
        assert reassign_open(conn, 150.0, "boundary version 2", who=ops) == 2
    with world.begin() as conn:
        assert reassign_open(conn, 150.0, "boundary version 3", who=SYSTEM) == 0
    entries = audit(world, "report.reassign_all")
    assert [(e["actor"], e["role"], e["request_id"], e["changes"]) for e in entries] == [
        ("ops-import", "admin", "import-17", {"moved": 2, "note": "boundary version 2"}),
        ("system", "admin", None, {"moved": 0, "note": "boundary version 3"}),
    ]
    with world.connect() as conn:
        actors = conn.execute(
            text("SELECT DISTINCT actor FROM report_events WHERE report_id = ANY(:ids)"),
            {"ids": ids},
        ).scalars()
        assert list(actors) == ["ops-import"]


# --- sensitive reports, masked for roles without the right to them ---------------------------


def representative(engine: Engine, table: str, code: str) -> tuple[float, float]:
    with engine.connect() as conn:
        wkt = conn.execute(
            text(f"SELECT ST_AsText(geom) FROM {table} WHERE code = :c"),  # noqa: S608
            {"c": code},
        ).scalar_one()
    p = shapely.from_wkt(wkt).point_on_surface()  # GEOS, as ST_PointOnSurface
    return round(p.x, 7), round(p.y, 7)


@pytest.fixture
def sensitive(world, api) -> dict:
    """An elderly resident living alone, reported in A1 with a note on the dispatch."""
    lon, lat = point_m(100, 400)  # off the grid's centre, where its representative point is
    sent = {"lon": lon, "lat": lat, "theme": "elderly", "category": "living_alone"}
    sent["description"] = "独居, 王大爷, 3单元402"
    worker = as_(world, "wrk", "li-wgy")
    answer = api.post("/api/v1/reports", json=sent, headers=worker).json()
    move(api, answer["id"], "accepted", as_(world, "dsp"))
    move(api, answer["id"], "dispatched", as_(world, "dsp"), note="电话 13800000000")
    return {"id": answer["id"], "lon": answer["lon"], "lat": answer["lat"]}


@pytest.mark.parametrize("actor", ["crd", "pln"])
def test_a_sensitive_report_is_masked_for_roles_without_the_right(world, api, sensitive, actor):
    r = api.get(f"/api/v1/reports/{sensitive['id']}", headers=as_(world, actor))
    assert r.status_code == 200
    got = r.json()
    assert got["masked"] is True and got["description"] is None and got["reporter"] is None
    assert (got["lon"], got["lat"]) == pytest.approx(representative(world, "grids", A1), abs=2e-7)
    assert (got["lon"], got["lat"]) != pytest.approx((sensitive["lon"], sensitive["lat"]), abs=1e-6)
    assert got["source"]["lon"] is None and got["assignment"]["distance_m"] is None
    assert got["history"][0]["actor"] is None
    assert [h["note"] for h in got["history"][1:]] == [None, None]
    assert all(h["actor"] is None for h in got["history"])  # the actors would name the reporter
    assert got["grid"]["code"] == A1 and got["theme"] == "elderly"


@pytest.mark.parametrize("actor", ["dsp", "adm"])
def test_a_sensitive_report_is_shown_whole_to_roles_with_the_right(world, api, sensitive, actor):
    got = api.get(f"/api/v1/reports/{sensitive['id']}", headers=as_(world, actor)).json()
    assert got["masked"] is False
    assert got["description"] == "独居, 王大爷, 3单元402" and got["reporter"] == "li-wgy"
    assert (got["lon"], got["lat"]) == (sensitive["lon"], sensitive["lat"])
    assert got["history"][0]["actor"] == "li-wgy"
    assert got["history"][-1]["note"] == "电话 13800000000"


def test_an_unassigned_sensitive_report_is_shown_at_its_districts_point(world, api):
    lon, lat = point_m(1300, 250)  # 300 m east of A2: beyond the snap, inside district A
    sent = {"lon": lon, "lat": lat, "theme": "dispute", "category": "family", "description": "x"}
    rid = send(api, sent, as_(world, "wrk"))
    got = api.get(f"/api/v1/reports/{rid}", headers=as_(world, "crd")).json()
    assert got["grid"] is None and got["district"] == D_A and got["masked"] is True
    assert (got["lon"], got["lat"]) == pytest.approx(representative(world, "areas", D_A), abs=2e-7)


def test_a_report_of_another_theme_is_not_masked(world, api):
    rid = send(api, body(A1, description="楼道燃气味"), as_(world, "wrk"))
    got = api.get(f"/api/v1/reports/{rid}", headers=as_(world, "crd")).json()
    assert got["masked"] is False and got["description"] == "楼道燃气味"


# --- the case-handling routes (issue 14): bulk moves, 督办, photos, notifications, pages ------

# Objects: `in`, `out` and `own` as above, each resolved (so a department sees its own and the
# grid's worker has it to check) with a site photo; `sens` an elderly resident living alone in
# A1 dispatched to 燃气公司 (masked for coordinators and planners); `none` no such object (an
# unknown id or department). The console's `in` and `out` wait in 待受理 (reported, in A1 and
# B1); a department's users are those of 燃气公司. For notifications, `own` is one of the
# actor's and `out` one of another user's. Bulk rows start from a new report at the stage
# before the move and answer the item's status (the request's for anonymous). Cells: a status,
# seen / hid for a list or page, `login` for a page sending an anonymous visitor to /login;
# up / same for the unread count, read / kept for marking a notification read.
CASE_MATRIX = """
route                     object  wrk  dsp  city dept crd  pln  adm  anon
bulk:reported>accepted    in      403  200  200  404  403  403  200  401
bulk:reported>accepted    out     404  404  200  404  404  403  200  401
bulk:accepted>dispatched  in      403  200  200  404  403  403  200  401
bulk:accepted>dispatched  out     404  404  200  404  404  403  200  401
bulk:dispatched>in_progress in    403  403  403  200  403  403  200  401
bulk:dispatched>in_progress out   404  404  403  404  404  403  200  401
supervise                 in      403  200  200  403  403  403  200  401
supervise                 out     403  404  200  403  403  403  200  401
unsupervise               in      403  200  200  403  403  403  200  401
unsupervise               out     403  404  200  403  403  403  200  401
photo-post                in      201  201  201  201  403  403  201  401
photo-post                out     404  404  201  404  404  403  201  401
photo-post                own     201  -    -    -    -    -    -    -
photo                     in      200  200  200  200  200  200  200  401
photo                     out     404  404  200  404  404  200  200  401
photo                     own     200  -    -    -    -    -    -    -
photo                     sens    200  200  200  200  404  404  200  401
photo                     none    404  404  404  404  404  404  404  401
thumb                     in      200  200  200  200  200  200  200  401
thumb                     out     404  404  200  404  404  200  200  401
thumb                     sens    200  200  200  200  404  404  200  401
notifications             own     seen seen seen seen seen seen seen -
notifications             out     hid  hid  hid  hid  hid  hid  hid  401
notifications-count       own     up   up   up   up   up   up   up   -
notifications-count       out     same same same same same same same 401
notifications-read        own     read read read read read read read -
notifications-read        out     kept kept kept kept kept kept kept 401
notifications-page        own     seen seen seen seen seen seen seen -
notifications-page        out     hid  hid  hid  hid  hid  hid  hid  login
department-users          in      403  200  200  403  403  403  200  401
department-users          none    403  404  404  403  403  403  404  401
console                   in      403  seen seen 403  403  403  seen login
console                   out     403  hid  seen 403  403  403  seen login
console-report            in      200  200  200  200  200  200  200  login
console-report            out     404  404  200  404  404  200  200  login
console-report            own     200  -    -    -    -    -    -    -
console-report            sens    200  200  200  200  200  200  200  login
console-report            none    404  404  404  404  404  404  404  login
inbox                     in      403  403  403  seen 403  403  seen login
inbox                     out     403  403  403  hid  403  403  seen login
inbox-api                 in      seen seen seen seen seen seen seen 401
inbox-api                 out     hid  hid  seen hid  hid  seen seen 401
mine                      in      hid  403  403  403  403  403  403  login
mine                      own     seen -    -    -    -    -    -    -
checks                    in      seen 403  403  403  403  403  403  login
checks                    out     hid  403  403  403  403  403  403  login
checks                    own     hid  -    -    -    -    -    -    -
"""
OTHER_DEPARTMENT = "消防救援支队"  # where fire reports go
_seeds = itertools.count(1000)


def jpeg(seed: int | None = None) -> bytes:
    """Return a small JPEG of noise, different for every seed (a new upload each time)."""
    rng = np.random.default_rng(next(_seeds) if seed is None else seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def add_photo(
    api: TestClient, rid: str, headers: dict, data: bytes | None = None, kind: str = "site"
):
    files = {"file": ("p.jpg", data or jpeg(), "image/jpeg")}
    return api.post(
        f"/api/v1/reports/{rid}/photos", files=files, data={"kind": kind}, headers=headers
    )


def _resolved(api: TestClient, payload: dict, sender: dict, admin: dict, **dispatch) -> dict:
    """Store a report with a site photo and move it to resolved; return its id, photo and
    department."""
    rid = send(api, payload, sender)
    photo = add_photo(api, rid, admin)
    assert photo.status_code == 201, photo.text
    for step in PATHS["resolved"]:
        kw = dispatch if step == "dispatched" else {}
        assert move(api, rid, step, admin, **kw).status_code == 200
    department = api.get(f"/api/v1/reports/{rid}", headers=admin).json()["department"]
    return {"id": rid, "photo": photo.json()["id"], "department": department}


@pytest.fixture(scope="class")
def scene(place: Engine, api: TestClient) -> dict:
    """One user per actor and the objects of the case matrix, built once: read cases change
    nothing, and each write case makes what it changes."""
    with place.begin() as conn:
        truncate(conn, ("reports", "users", *PER_TEST))
    heads = {actor: as_(place, actor, f"case-{actor}") for actor in ACTORS}
    sender = as_(place, "wrk", "case-sender")  # another worker of A1
    with place.connect() as conn:
        rows = conn.execute(text("SELECT username, id FROM users")).all()
    users = {name.removeprefix("case-"): uid for name, uid in rows}
    admin = heads["adm"]
    lon, lat = point_m(100, 400)
    elderly = {"lon": lon, "lat": lat, "theme": "elderly", "category": "living_alone"}
    reports = {
        "in": _resolved(api, body(A1), sender, admin),
        "out": _resolved(api, body(B1), sender, admin),
        "fire": _resolved(api, body(A1, "fire", "electrical"), sender, admin),
        "own": _resolved(api, body(B1), heads["wrk"], admin),
        "sens": _resolved(api, elderly, sender, admin, department="燃气公司"),
    }
    queued = {"in": send(api, body(A1), sender), "out": send(api, body(B1), sender)}
    return {
        "heads": {**heads, "anon": {}},
        "users": users,
        "sender": sender,
        "reports": reports,
        "queued": queued,
        "engine": place,
    }


def _report(scene: dict, actor: str, obj: str) -> dict:
    """Return the case's report: for a department user, `out` is the fire report of A1."""
    if obj == "none":
        return {"id": str(uuid.uuid4()), "photo": str(uuid.uuid4()), "department": "月球开发局"}
    return scene["reports"]["fire" if (obj, actor) == ("out", "dept") else obj]


def _page(api: TestClient, path: str, headers: dict, rid: str | None = None, **params) -> str:
    """Return a page's status, `login` for a redirect to the login page, or seen / hid."""
    r = api.get(path, params=params, headers=headers, follow_redirects=False)
    if r.status_code == 303 and r.headers["location"].startswith("/login?"):
        return "login"
    if r.status_code != 200 or rid is None:
        return str(r.status_code)
    return "seen" if f'data-id="{rid}"' in r.text else "hid"


def _bulk(api: TestClient, scene: dict, actor: str, route: str, obj: str) -> str:
    frm, to = route.removeprefix("bulk:").split(">")
    admin = scene["heads"]["adm"]
    payload = body(A1) if obj == "in" else body(A1, "fire", "electrical")
    if obj == "out" and actor != "dept":
        payload = body(B1)
    rid = send(api, payload, scene["sender"])
    for step in PATHS[frm]:
        assert move(api, rid, step, admin).status_code == 200
    r = api.post(
        "/api/v1/reports:transitions",
        json={"ids": [rid], "to": to, **MOVE_NEEDS.get(to, {})},
        headers=scene["heads"][actor],
    )
    return str(r.json()["results"][0]["status"] if r.status_code == 200 else r.status_code)


def _notice(scene: dict, actor: str, obj: str) -> int:
    """Store a notification of the actor's (`own`) or of another user's; return its id."""
    user = scene["users"][actor if obj == "own" else "sender"]
    with scene["engine"].begin() as conn:
        event = notify.emit(
            conn, NotificationKind.OVERDUE, scene["reports"]["in"]["id"], users=(user,)
        )
        return conn.execute(
            text("SELECT id FROM notifications WHERE event_id = :e"), {"e": event}
        ).scalar_one()


def _notifications(api: TestClient, scene: dict, actor: str, route: str, obj: str) -> str:
    headers = scene["heads"][actor]
    if route == "notifications-count":
        before = api.get("/api/v1/notifications/count", headers=headers)
        _notice(scene, actor, obj)
        after = api.get("/api/v1/notifications/count", headers=headers)
        if after.status_code != 200:
            return str(after.status_code)
        return "up" if after.json()["unread"] == before.json()["unread"] + 1 else "same"
    nid = _notice(scene, actor, obj)
    if route == "notifications-page":
        r = api.get("/notifications", headers=headers, follow_redirects=False)
        if r.status_code != 200:
            return "login" if r.status_code == 303 else str(r.status_code)
        return "seen" if f'data-id="{nid}"' in r.text else "hid"
    if route == "notifications-read":
        r = api.post("/api/v1/notifications/read", json={"ids": [nid]}, headers=headers)
        if r.status_code != 200:
            return str(r.status_code)
        with scene["engine"].connect() as conn:
            read = conn.execute(
                text("SELECT read_at IS NOT NULL FROM notifications WHERE id = :i"), {"i": nid}
            ).scalar_one()
        return "read" if read else "kept"
    r = api.get("/api/v1/notifications", headers=headers)
    if r.status_code != 200:
        return str(r.status_code)
    return "seen" if nid in {n["id"] for n in r.json()["notifications"]} else "hid"


def act_on_case(api: TestClient, scene: dict, actor: str, route: str, obj: str) -> str:
    """Make the case's request; return its status, or what the cell says for lists, pages,
    counts and marks."""
    if route.startswith("bulk:"):
        return _bulk(api, scene, actor, route, obj)
    if route.startswith("notifications"):
        return _notifications(api, scene, actor, route, obj)
    h = scene["heads"][actor]
    rep = _report(scene, actor, obj)
    rid = rep["id"]
    if route in ("supervise", "unsupervise"):
        path = f"/api/v1/reports/{rid}/supervision"
        r = (
            api.put(path, json={"note": "三日内办结"}, headers=h)
            if route == "supervise"
            else (api.delete(path, headers=h))
        )
        return str(r.status_code)
    if route == "photo-post":
        return str(add_photo(api, rid, h).status_code)
    if route in ("photo", "thumb"):
        suffix = "/thumb" if route == "thumb" else ""
        return str(api.get(f"/api/v1/photos/{rep['photo']}{suffix}", headers=h).status_code)
    if route == "department-users":
        name = rep["department"] if obj == "in" else "月球开发局"
        return str(api.get(f"/api/v1/departments/{name}/users", headers=h).status_code)
    if route == "inbox-api":
        r = api.get("/api/v1/reports", params={"department": rep["department"]}, headers=h)
        if r.status_code != 200:
            return str(r.status_code)
        return "seen" if rid in {f["id"] for f in r.json()["features"]} else "hid"
    if route == "console":
        return _page(api, "/console", h, scene["queued"][obj], queue="new")
    if route == "console-report":
        return _page(api, f"/console/reports/{rid}", h)
    pages = {"inbox": "/inbox", "mine": "/report/mine", "checks": "/report/checks"}
    return _page(api, pages[route], h, rid)


class TestCaseHandlingRights:
    """Each role × each case-handling route × an object in and out of their scope."""

    @pytest.mark.parametrize(("actor", "route", "obj", "expected"), _cases(CASE_MATRIX))
    def test_case_matrix(self, scene, api, actor, route, obj, expected):
        assert act_on_case(api, scene, actor, route, obj) == expected
