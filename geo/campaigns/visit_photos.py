"""Photo evidence of a visit (走访排查): a household checked or a workshop found in order has no
report to carry its photo, so the visit carries it.

The file is handled as a report's photo is (geo.reports.photos: its type by content, size and
pixel limits, EXIF read then dropped, re-encoded, stored by content hash in the same photo
store, a perceptual hash), and set against the visit: metres from its point and hours from its
`visited_at` (as a `site` photo is against its report). Flags: `no_exif`, `far_from_visit`,
`time_off`, `reused` (the same picture on another visit). Added by the visit's visitor or an
admin; read by whoever reads the visit (geo.campaigns.visits.readable).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, Engine, text

from geo.campaigns import visits
from geo.errors import Conflict, Forbidden, NotFound
from geo.identity import audit
from geo.identity.principal import Principal
from geo.photo_store import PhotoStore, sha256
from geo.reports import photos
from geo.reports.photos import Prepared
from geo.settings import Settings
from geo.vocabulary import PhotoKind, Role

# A visit is one door; ten photos show it. (photos.max_per_report is the reports' limit.)
FAR = "far_from_visit"
COLUMNS = visits.PHOTO_COLUMNS
_TURN = text("SELECT pg_advisory_xact_lock(hashtextextended('visit_photos:' || :vid, 0))")
_REPLAY = text(
    f"SELECT {COLUMNS} FROM visit_photos p WHERE p.visit_id = :vid AND p.upload_sha256 = :up"
)
_REUSED = photos.reused_query("visit_photos", "visit_id", "vid")
_INSERT = text(
    f"""
    INSERT INTO visit_photos AS p (id, visit_id, sha256, upload_sha256, thumb_sha256, phash,
        content_type, bytes, width, height, taken_at, exif_lon, exif_lat, exif_distance_m,
        exif_time_diff_h, flags, reused_from, uploaded_by)
    VALUES (:id, :vid, :sha, :up, :thumb, :phash, :ct, :bytes, :w, :h, :taken, :lon, :lat,
        :dist, :hours, :flags, :reused, :by)
    ON CONFLICT ON CONSTRAINT uq_visit_photos_upload DO NOTHING
    RETURNING {COLUMNS}
    """
)


def _answer(row: Any) -> dict:
    return photos.answer(row, visits.PHOTO_URL)


def _visit(conn: Connection, who: Principal, visit_id: uuid.UUID) -> Any:
    """Return the visit a photo is added to; NotFound unless `who` may read it, Forbidden
    unless they made it or are an admin."""
    row = visits.readable(conn, who, visit_id)
    if who.role != Role.ADMIN and (who.user_id is None or row.user_id != who.user_id):
        raise Forbidden(
            "a visit's photos are added by its visitor (the worker who recorded it) or an "
            "administrator"
        )
    return row


def upload(
    engine: Engine,
    store: PhotoStore,
    visit_id: uuid.UUID,
    data: bytes,
    who: Principal,
    settings: Settings,
) -> tuple[dict, bool]:
    """Store a photo of a visit as `who`; return (its answer, whether it is new).

    The same bytes sent to the same visit again answer the photo stored the first time.
    NotFound unless `who` may read the visit, Forbidden unless they made it or are an admin,
    Conflict when it has `photos.max_per_visit`; TooLarge, UnsupportedType, InvalidInput for the
    file (geo.reports.photos)."""
    rules = settings.photos
    photos.check_size(len(data), rules)
    digest = sha256(data)
    with engine.connect() as conn:  # refused or replayed before the image is decoded
        _visit(conn, who, visit_id)
        found = conn.execute(_REPLAY, {"vid": visit_id, "up": digest}).one_or_none()
        if found is not None:
            return visits.visible_reuse(conn, who, [_answer(found)])[0], False
    # Decoded, re-encoded and hashed holding no connection (~0.1-0.2 s for a phone photo).
    prepared = photos.prepare(data, rules, settings.reports.naive_timezone)
    with engine.begin() as conn:
        shown, created = _insert(conn, store, visit_id, prepared, who, settings)
        return visits.visible_reuse(conn, who, [shown])[0], created


def _insert(
    conn: Connection,
    store: PhotoStore,
    visit_id: uuid.UUID,
    p: Prepared,
    who: Principal,
    settings: Settings,
) -> tuple[dict, bool]:
    # Concurrent uploads to one visit take turns, so the count holds. Not the visit's row
    # lock (as a report's): the service may not UPDATE visits, and FOR UPDATE needs that.
    conn.execute(_TURN, {"vid": str(visit_id)})
    row = _visit(conn, who, visit_id)
    found = conn.execute(_REPLAY, {"vid": visit_id, "up": p.upload_sha256}).one_or_none()
    if found is not None:
        return _answer(found), False
    count = conn.execute(
        text("SELECT count(*) FROM visit_photos WHERE visit_id = :vid"), {"vid": visit_id}
    ).scalar_one()
    if count >= settings.photos.max_per_visit:
        raise Conflict(f"the visit has {count} photos, the most it takes")
    distance, hours = photos.against(p, row.lon, row.lat, row.visited_at)
    # Taken at the visit, as a report's site photo is taken at the report.
    flags = photos.flags_for(p, PhotoKind.SITE, distance, hours, settings.photos, far=FAR)
    reused = conn.execute(
        _REUSED,
        {
            "bands": photos.bands(p.phash),
            "phash": p.phash,
            "vid": visit_id,
            "bits": photos.REUSE_BITS,
        },
    ).scalar()
    if reused is not None:
        flags.append("reused")
    values = {**photos.row_values(store, p, distance, hours, flags, reused, who), "vid": visit_id}
    stored = conn.execute(_INSERT, values).one_or_none()
    if stored is None:  # sent twice at once: the other request stored it
        return _answer(conn.execute(_REPLAY, values).one()), False
    changes = {"photo": [None, str(stored.id)], "flags": [None, flags]}
    audit.record(conn, who, "visit.photo", "visit", visit_id, changes)
    return _answer(stored), True


def served(
    conn: Connection,
    store: PhotoStore,
    who: Principal,
    visit_id: uuid.UUID,
    photo_id: uuid.UUID,
    thumb: bool,
) -> tuple[Any, str, str, bool]:
    """Return (file path, content type, SHA-256, whether it is personal data) of a visit's
    photo or its thumbnail as served; NotFound unless `who` may read the visit and the photo
    is of it, Forbidden for a visit to a household when their role sees no households. The
    read of a household visit's photo is audited in `conn`'s transaction."""
    visit = visits.readable(conn, who, visit_id)
    row = conn.execute(
        text(
            "SELECT p.sha256, p.thumb_sha256, p.content_type FROM visit_photos p "
            "WHERE p.id = :id AND p.visit_id = :vid"
        ),
        {"id": photo_id, "vid": visit_id},
    ).one_or_none()
    if row is None:
        raise NotFound(f"no photo with id {photo_id} on visit {visit_id}")
    path, media, digest = photos.stored_file(store, row, photo_id, thumb)
    visits.audit_read(conn, who, visit, "visit_photo", photo_id)
    return path, media, digest, bool(visit.personal)
