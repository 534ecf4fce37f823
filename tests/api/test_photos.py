"""Photo evidence: EXIF against the report, EXIF-free copies, reuse, idempotency, refusals and
who may add and see photos, on real PostGIS with photos written by Pillow."""

from __future__ import annotations

import io
import stat
import struct
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational
from pyproj import Geod
from sqlalchemy import text

from api.app import create_app
from boundaries.importer import ImportOptions, import_file
from geo.errors import Conflict
from geo.photo_store import PhotoStore
from geo.reports import photos
from geo.settings import ImportSettings, PhotoSettings, ServerSettings
from tests.factories import grid_frame, login_as, tiled, write

LON, LAT = 125.0, 46.6
REPORTED = datetime(2024, 8, 22, 2, 0, tzinfo=UTC)  # 10:00 in Daqing
MODEL = "RG-Phone 1 (serial 4711)"
GEOD = Geod(ellps="WGS84")


def _dms(deg: float) -> tuple:
    d = int(deg)
    m = int((deg - d) * 60)
    s = ((deg - d) * 60 - m) * 60
    return (IFDRational(d, 1), IFDRational(m, 1), IFDRational(round(s * 10_000), 10_000))


def picture(seed: int = 0, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """Return a smooth random picture: its perceptual hash is stable, and another seed's differs."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8))
    return small.resize(size, Image.Resampling.BICUBIC)


def photo(
    seed: int = 0,
    at: tuple[float, float] | None = (LON, LAT),
    refs: str = "NE",
    taken: str | None = "2024:08:22 10:00:00",
    offset: str | None = "+08:00",
    fmt: str = "JPEG",
    orientation: int | None = None,
    img: Image.Image | None = None,
    **save,
) -> bytes:
    """Return a photo file with the EXIF a phone writes: model, position, capture time."""
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = MODEL
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    if at is not None:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLongitudeRef] = refs[0], refs[1]
        gps[ExifTags.GPS.GPSLatitude] = _dms(abs(at[1]))
        gps[ExifTags.GPS.GPSLongitude] = _dms(abs(at[0]))
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    if taken:
        sub[ExifTags.Base.DateTimeOriginal] = taken
    if offset:
        sub[ExifTags.Base.OffsetTimeOriginal] = offset
    buf = io.BytesIO()
    (img or picture(seed)).save(buf, fmt, exif=exif, **save)
    return buf.getvalue()


def png_bomb(width: int, height: int, rows: int | None = None) -> bytes:
    """Return a greyscale PNG of width x height black pixels (~1 KB a megapixel), its data cut
    after `rows` rows if given."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    z = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(z.compress(row) for _ in range(rows or height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def store(tmp_path) -> PhotoStore:
    return PhotoStore(tmp_path / "photos")


@pytest.fixture
def app(db, settings, store):
    rules = PhotoSettings(folder=store.folder, max_per_report=4)
    return create_app(settings.model_copy(update={"photos": rules}), engine=db)


@pytest.fixture
def api(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def bearer(db, role: str, **scope) -> dict:
    return {"Authorization": f"Bearer {login_as(db, role, **scope)}"}


def put_report(db, lon=LON, lat=LAT, theme="fire", category="electrical", **cols) -> str:
    """Store a report at (lon, lat), reported at REPORTED; return its id."""
    rid = str(uuid.uuid4())
    values = {"status": "reported", "reported_at": REPORTED, **cols}
    names, binds = ", ".join(values), ", ".join(f":{k}" for k in values)
    point = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
    sql = f"INSERT INTO reports (id, theme, category, geom, assignment_method, {names}) "
    sql += f"VALUES (:id, :theme, :category, {point}, 'unassigned', {binds})"
    with db.begin() as conn:
        conn.execute(
            text(sql),
            {"id": rid, "theme": theme, "category": category, "lon": lon, "lat": lat, **values},
        )
    return rid


def send(api, rid: str, data: bytes, kind: str = "site", headers=None, name="p.jpg"):
    files = {"file": (name, data, "image/jpeg")}
    return api.post(
        f"/api/v1/reports/{rid}/photos",
        files=files,
        data={"kind": kind},
        **({"headers": headers} if headers else {}),
    )


@pytest.fixture
def admin(db) -> dict:
    return bearer(db, "admin")


def test_exif_distance_and_time_against_the_report(api, db, admin):
    rid = put_report(db)
    lon, lat, _ = GEOD.fwd(LON, LAT, 37.0, 500.0)  # 500 m to the north-east
    far = send(api, rid, photo(at=(lon, lat), taken="2024:08:22 13:00:00"), headers=admin)
    assert far.status_code == 201, far.text
    body = far.json()
    assert abs(body["exif_distance_m"] - 500.0) < 0.5
    assert body["exif_time_diff_h"] == 3.0
    assert body["taken_at"] == "2024-08-22T05:00:00Z"
    assert body["flags"] == ["far_from_report"]
    lon, lat, _ = GEOD.fwd(LON, LAT, 200.0, 120.0)
    # No offset written: the phone's clock is read in Asia/Shanghai (08:00 = 00:00 UTC).
    near = send(
        api, rid, photo(1, at=(lon, lat), offset=None, taken="2024:08:22 08:00:00"), headers=admin
    ).json()
    assert abs(near["exif_distance_m"] - 120.0) < 0.5 and near["exif_time_diff_h"] == -2.0
    assert near["flags"] == []
    late = send(api, rid, photo(2, taken="2024:08:25 10:00:00"), headers=admin).json()
    assert late["flags"] == ["time_off"] and late["exif_time_diff_h"] == 72.0
    bare = send(api, rid, photo(3, at=None, taken=None, offset=None), headers=admin).json()
    assert bare["flags"] == ["no_exif"] and bare["exif_distance_m"] is None


def test_southern_and_western_hemispheres_read_negative():
    p = photos.prepare(photo(at=(-70.65, -33.45), refs="SW"), PhotoSettings(), "UTC")
    assert abs(p.lon + 70.65) < 1e-6 and abs(p.lat + 33.45) < 1e-6


def test_served_copy_carries_no_exif_and_is_upright(api, db, admin):
    rid = put_report(db)
    sent = photo(orientation=6, img=picture(size=(640, 480)))  # a phone held upright
    assert MODEL.encode() in sent
    body = send(api, rid, sent, headers=admin).json()
    served = api.get(body["url"], headers=admin)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert served.headers["cache-control"].startswith("private")
    assert MODEL.encode() not in served.content and b"Exif" not in served.content
    img = Image.open(io.BytesIO(served.content))
    assert len(img.getexif()) == 0 and "icc_profile" not in img.info
    assert img.size == (480, 640) == (body["width"], body["height"])
    thumb = api.get(body["thumb_url"], headers=admin)
    assert thumb.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(thumb.content)).size == (240, 320)
    again = api.get(body["url"], headers={**admin, "If-None-Match": served.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_are_taken_and_stripped(api, db, admin, fmt):
    rid = put_report(db)
    body = send(api, rid, photo(fmt=fmt), headers=admin, name="x.bin").json()
    assert body["content_type"] == f"image/{fmt.lower()}" and body["exif_distance_m"] == 0.0
    served = api.get(body["url"], headers=admin)
    assert served.headers["content-type"] == body["content_type"]
    assert (
        MODEL.encode() not in served.content
        and len(Image.open(io.BytesIO(served.content)).getexif()) == 0
    )


def test_the_same_photo_on_another_report_is_flagged_reused(api, db, admin):
    first, second, third = put_report(db), put_report(db), put_report(db)
    original = picture(5, size=(1200, 900))
    assert send(api, first, photo(img=original), headers=admin).json()["flags"] == []
    # The same report's own photos are not a reuse (before and after from one spot).
    again = send(api, first, photo(img=original, quality=70), headers=admin).json()
    assert again["flags"] == []
    # Sent again through a chat app: smaller, recompressed, its EXIF gone.
    buf = io.BytesIO()
    original.resize((600, 450)).save(buf, "JPEG", quality=60)
    copy = send(api, second, buf.getvalue(), kind="after", headers=admin).json()
    assert copy["flags"] == ["no_exif", "reused"] and copy["reused_from"] == first
    other = send(api, third, photo(6), kind="after", headers=admin).json()
    assert "reused" not in other["flags"] and other["reused_from"] is None


def test_the_reuse_look_up_reads_the_band_index(db):
    with db.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = (
            conn.execute(
                text("EXPLAIN " + photos._REUSED.text),
                {
                    "bands": photos.bands("a3330c6cebd61933"),
                    "phash": "a3330c6cebd61933",
                    "rid": uuid.uuid4(),
                    "bits": photos.REUSE_BITS,
                },
            )
            .scalars()
            .all()
        )
    assert any("ix_report_photos_phash_bands" in line for line in plan), plan


def test_bands_find_every_hash_within_the_threshold():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = int(rng.integers(0, 2**63))
        flips = rng.choice(64, size=photos.REUSE_BITS, replace=False)
        b = a ^ sum(1 << int(i) for i in flips)
        ha, hb = f"{a:016x}", f"{b:016x}"
        assert set(photos.bands(ha)) & set(photos.bands(hb))


def test_an_upload_is_idempotent(api, db, admin, store):
    rid = put_report(db)
    data = photo()
    first = send(api, rid, data, headers=admin)
    replay = send(api, rid, data, kind="after", headers=admin)
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json() and replay.json()["kind"] == "site"
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM report_photos")).scalar_one() == 1
        audited = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'report.photo'")
        ).scalar_one()
    assert audited == 1
    files = [p for p in store.folder.rglob("*") if p.is_file()]
    assert len(files) == 2  # the EXIF-free copy and its thumbnail
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    folders = [store.folder, *(p for p in store.folder.rglob("*") if p.is_dir())]
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o700}


def test_a_cut_photo_is_refused_after_a_letter_was_rendered_too():
    from PIL import ImageFile

    from web.letter import _weasyprint

    _weasyprint()  # WeasyPrint's import switches Pillow to accepting truncated images
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_refusals_say_what_is_wrong(api, db, admin):
    rid = put_report(db)
    text_file = send(api, rid, b"not a photo at all\n" * 100, headers=admin, name="evil.jpg")
    assert text_file.status_code == 415 and "JPEG, PNG or WebP" in text_file.json()["detail"]
    buf = io.BytesIO()
    picture().save(buf, "GIF")
    assert send(api, rid, buf.getvalue(), headers=admin).status_code == 415
    # 64 megapixels in 64 KB: refused from its header, before a byte is decoded.
    bomb = send(api, rid, png_bomb(8000, 8000), headers=admin, name="b.png")
    assert bomb.status_code == 422 and "8000 x 8000 pixels" in bomb.json()["detail"]
    # Past twice Pillow's own limit, Pillow refuses it while opening.
    huge = send(api, rid, png_bomb(20_000, 20_000, rows=10), headers=admin, name="h.png")
    assert huge.status_code == 422 and "too many pixels" in huge.json()["detail"]
    cut = photo()[:4000]
    assert send(api, rid, cut, headers=admin).status_code == 422
    wrong_kind = send(api, rid, photo(), kind="selfie", headers=admin)
    assert wrong_kind.status_code == 422 and wrong_kind.json()["detail"].startswith("kind")
    for seed in range(4):  # max_per_report is 4 here
        assert send(api, rid, photo(10 + seed), headers=admin).status_code == 201
    full = send(api, rid, photo(20), headers=admin)
    assert full.status_code == 409 and "4 photos" in full.json()["detail"]


def test_a_file_over_the_limits_is_refused_with_413(db, settings, store, admin):
    rid = put_report(db)
    small = settings.model_copy(
        update={"photos": PhotoSettings(folder=store.folder, max_bytes=10_000)}
    )
    with TestClient(create_app(small, engine=db)) as api:
        big = photo(img=picture(size=(1600, 1200)), quality=95)
        assert len(big) > 10_000
        r = send(api, rid, big, headers=admin)
        assert r.status_code == 413 and "over the limit of 10,000" in r.json()["detail"]
    door = settings.model_copy(update={"server": ServerSettings(max_upload_bytes=50_000)})
    with TestClient(create_app(door, engine=db)) as api:
        r = send(api, rid, b"\xff" * 60_000, headers=admin)
        assert r.status_code == 413 and "an upload" in r.json()["detail"]
    assert not store.folder.exists()


def test_who_may_add_and_see_photos(api, db, tmp_path):
    import_file(
        db, write(grid_frame(tiled(1)), tmp_path / "g.geojson"), ImportOptions(), ImportSettings()
    )
    grid = tiled(1)[0]["code"]
    reporter = bearer(db, "worker", username="w-reporter")
    with db.connect() as conn:
        uid = conn.execute(text("SELECT id FROM users WHERE username = 'w-reporter'")).scalar()
    rid = put_report(db, reporter_id=uid, department="燃气公司")
    in_grid = put_report(db, grid_code=grid)
    assert send(api, rid, photo(), headers=reporter).status_code == 201
    assert (
        send(api, in_grid, photo(1), headers=bearer(db, "worker", grids=(grid,))).status_code == 201
    )
    stranger = bearer(db, "worker")
    assert send(api, rid, photo(2), headers=stranger).status_code == 404
    planner = bearer(db, "planner")
    assert send(api, rid, photo(2), headers=planner).status_code == 403
    gas = bearer(db, "department", department="燃气公司")
    assert send(api, rid, photo(2), headers=gas).status_code == 404  # not dispatched yet
    with db.begin() as conn:
        conn.execute(text("UPDATE reports SET status = 'dispatched' WHERE id = :i"), {"i": rid})
    added = send(api, rid, photo(2), kind="after", headers=gas)
    assert added.status_code == 201
    url = added.json()["url"]
    assert api.get(url, headers=stranger).status_code == 404
    assert api.get(url, headers=planner).status_code == 200
    assert api.get(url, headers=bearer(db, "dispatcher")).status_code == 200
    with db.begin() as conn:
        conn.execute(text("UPDATE reports SET status = 'rejected' WHERE id = :i"), {"i": rid})
    closed = send(api, rid, photo(3), headers=bearer(db, "admin"))
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]
    # A phone sending a stored photo again after the report closed gets that photo.
    assert send(api, rid, photo(2), kind="after", headers=gas).status_code == 404  # not theirs now
    assert send(api, rid, photo(), headers=reporter).status_code == 200


