"""Photo evidence of a visit (走访排查): stored once per file, EXIF set against the visit's point
and time, EXIF-free on disk, the same refusals as a report's photo, at most ten a visit, and
read by whoever reads the visit (a household's visit: the roles that see households, audited),
on the campaign tests' small place with photos written by Pillow."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pyproj import Geod
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from api.app import create_app
from geo.db.engine import make_engine
from geo.photo_store import PhotoStore
from geo.settings import PhotoSettings, Settings
from tests.api.test_photos import MODEL, photo, picture, png_bomb
from tests.factories import at_once
from tests.geo.campaigns.place import A1, B1, D_A, D_B, D_C, as_, at, campaign_body, emptied
from tests.geo.campaigns.place import prepared as prepared_place

TZ = ZoneInfo("Asia/Shanghai")
GEOD = Geod(ellps="WGS84")
# Three hours ago to the second: EXIF times are written to the second, in local time.
VISITED = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
HOUSEHOLDS = {"register": "households", "filter": {"living_alone_over": 60}}

MAX_PER_VISIT = PhotoSettings().max_per_visit


def exif_time(at_: datetime) -> str:
    return at_.astimezone(TZ).strftime("%Y:%m:%d %H:%M:%S")


@pytest.fixture(scope="module")
def place(test_database: tuple[Settings, Engine], tmp_path_factory) -> Engine:
    return prepared_place(test_database[1], tmp_path_factory.mktemp("visit-photos-place"))


@pytest.fixture
def world(place: Engine) -> Engine:
    return emptied(place)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> PhotoStore:
    return PhotoStore(tmp_path_factory.mktemp("visit-photos") / "photos")


@pytest.fixture(scope="module")
def api(place: Engine, test_database: tuple[Settings, Engine], store) -> Iterator[TestClient]:
    settings = test_database[0].model_copy(update={"photos": PhotoSettings(folder=store.folder)})
    with TestClient(create_app(settings, engine=place)) as c:
        yield c


def launch(api: TestClient, engine: Engine, **over) -> None:
    boss = as_(engine, "dispatcher")
    assert (
        api.post("/api/v1/campaigns", json=campaign_body(**over), headers=boss).status_code == 201
    )
    assert api.post("/api/v1/campaigns/CA11/launch", headers=boss).status_code == 200


def record(api: TestClient, worker: dict, grid: str = A1, **over) -> dict:
    """Record a visit at the centre of `grid` at VISITED; return its answer."""
    lon, lat = at(grid)
    body = {
        "id": str(uuid.uuid4()),
        "campaign": "CA11",
        "lon": lon,
        "lat": lat,
        "visited_at": VISITED.isoformat(),
        "answers": {"low_lying": False},
        **over,
    }
    r = api.post("/api/v1/visits", json=body, headers=worker)
    assert r.status_code == 201, r.text
    return {**r.json(), "body": body}


def small(seed: int, **kw) -> bytes:
    """A phone photo at the A1 visit's point and time (unless `kw` says otherwise), 160 x 120."""
    kw.setdefault("at", at(A1))
    kw.setdefault("taken", exif_time(VISITED))
    return photo(img=picture(seed, (160, 120)), **kw)


def send(api: TestClient, vid: str, data: bytes, headers: dict, name: str = "p.jpg"):
    files = {"file": (name, data, "image/jpeg")}
    return api.post(f"/api/v1/visits/{vid}/photos", files=files, headers=headers)


def test_a_photo_is_stored_once_served_without_exif_and_listed_with_the_visit(api, world, store):
    launch(api, world)
    worker = as_(world, "worker", username="wang", grids=(A1,))
    v = record(api, worker)
    data = small(1)
    first = send(api, v["id"], data, worker)
    assert first.status_code == 201, first.text
    shown = first.json()
    pid = shown["id"]
    assert shown["url"] == f"/api/v1/visits/{v['id']}/photos/{pid}" and "kind" not in shown
    assert shown["thumb_url"] == shown["url"] + "/thumb" and shown["flags"] == []
    assert shown["exif_distance_m"] < 0.1 and shown["exif_time_diff_h"] == 0.0
    assert shown["content_type"] == "image/jpeg" and (shown["width"], shown["height"]) == (160, 120)
    # The same file again (another name): that photo, 200, nothing new stored.
    again = send(api, v["id"], data, worker, name="again.png")
    assert again.status_code == 200 and again.json() == shown
    with world.connect() as conn:
        rows = conn.execute(
            text("SELECT sha256, thumb_sha256 FROM visit_photos WHERE visit_id = :v"),
            {"v": v["id"]},
        ).all()
        audited = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'visit.photo'")
        ).scalar_one()
    assert len(rows) == 1 and audited == 1

    # The visit's answers list it: the replay of POST /visits and GET /visits/{id}.
    replay = api.post("/api/v1/visits", json=v["body"], headers=worker)
    assert replay.status_code == 200 and replay.json()["photos"] == [shown]
    got = api.get(f"/api/v1/visits/{v['id']}", headers=worker)
    assert got.status_code == 200 and got.json()["photos"] == [shown]
    assert got.json()["grid"]["code"] == A1 and "cache-control" not in got.headers

    # Served: re-encoded, no EXIF; on disk the same, in the one photo store.
    served = api.get(shown["url"], headers=worker)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert served.headers["cache-control"] == "private, max-age=3600"
    on_disk = store.path(rows[0].sha256).read_bytes()
    assert served.content == on_disk and on_disk != data
    assert MODEL.encode() not in on_disk and b"Exif" not in on_disk
    assert len(Image.open(store.path(rows[0].sha256)).getexif()) == 0
    etag = served.headers["etag"]
    cached = api.get(shown["url"], headers={**worker, "If-None-Match": etag})
    assert cached.status_code == 304
    thumb = api.get(shown["thumb_url"], headers=worker)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert thumb.content == store.path(rows[0].thumb_sha256).read_bytes()


