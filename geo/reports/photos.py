"""Photo evidence of a report: the image checked (its type by content, size, pixels), what its
EXIF says set against the report (metres and hours apart), an EXIF-free copy and a thumbnail
in the photo store, and a perceptual hash that finds the same photo on another report.

EXIF positions are taken as WGS-84: a phone's camera writes what its GPS gives, and GCJ-02 is
an offset map apps apply to what they draw; EXIF has no field for it.
"""

from __future__ import annotations

import io
import math
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import imagehash
from PIL import ExifTags, Image, ImageOps
from pyproj import Geod
from sqlalchemy import Connection, Engine, TextClause, text

from geo.errors import Conflict, Forbidden, InvalidInput, NotFound
from geo.identity import audit
from geo.identity.principal import Principal
from geo.identity.scope import ReportScope, report_scope, scope_condition
from geo.photo_store import PhotoStore, sha256
from geo.settings import PhotoSettings, Settings
from geo.vocabulary import CLOSED_STATUSES, PhotoKind, Role

K = PhotoKind
# By content, never by name: Pillow reads the file's own signature. Phones' multi-picture
# JPEGs (portrait mode, MPO) are JPEGs to a browser.
FORMATS = ("JPEG", "PNG", "WEBP")
TYPES = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
THUMB_TYPE = "image/webp"  # small, and keeps a PNG's transparency
JPEG_QUALITY = 90
# Measured on photos: a re-encoded (quality 30 to 90), halved, WebP or greyscale copy is 0
# bits from its original, a 2 % crop or 20 % brighter 2-6; two different photos ~30 apart.
REUSE_BITS = 6
# Eight bands of 8 bits (the index ix_report_photos_phash_bands): a hash at most 7 bits from
# another shares a band with it, so candidates come from the index, not from every photo.
BANDS = "ARRAY[" + ", ".join(f"'{i}' || substr(p.phash, {2 * i + 1}, 2)" for i in range(8)) + "]"
UPLOAD_ROLES = (Role.ADMIN, Role.DISPATCHER, Role.DEPARTMENT, Role.WORKER)
# An answer names where each photo is served (api/routers/photos.py).
URL = "/api/v1/photos/{id}"
# What Pillow raises on a malformed file varies with the format and the damage.
_BAD_FILE = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError)
_GEOD = Geod(ellps="WGS84")


class TooLarge(InvalidInput):
    """A photo file over `photos.max_bytes`."""


class UnsupportedType(InvalidInput):
    """A file that is not a JPEG, PNG or WebP image by its content."""


@dataclass(frozen=True)
class Prepared:
    """An upload checked and converted: the EXIF-free copy, its thumbnail, what EXIF said."""

    upload_sha256: str
    content_type: str
    clean: bytes
    thumb: bytes
    phash: str
    width: int
    height: int
    taken_at: datetime | None
    lon: float | None
    lat: float | None


def check_size(size: int, rules: PhotoSettings) -> None:
    """Raise TooLarge for a file over the size limit."""
    if size > rules.max_bytes:
        raise TooLarge(
            f"the photo is {size:,} bytes, over the limit of {rules.max_bytes:,}: "
            "send it at a lower resolution or quality"
        )