def test_a_sensitive_report_s_photos_are_hidden_from_masked_readers(api, db, admin):
    rid = put_report(db, theme="dispute", category="neighbour")
    url = send(api, rid, photo(), headers=admin).json()["url"]
    assert api.get(url, headers=admin).status_code == 200
    assert api.get(url, headers=bearer(db, "planner")).status_code == 404
    assert api.get(url + "/thumb", headers=bearer(db, "coordinator")).status_code == 404


def test_the_report_s_photos_and_the_resolve_check(api, db, admin):
    fire, dispute = put_report(db), put_report(db, theme="dispute", category="neighbour")
    rules = PhotoSettings()
    with db.connect() as conn:
        with pytest.raises(Conflict, match="`after` photo"):
            photos.check_resolvable(conn, uuid.UUID(fire), "fire", rules)
        photos.check_resolvable(conn, uuid.UUID(dispute), "dispute", rules)
    site = send(api, fire, photo(), headers=admin).json()
    after = send(api, fire, photo(1), kind="after", headers=admin).json()
    with db.connect() as conn:
        assert photos.has_after(conn, uuid.UUID(fire))
        photos.check_resolvable(conn, uuid.UUID(fire), "fire", rules)
        listed = photos.for_reports(conn, [fire, dispute])
    assert listed == {fire: [site, after], dispute: []}
    assert set(site) >= {
        "id",
        "kind",
        "url",
        "thumb_url",
        "exif_distance_m",
        "exif_time_diff_h",
        "flags",
    }