def test_exif_time_and_position_are_set_against_the_visit(api, world):
    launch(api, world)
    worker = as_(world, "worker", grids=(A1,))
    v = record(api, worker)
    far_at = at(A1, dx=450)
    far = send(api, v["id"], small(2, at=far_at), worker).json()
    expected = GEOD.inv(v["lon"], v["lat"], far_at[0], far_at[1])[2]
    assert far["flags"] == ["far_from_visit"] and abs(far["exif_distance_m"] - expected) < 0.1
    assert 440 < far["exif_distance_m"] < 460
    early = send(api, v["id"], small(3, taken=exif_time(VISITED - timedelta(hours=72))), worker)
    assert early.json()["flags"] == ["time_off"] and early.json()["exif_time_diff_h"] == -72.0
    # EXIF written in UTC (offset +00:00) is read as such: 5 minutes after the visit.
    utc = (VISITED + timedelta(minutes=5)).strftime("%Y:%m:%d %H:%M:%S")
    later = send(api, v["id"], small(4, taken=utc, offset="+00:00"), worker).json()
    assert later["flags"] == [] and later["exif_time_diff_h"] == round(5 / 60, 2)
    bare = send(api, v["id"], small(5, at=None, taken=None, offset=None), worker).json()
    assert bare["flags"] == ["no_exif"] and bare["exif_distance_m"] is None

    # The same picture on another visit, re-encoded: reused, naming the first visit.
    other = record(api, worker)
    copy = photo(img=picture(2, (160, 120)), at=at(A1), taken=exif_time(VISITED), quality=60)
    again = send(api, other["id"], copy, worker).json()
    assert again["flags"] == ["reused"] and again["reused_from"] == v["id"]


def test_files_that_are_not_photos_and_an_eleventh_photo_are_refused(api, world):
    launch(api, world)
    worker = as_(world, "worker", grids=(A1,))
    vid = record(api, worker)["id"]
    html = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
    disguised = send(api, vid, html, worker, name="photo.jpg")
    assert disguised.status_code == 415 and "judged by its content" in disguised.json()["detail"]
    bomb = send(api, vid, png_bomb(8000, 7000), worker, name="p.png")  # 56 MP in ~60 KB
    assert bomb.status_code == 422 and "over the limit of 50,000,000" in bomb.json()["detail"]

    for seed in range(10, 10 + MAX_PER_VISIT - 1):
        assert send(api, vid, small(seed), worker).status_code == 201
    # Three different files at once for the last place: one is stored.
    last = [small(seed) for seed in (40, 41, 42)]
    statuses = at_once(lambda data: send(api, vid, data, worker).status_code, last)
    assert sorted(statuses) == [201, 409, 409]
    eleventh = send(api, vid, small(50), worker)
    assert eleventh.status_code == 409
    assert eleventh.json()["detail"] == f"the visit has {MAX_PER_VISIT} photos, the most it takes"
    with world.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM visit_photos WHERE visit_id = :v"), {"v": vid}
        ).scalar_one()
    assert count == MAX_PER_VISIT