def prepare(data: bytes, rules: PhotoSettings, naive_zone: str) -> Prepared:
    """Return an upload checked (type, size, pixels) with its EXIF read and its copies made."""
    check_size(len(data), rules)
    img = _open(data, rules.max_pixels)
    taken, position = _exif(img, naive_zone)
    fmt = img.format or ""
    upright = _upright(img)
    # Reduced by a whole factor first (box filter, no copy), then antialiased: 12 ms, not 19.
    thumb = upright.reduce(max(1, max(upright.size) // (2 * rules.thumb_px)))
    thumb.thumbnail((rules.thumb_px, rules.thumb_px))
    return Prepared(
        upload_sha256=sha256(data),
        content_type=TYPES[fmt],
        clean=_encode(upright, fmt),
        thumb=_encode(thumb, "WEBP", quality=80),
        phash=str(imagehash.phash(thumb)),
        width=upright.width,
        height=upright.height,
        taken_at=taken,
        lon=position[0] if position else None,
        lat=position[1] if position else None,
    )


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:
        raise InvalidInput(
            f"the image has too many pixels (the limit is {max_pixels:,}): send a smaller one"
        ) from None
    except _BAD_FILE:
        raise UnsupportedType(
            "the file is not a JPEG, PNG or WebP image (judged by its content, not its name)"
        ) from None
    # Only the header is read so far: a small file that decodes to gigabytes stops here.
    if img.width * img.height > max_pixels:
        raise InvalidInput(
            f"the image is {img.width} x {img.height} pixels, over the limit of "
            f"{max_pixels:,}: send a smaller one"
        )
    return img


def _upright(img: Image.Image) -> Image.Image:
    """Return the decoded pixels turned as EXIF says, in RGB(A), with no metadata at all."""
    try:
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
    except _BAD_FILE:
        raise InvalidInput("the image is damaged or cut short: it cannot be decoded") from None
    alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    mode = "RGBA" if alpha else "RGB"
    out = img if img.mode == mode else img.convert(mode)
    # EXIF, XMP, ICC profile, comments, text chunks: nothing of the upload travels on.
    out.info = {}
    return out


def _encode(img: Image.Image, fmt: str, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    if fmt in ("JPEG", "MPO"):
        img.save(buf, "JPEG", quality=quality)
    elif fmt == "PNG":
        img.save(buf, "PNG")
    else:
        img.save(buf, "WEBP", quality=quality)
    return buf.getvalue()


def _exif(img: Image.Image, naive_zone: str) -> tuple[datetime | None, tuple | None]:
    """Return (capture time, (lon, lat)) from the EXIF, each None when absent or unreadable."""
    try:
        exif = img.getexif()
        taken = _taken_at(exif.get_ifd(ExifTags.IFD.Exif), naive_zone)
        position = _position(exif.get_ifd(ExifTags.IFD.GPSInfo))
    except (*_BAD_FILE, KeyError, ZeroDivisionError):
        return None, None
    return taken, position


def _taken_at(sub: dict, naive_zone: str) -> datetime | None:
    raw = _text(sub.get(ExifTags.Base.DateTimeOriginal))
    try:
        naive = datetime.strptime(raw, "%Y:%m:%d %H:%M:%S")
    except ValueError:  # absent, or 0000:00:00 00:00:00
        return None
    offset = _text(sub.get(ExifTags.Base.OffsetTimeOriginal))
    try:
        sign = -1 if offset.startswith("-") else 1
        hh, mm = offset.lstrip("+-").split(":")
        zone: Any = timezone(sign * timedelta(hours=int(hh), minutes=int(mm)))
    except ValueError:  # no offset written: the phone's clock is taken as the local zone
        zone = ZoneInfo(naive_zone)
    try:
        return naive.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError:  # "0001:01:01 00:00:00" east of Greenwich lies before year 1 in UTC
        return None


def _position(gps: dict) -> tuple[float, float] | None:
    lat = _degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "NS")
    lon = _degrees(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "EW")
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180:
        return None
    if lat == 0 and lon == 0:  # written by cameras that had no fix
        return None
    return lon, lat


def _degrees(value: Any, ref: Any, hemispheres: str) -> float | None:
    """Return degrees from EXIF's (degrees, minutes, seconds) and its N/S or E/W reference."""
    side = _text(ref).upper()
    if not isinstance(value, tuple) or len(value) != 3 or side not in hemispheres:
        return None
    d, m, s = (float(v) for v in value)
    deg = d + m / 60 + s / 3600
    if not math.isfinite(deg):
        return None
    return -deg if side == hemispheres[1] else deg


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip("\x00 ") if isinstance(value, str) else ""


def flags_for(
    p: Prepared,
    kind: str,
    distance_m: float | None,
    hours: float | None,
    rules: PhotoSettings,
    far: str = "far_from_report",
) -> list[str]:
    """Return the flags of a photo set against its report, or what `far` names (a visit),
    all but `reused`."""
    flags = []
    if p.taken_at is None and p.lon is None:
        flags.append("no_exif")  # stripped by the phone or a chat app (FixMyStreet mobile #174)
    if distance_m is not None and distance_m > rules.flag_distance_m:
        flags.append(far)
    if hours is not None and _time_off(kind, p.taken_at, hours, rules.flag_time_h):
        flags.append("time_off")
    return flags


def _time_off(kind: str, taken: datetime | None, hours: float, limit_h: float) -> bool:
    # A site or before photo is taken about when the report is; an after or check photo any
    # time after it (the work takes days) but not long before it is sent.
    if hours < -limit_h:
        return True
    if kind in (K.SITE, K.BEFORE):
        return hours > limit_h
    return taken is not None and (datetime.now(UTC) - taken) > timedelta(hours=limit_h)


# The database side: the report the photo is of, idempotent insert, reuse, answers.

COLUMNS = (
    "p.id, p.report_id, p.kind, p.content_type, p.bytes, p.width, p.height, p.taken_at, "
    "p.exif_distance_m, p.exif_time_diff_h, p.flags, p.reused_from, p.created_at"
)
_REPORT = (
    "SELECT r.id, ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat, r.reported_at, r.status "
    "FROM reports r WHERE r.id = :id AND {scoped}"
)
_REPLAY = text(
    f"SELECT {COLUMNS} FROM report_photos p WHERE p.report_id = :rid AND p.upload_sha256 = :up"
)


def reused_query(table: str, subject: str, own: str) -> TextClause:
    """The look-up of the nearest earlier photo (within REUSE_BITS of `:phash`, its bands
    `:bands`) in `table`, of another `subject` than the bind `own`: its subject's id."""
    distance = "bit_count(CAST('x' || p.phash AS bit(64)) # CAST('x' || :phash AS bit(64)))"
    return text(
        f"""
    SELECT p.{subject} FROM {table} p
    WHERE {BANDS} && CAST(:bands AS text[]) AND p.{subject} <> :{own}
      AND {distance} <= :bits
    ORDER BY {distance}, p.created_at
    LIMIT 1
    """
    )


_REUSED = reused_query("report_photos", "report_id", "rid")
_INSERT = text(
    f"""
    INSERT INTO report_photos AS p (id, report_id, kind, sha256, upload_sha256, thumb_sha256,
        phash, content_type, bytes, width, height, taken_at, exif_lon, exif_lat,
        exif_distance_m, exif_time_diff_h, flags, reused_from, uploaded_by)
    VALUES (:id, :rid, :kind, :sha, :up, :thumb, :phash, :ct, :bytes, :w, :h, :taken, :lon,
        :lat, :dist, :hours, :flags, :reused, :by)
    ON CONFLICT ON CONSTRAINT uq_report_photos_upload DO NOTHING
    RETURNING {COLUMNS}
    """
)


def bands(phash: str) -> list[str]:
    """Return the eight tagged 8-bit bands of a 16-hex-digit hash, as the index holds them."""
    return [f"{i}{phash[2 * i : 2 * i + 2]}" for i in range(8)]


def upload(
    engine: Engine,
    store: PhotoStore,
    report_id: uuid.UUID,
    kind: PhotoKind,
    data: bytes,
    who: Principal,
    settings: Settings,
) -> tuple[dict, bool]:
    """Store a photo of a report as `who`; return (its answer, whether it is new).

    The same bytes sent to the same report again answer the photo stored the first time.
    NotFound outside `who`'s scope, Forbidden for a role that adds no photos, Conflict on a
    closed report or one with its count of photos; TooLarge, UnsupportedType, InvalidInput
    for the file."""
    rules = settings.photos
    check_size(len(data), rules)
    scope = report_scope(who, settings.auth.sensitive_themes)
    digest = sha256(data)
    with engine.connect() as conn:  # refused or replayed before the image is decoded
        row = _report(conn, report_id, scope, who)
        found = conn.execute(_REPLAY, {"rid": report_id, "up": digest}).one_or_none()
        if found is not None:  # a phone sending again after the report closed gets its photo
            return visible_reuse(conn, [answer(found)], scope)[0], False
    _check_open(row)
    # Decoded, re-encoded and hashed (~0.1-0.2 s for a phone photo) holding no connection.
    prepared = prepare(data, rules, settings.reports.naive_timezone)
    with engine.begin() as conn:
        shown, created = _insert(conn, store, report_id, kind, prepared, who, scope, rules)
        return visible_reuse(conn, [shown], scope)[0], created


def _report(
    conn: Connection, report_id: uuid.UUID, scope: ReportScope, who: Principal, lock: bool = False
) -> Any:
    """Return the report a photo is added to; NotFound outside the scope, Forbidden for a role
    that adds no photos."""
    scoped, params = scope_condition(scope)
    sql = _REPORT.format(scoped=scoped) + (" FOR UPDATE" if lock else "")
    row = conn.execute(text(sql), {**params, "id": report_id}).one_or_none()
    if row is None:
        raise NotFound(f"no report with id {report_id}")
    if who.role not in UPLOAD_ROLES:
        raise Forbidden(
            "photos are added by the reporter, the grid's worker, the department the report is "
            f"dispatched to, dispatchers and administrators; you are logged in as {who.role}"
        )
    return row


def row_values(
    store: PhotoStore,
    p: Prepared,
    distance: float | None,
    hours: float | None,
    flags: list[str],
    reused: Any,
    who: Principal,
) -> dict:
    """The bind values a stored photo's row has whatever it is a photo of (a report's, a
    visit's): its files put in the store, what the file said, how it stands against its
    subject (`distance` metres, `hours`), its flags and the photo it reuses."""
    return {
        "id": uuid.uuid4(),
        "sha": store.put(p.clean),
        "up": p.upload_sha256,
        "thumb": store.put(p.thumb),
        "phash": p.phash,
        "ct": p.content_type,
        "bytes": len(p.clean),
        "w": p.width,
        "h": p.height,
        "taken": p.taken_at,
        "lon": p.lon,
        "lat": p.lat,
        "dist": distance,
        "hours": hours,
        "flags": flags,
        "reused": reused,
        "by": who.user_id,
    }


def _check_open(row: Any) -> None:
    if row.status in CLOSED_STATUSES:
        raise Conflict(f"the report is closed ({row.status}): it takes no more photos")


def _insert(
    conn: Connection,
    store: PhotoStore,
    report_id: uuid.UUID,
    kind: PhotoKind,
    p: Prepared,
    who: Principal,
    scope: ReportScope,
    rules: PhotoSettings,
) -> tuple[dict, bool]:
    # The report's row lock makes concurrent uploads to it take turns: the count holds.
    row = _report(conn, report_id, scope, who, lock=True)
    found = conn.execute(_REPLAY, {"rid": report_id, "up": p.upload_sha256}).one_or_none()
    if found is not None:
        return answer(found), False
    _check_open(row)
    count = conn.execute(
        text("SELECT count(*) FROM report_photos WHERE report_id = :rid"), {"rid": report_id}
    ).scalar_one()
    if count >= rules.max_per_report:
        raise Conflict(f"the report has {count} photos, the most it takes")
    distance, hours = _against(p, row)
    flags = flags_for(p, kind, distance, hours, rules)
    reused = conn.execute(
        _REUSED, {"bands": bands(p.phash), "phash": p.phash, "rid": report_id, "bits": REUSE_BITS}
    ).scalar()
    if reused is not None:
        flags.append("reused")
    values = {
        **row_values(store, p, distance, hours, flags, reused, who),
        "rid": report_id,
        "kind": str(kind),
    }
    stored = conn.execute(_INSERT, values).one_or_none()
    if stored is None:  # sent twice at once: the other request stored it
        return answer(conn.execute(_REPLAY, values).one()), False
    changes = {"photo": [None, str(stored.id)], "kind": [None, str(kind)], "flags": [None, flags]}
    audit.record(conn, who, "report.photo", "report", report_id, changes)
    return answer(stored), True


def _against(p: Prepared, report: Any) -> tuple[float | None, float | None]:
    """Return (metres, hours) from the report's point and time to the photo's EXIF."""
    return against(p, report.lon, report.lat, report.reported_at)


def against(p: Prepared, lon: float, lat: float, at: datetime) -> tuple[float | None, float | None]:
    """Return (metres, hours) from a point and time (a report's, a visit's) to the photo's
    EXIF, each None when the EXIF has none: metres on the WGS-84 ellipsoid."""
    distance = None
    if p.lon is not None and p.lat is not None:
        distance = float(_GEOD.inv(lon, lat, p.lon, p.lat)[2])
    hours = None
    if p.taken_at is not None:
        hours = (p.taken_at - at).total_seconds() / 3600
    return distance, hours


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def answer(row: Any, url: str = URL) -> dict:
    """Return the JSON shape of a stored photo (its EXIF position is not shown), served at
    `url` filled from its columns (a visit's photo: geo.campaigns.visits.PHOTO_URL)."""
    return _shape(row._mapping, url)


def answer_from_json(m: dict, url: str = URL) -> dict:
    """Return the JSON shape of a photo read as a JSON row (`json_agg` of COLUMNS)."""
    at = {k: None if m[k] is None else datetime.fromisoformat(m[k]) for k in _TIMES}
    return _shape({**m, **at}, url)


_TIMES = ("taken_at", "created_at")


def _shape(m: Any, url: str) -> dict:
    pid = str(m["id"])
    dist, hours = m["exif_distance_m"], m["exif_time_diff_h"]
    served = url.format_map(m)
    return {
        "id": pid,
        **({"kind": m["kind"]} if "kind" in m else {}),  # a visit's photos have no kind
        "url": served,
        "thumb_url": served + "/thumb",
        "content_type": m["content_type"],
        "bytes": m["bytes"],
        "width": m["width"],
        "height": m["height"],
        "taken_at": _iso(m["taken_at"]),
        "exif_distance_m": None if dist is None else round(dist, 1),
        "exif_time_diff_h": None if hours is None else round(hours, 2),
        "flags": list(m["flags"]),
        "reused_from": None if m["reused_from"] is None else str(m["reused_from"]),
        "created_at": _iso(m["created_at"]),
    }


_VISIBLE = (
    "SELECT r.id FROM reports r WHERE r.id = ANY(CAST(:ids AS uuid[])) AND {scoped} "
    "AND NOT r.theme = ANY(CAST(:masked AS text[]))"
)


def visible_reuse(conn: Connection, shown: list[dict], scope: ReportScope) -> list[dict]:
    """Return photo answers with `reused_from` kept only where the reader sees that report
    unmasked (the `reused` flag stays): the id would tie a masked report, or one outside the
    reader's scope, to the photo's report and its exact point."""
    named = {p["reused_from"] for p in shown if p["reused_from"]}
    if not named:
        return shown
    scoped, params = scope_condition(scope)
    seen = {
        str(i)
        for i in conn.execute(
            text(_VISIBLE.format(scoped=scoped)),
            {**params, "ids": sorted(named), "masked": list(scope.masked_themes)},
        ).scalars()
    }
    return [
        {**p, "reused_from": p["reused_from"] if p["reused_from"] in seen else None} for p in shown
    ]


def for_reports(conn: Connection, ids: list[str] | list[uuid.UUID]) -> dict[str, list[dict]]:
    """Return the photos of each report (by its id as text), oldest first; [] for none."""
    rows = conn.execute(
        text(
            f"SELECT {COLUMNS} FROM report_photos p WHERE p.report_id = ANY(CAST(:ids AS uuid[])) "
            "ORDER BY p.created_at, p.id"
        ),
        {"ids": [str(i) for i in ids]},
    )
    out: dict[str, list[dict]] = {str(i): [] for i in ids}
    for row in rows:
        out[str(row.report_id)].append(answer(row))
    return out


def has_after(conn: Connection, report_id: uuid.UUID) -> bool:
    """Return whether the report has an `after` photo (处置后) uploaded since its work was
    last sent back (返工): the photo of a fix that failed the check does not count again."""
    return bool(
        conn.execute(
            text(
                """
                SELECT EXISTS (
                  SELECT 1 FROM report_photos p WHERE p.report_id = :r AND p.kind = :k
                    AND p.created_at >= COALESCE((
                      SELECT max(e.at) FROM report_events e WHERE e.report_id = :r
                        AND e.kind = 'transition' AND e.from_status = 'resolved'
                        AND e.to_status = 'in_progress'), '-infinity'))
                """
            ),
            {"r": report_id, "k": str(K.AFTER)},
        ).scalar_one()
    )


def check_resolvable(
    conn: Connection, report_id: uuid.UUID, theme: str, rules: PhotoSettings
) -> None:
    """Raise Conflict when the report's theme resolves with an `after` photo and it has none."""
    if theme in rules.after_not_required or has_after(conn, report_id):
        return
    free = ", ".join(rules.after_not_required) or "none"
    raise Conflict(
        f"a {theme} report is resolved with a photo of the fixed site: add an `after` photo "
        f"(处置后) first, POST /api/v1/reports/{report_id}/photos with kind=after (themes "
        f"resolved without one: {free})"
    )


def served(
    conn: Connection, store: PhotoStore, photo_id: uuid.UUID, scope: ReportScope, thumb: bool
) -> tuple[Any, str, str, dict]:
    """Return (file path, content type, SHA-256, its report's `id` and `theme`) of a photo or
    its thumbnail as served; NotFound unless its report is within the scope and not masked for
    this reader."""
    scoped, params = scope_condition(scope)
    row = conn.execute(
        text(
            "SELECT p.sha256, p.thumb_sha256, p.content_type, r.id, r.theme FROM report_photos p "
            f"JOIN reports r ON r.id = p.report_id WHERE p.id = :id AND {scoped} "
            "AND NOT r.theme = ANY(CAST(:masked AS text[]))"
        ),
        {**params, "id": photo_id, "masked": list(scope.masked_themes)},
    ).one_or_none()
    if row is None:
        raise NotFound(f"no photo with id {photo_id}")
    return (*stored_file(store, row, photo_id, thumb), {"id": row.id, "theme": row.theme})


def stored_file(
    store: PhotoStore, row: Any, photo_id: uuid.UUID, thumb: bool
) -> tuple[Any, str, str]:
    """Return (file path, content type, SHA-256) of a photo row (`sha256, thumb_sha256,
    content_type`) or its thumbnail; NotFound when its file is missing from the store."""
    digest, media = (row.thumb_sha256, THUMB_TYPE) if thumb else (row.sha256, row.content_type)
    path = store.path(digest)
    if not path.is_file():
        raise NotFound(f"photo {photo_id} is recorded but its file is missing from the store")
    return path, media, digest