def test_an_unknown_report_or_photo_is_not_found(api, admin):
    assert send(api, str(uuid.uuid4()), photo(), headers=admin).status_code == 404
    assert api.get(f"/api/v1/photos/{uuid.uuid4()}", headers=admin).status_code == 404


def test_the_store_names_files_by_content(store):
    digest = store.put(b"evidence")
    assert store.put(b"evidence") == digest and store.exists(digest)
    assert store.path(digest).relative_to(store.folder).parts[:2] == (digest[:2], digest[2:4])
    with store.open(digest) as f:
        assert f.read() == b"evidence"
    with pytest.raises(Exception, match="SHA-256"):
        store.path("../../etc/passwd")
    assert not list(store.folder.rglob(".put-*"))


def test_an_after_photo_taken_long_before_it_is_sent_is_time_off(api, db, admin):
    # Taken a week after the report (fine for an after photo) but sent more than 48 h later.
    rid = put_report(db, reported_at=datetime.now(UTC) - timedelta(days=10))
    week = (datetime.now(UTC) - timedelta(days=3)).astimezone().strftime("%Y:%m:%d %H:%M:%S")
    offset = (datetime.now(UTC) - timedelta(days=3)).astimezone().strftime("%z")
    old = send(
        api,
        rid,
        photo(taken=week, offset=f"{offset[:3]}:{offset[3:]}"),
        kind="after",
        headers=admin,
    ).json()
    assert old["flags"] == ["time_off"]
    fresh = datetime.now(UTC).strftime("%Y:%m:%d %H:%M:%S")
    new = send(api, rid, photo(1, taken=fresh, offset="+00:00"), kind="after", headers=admin).json()
    assert new["flags"] == []