def test_who_adds_and_reads_a_visits_photos(api, world):
    launch(api, world)
    worker = as_(world, "worker", grids=(A1,))
    vid = record(api, worker)["id"]
    pid = send(api, vid, small(60), worker).json()["id"]
    url = f"/api/v1/visits/{vid}/photos/{pid}"
    # Someone else's visit, one that does not exist: 404 for the upload and the reads.
    elsewhere = as_(world, "worker", grids=(B1,))
    for who, target in ((elsewhere, vid), (worker, str(uuid.uuid4()))):
        r = send(api, target, small(61), who)
        assert r.status_code == 404 and r.json()["detail"] == f"no visit with id {target}"
    assert api.get(url, headers=elsewhere).status_code == 404
    assert api.get(f"/api/v1/visits/{vid}", headers=elsewhere).status_code == 404
    # A photo of another visit named under this one is not found.
    other = record(api, worker)["id"]
    assert api.get(f"/api/v1/visits/{other}/photos/{pid}", headers=worker).status_code == 404

    readers = {
        "same grid": as_(world, "worker", grids=(A1,)),
        "district A": as_(world, "dispatcher", districts=(D_A,)),
        "city": as_(world, "dispatcher"),
        "partner": as_(world, "department", department="水务局"),
        "planner": as_(world, "planner"),
        "admin": as_(world, "admin"),
    }
    for name, who in readers.items():
        assert api.get(url, headers=who).status_code == 200, name
        # They read it; only the visitor and an admin add to it.
        added = send(api, vid, small(62), who)
        assert added.status_code == (201 if name == "admin" else 403), name
    assert "added by its visitor" in send(api, vid, small(63), readers["city"]).json()["detail"]
    for who in (
        as_(world, "dispatcher", districts=(D_C,)),
        as_(world, "coordinator", districts=(D_B,)),
        as_(world, "department", department="燃气公司"),
    ):
        assert api.get(url, headers=who).status_code == 404
    assert api.get(url).status_code == 401  # no login


def test_a_household_visits_photo_is_personal_data(api, world):
    launch(api, world, targets=HOUSEHOLDS)
    worker = as_(world, "worker", username="zhao", grids=(A1,))
    v = record(api, worker, target="HH000")
    assert v["target"]["ref"] == "HH000"
    pid = send(api, v["id"], small(70), worker).json()["id"]
    url = f"/api/v1/visits/{v['id']}/photos/{pid}"
    # The roles that see no households: 403, the visit and its photo alike.
    for who in (as_(world, "planner"), as_(world, "dispatcher")):
        refused = api.get(url, headers=who)
        assert refused.status_code == 403 and "personal data" in refused.json()["detail"]
        assert api.get(f"/api/v1/visits/{v['id']}", headers=who).status_code == 403
    # A coordinator of another district: not theirs, 404.
    assert api.get(url, headers=as_(world, "coordinator", districts=(D_B,))).status_code == 404

    admin = as_(world, "admin", username="root")
    served = api.get(url, headers=admin)
    assert served.status_code == 200 and served.headers["cache-control"] == "no-store"
    # Never a 304 from what the reader holds: each read is audited.
    tag = {"If-None-Match": served.headers.get("etag", '"x"')}
    again = api.get(url, headers={**admin, **tag})
    assert again.status_code == 200 and again.content == served.content
    coordinator = as_(world, "coordinator", username="qian", districts=(D_A,))
    assert api.get(url, headers=coordinator).status_code == 200
    visit = api.get(f"/api/v1/visits/{v['id']}", headers=worker)
    assert visit.status_code == 200 and visit.headers["cache-control"] == "no-store"
    assert [p["id"] for p in visit.json()["photos"]] == [pid]
    with world.connect() as conn:
        reads = conn.execute(
            text(
                "SELECT actor, object_type, object_id, people FROM audit_log "
                "WHERE action = 'personal_data.read' ORDER BY id"
            )
        ).all()
    assert [tuple(r) for r in reads] == [
        ("root", "visit_photo", pid, 1),
        ("root", "visit_photo", pid, 1),
        ("qian", "visit_photo", pid, 1),
        ("zhao", "visit", v["id"], 1),
    ]


def test_the_service_role_adds_and_reads_a_photo_but_may_not_change_one(api, world, store):
    """As a login in riskgrid_app (migration 0012) and nothing more: the upload's turn-taking
    needs no row lock on visits (which the role may not UPDATE), and photos stay as sent."""
    launch(api, world, targets=HOUSEHOLDS)
    name, password = f"rg_test_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    with world.begin() as conn:
        conn.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE riskgrid_app"))
    base = api.app.state.settings
    url = world.url.set(username=name, password=password).render_as_string(hide_password=False)
    member = make_engine(base, url)
    try:
        with TestClient(create_app(base, engine=member)) as service:
            worker = as_(world, "worker", grids=(A1,))
            v = record(service, worker, target="HH001")
            added = send(service, v["id"], small(80), worker)
            assert added.status_code == 201, added.text
            admin = as_(world, "admin")
            assert service.get(added.json()["url"], headers=admin).status_code == 200
        with member.begin() as conn, pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("UPDATE visit_photos SET flags = '{}'"))
    finally:
        member.dispose()
        with world.begin() as conn:
            conn.execute(text(f"DROP ROLE {name}"))
