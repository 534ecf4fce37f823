"""A few hundred generated demo photos: drawn scenes, not real photographs, and said so on
each picture ("演示照片 / demo photo, generated") and in its EXIF.

Each JPEG carries EXIF as a phone writes it (DateTimeOriginal with OffsetTimeOriginal, GPS)
and goes through the upload path's own conversion (geo.reports.photos.prepare: EXIF-free copy,
thumbnail, perceptual hash) into the photo store; the rows are written in one statement, not
through hundreds of uploads. `after` photos (处置后) on resolved and verified reports, `check`
photos (核查) on some verified ones, `site` photos (现场) on open ones. A few are taken far from
their report on purpose, and a few are the same picture on two reports, so that the
`far_from_report` and `reused` flags have something to show. Ids follow from the seed and the
report: loading again adds nothing.
"""

from __future__ import annotations

import functools
import io
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from PIL import ExifTags, Image, ImageDraw, ImageFont
from sqlalchemy import Connection, Engine, text

from geo.photo_store import PhotoStore
from geo.reports import photos, taxonomy
from geo.settings import PhotoSettings
from geo.vocabulary import PhotoKind

K = PhotoKind
# Photos of each kind: 300 in all, enough for every screen and a few on many reports (each is
# drawn, encoded and prepared as an upload is: ~25 ms at this size).
AFTER, CHECK, SITE = 200, 40, 60
REUSED = 6  # after photos that are another report's after photo again (a fake closure)
FAR_EVERY = 20  # one photo in 20 taken 1-4 km from its report
SIZE = (320, 240)  # small: a phone's photo is reduced for the demo
JPEG_QUALITY = 85  # 10-25 KB a picture with the grain below
ZONE = "Asia/Shanghai"  # where the demo's phones keep their clocks
LABELS = {K.AFTER: "处置后 / after", K.CHECK: "核查 / check", K.SITE: "现场 / site"}
NOTICE = "演示照片 / demo photo, generated"
DESCRIPTION = "riskgrid demo photo: drawn by a program, not a real photograph"
_M_PER_DEG = 111_320.0

_REPORTS = text(
    """
    SELECT r.id, ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat, r.reported_at, r.status, r.theme,
           r.category,
           (SELECT max(e.at) FROM report_events e WHERE e.report_id = r.id
              AND e.kind = 'transition' AND e.to_status = 'resolved') AS resolved_at,
           (SELECT max(e.at) FROM report_events e WHERE e.report_id = r.id
              AND e.kind = 'transition' AND e.to_status = 'verified') AS verified_at
    FROM reports r WHERE r.id = ANY(CAST(:ids AS uuid[]))
    ORDER BY md5(r.id::text)
    """
)
_INSERT = text(
    """
    INSERT INTO report_photos (id, report_id, kind, sha256, upload_sha256, thumb_sha256, phash,
        content_type, bytes, width, height, taken_at, exif_lon, exif_lat, exif_distance_m,
        exif_time_diff_h, flags, created_at)
    VALUES (:id, :rid, :kind, :sha, :up, :thumb, :phash, :ct, :bytes, :w, :h, :taken, :lon,
        :lat, :dist, :hours, :flags, :created)
    ON CONFLICT DO NOTHING
    """
)
# The upload path's reuse check, set-based over the photos just added: a photo within
# photos.REUSE_BITS of an earlier one on another report is flagged with where it came from.
_REUSE = text(
    """
    WITH m AS (
      SELECT p.id, (
        SELECT q.report_id FROM report_photos q
        WHERE {q_bands} && {p_bands}
          AND q.report_id <> p.report_id AND q.created_at < p.created_at
          AND bit_count(CAST('x' || q.phash AS bit(64)) # CAST('x' || p.phash AS bit(64)))
              <= :bits
        ORDER BY bit_count(CAST('x' || q.phash AS bit(64)) # CAST('x' || p.phash AS bit(64))),
                 q.created_at
        LIMIT 1) AS src
      FROM report_photos p WHERE p.id = ANY(CAST(:ids AS uuid[]))
    )
    UPDATE report_photos p SET reused_from = m.src, flags = array_append(p.flags, 'reused')
    FROM m WHERE m.id = p.id AND m.src IS NOT NULL
    """.replace("{q_bands}", photos.BANDS.replace("p.phash", "q.phash")).replace(
        "{p_bands}", photos.BANDS
    )
)


@dataclass(frozen=True)
class Planned:
    """One demo photo to make: of which report, what kind, when sent, and its picture's seed."""

    id: uuid.UUID
    report: Any
    kind: PhotoKind
    sent_at: datetime
    far: bool
    copy_of: Planned | None = None  # the same file as another report's photo (reused)


def plan(rows: list[Any], seed: int) -> list[Planned]:
    """Return the photos to make for the demo's reports (rows in their stable order)."""
    closed = [r for r in rows if r.status in ("resolved", "verified") and r.resolved_at]
    verified = [r for r in closed if r.status == "verified" and r.verified_at]
    open_ = [r for r in rows if r.status in ("reported", "accepted", "dispatched",
                                             "in_progress", "returned")]  # fmt: skip
    out: list[Planned] = []

    def add(r: Any, kind: PhotoKind, sent_at: datetime, copy_of: Planned | None = None) -> None:
        pid = uuid.uuid5(uuid.NAMESPACE_URL, f"riskgrid:demo-photo:{seed}:{r.id}:{kind}")
        far = len(out) % FAR_EVERY == FAR_EVERY - 1
        out.append(Planned(pid, r, kind, sent_at, far, copy_of))

    for i, r in enumerate(closed[:AFTER]):
        add(r, K.AFTER, r.resolved_at, out[i - REUSED] if REUSED <= i < 2 * REUSED else None)
    for r in verified[:CHECK]:
        add(r, K.CHECK, r.verified_at)
    for r in open_[:SITE]:
        add(r, K.SITE, r.reported_at + timedelta(minutes=5))
    return out


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Noto Sans CJK (Debian's fonts-noto-cjk) draws the Chinese; without it Pillow's own font
    # still writes the English half of each label.
    try:
        return ImageFont.truetype("NotoSansCJK-Regular.ttc", size)
    except OSError:
        return ImageFont.load_default(size)


def draw(p: Planned, taken_local: datetime) -> Image.Image:
    """Return the picture of a planned photo: a simple scene with what it shows written on."""
    rng = np.random.default_rng(p.id.int)
    w, h = SIZE
    sky, ground = rng.integers(60, 230, 3), rng.integers(40, 180, 3)
    ramp = np.linspace(0.0, 1.0, h)[:, None, None]
    horizon = int(rng.integers(h // 3, h // 2))
    pixels = np.where(
        (np.arange(h) < horizon)[:, None, None],
        sky * (1 - 0.4 * ramp),
        ground * (0.7 + 0.3 * ramp),
    )
    # Grain, so that the JPEG weighs what a small photo does (20-40 KB) rather than 10.
    pixels = pixels + rng.integers(-6, 7, (h, w, 1))
    img = Image.fromarray(np.clip(np.broadcast_to(pixels, (h, w, 3)), 0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 8))):  # buildings, kerbs, puddles
        x0, y0 = int(rng.integers(0, w - 80)), int(rng.integers(horizon - 90, h - 50))
        box = (x0, y0, x0 + int(rng.integers(40, 200)), y0 + int(rng.integers(30, 140)))
        colour = tuple(int(c) for c in rng.integers(20, 240, 3))
        (pen.rectangle if rng.random() < 0.6 else pen.ellipse)(box, fill=colour)
    cat = taxonomy.category(p.report.theme, p.report.category)
    title = f"{cat.zh} / {cat.en}" if cat else p.report.category
    pen.rectangle((0, 0, w, 80), fill=(0, 0, 0))
    pen.text((14, 6), title, font=_font(22), fill=(255, 255, 255))
    pen.text((14, 44), f"{LABELS[p.kind]}  {taken_local:%Y-%m-%d %H:%M}", font=_font(20),
             fill=(255, 220, 120))  # fmt: skip
    pen.rectangle((0, h - 38, w, h), fill=(180, 20, 20))
    pen.text((14, h - 35), NOTICE, font=_font(22), fill=(255, 255, 255))
    return img


def jpeg(p: Planned) -> bytes:
    """Return the planned photo as a phone's JPEG: capture time with its offset, and GPS."""
    if p.copy_of is not None:  # sent again, byte for byte, for another report
        return jpeg(p.copy_of)
    rng = np.random.default_rng(p.id.int ^ 1)  # not the picture's draws
    taken = _taken(p, rng)
    local = taken.astimezone(ZoneInfo(ZONE))
    lon, lat = _position(p, rng)
    exif = Image.Exif()
    exif[ExifTags.Base.ImageDescription] = DESCRIPTION
    exif[ExifTags.Base.Make] = "riskgrid"
    exif[ExifTags.Base.Model] = "demo generator"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = local.strftime("%Y:%m:%d %H:%M:%S")
    offset = local.strftime("%z")  # +0800
    sub[ExifTags.Base.OffsetTimeOriginal] = f"{offset[:3]}:{offset[3:]}"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", _dms(lat)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", _dms(lon)
    buf = io.BytesIO()
    draw(p, local).save(buf, "JPEG", quality=JPEG_QUALITY, exif=exif)
    return buf.getvalue()


def _taken(p: Planned, rng: np.random.Generator) -> datetime:
    # A site photo just before the report is sent; an after or check photo before it is sent.
    lo, hi = (1, 20) if p.kind == K.SITE else (5, 90)
    base = p.report.reported_at if p.kind == K.SITE else p.sent_at
    return base - timedelta(minutes=float(rng.uniform(lo, hi)))


def _position(p: Planned, rng: np.random.Generator) -> tuple[float, float]:
    # Near the point, as a phone's GPS puts it (metres off); `far` ones 1-4 km away.
    r = p.report
    dist = rng.uniform(1000, 4000) if p.far else abs(rng.normal(0, 15))
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = dist * math.cos(bearing) / _M_PER_DEG
    dlon = dist * math.sin(bearing) / (_M_PER_DEG * math.cos(math.radians(r.lat)))
    return r.lon + dlon, r.lat + dlat


def _dms(deg: float) -> tuple[float, float, float]:
    d = math.floor(deg)
    m = math.floor((deg - d) * 60)
    return float(d), float(m), round((deg - d - m / 60) * 3600, 4)


def _row(p: Planned, store: PhotoStore, rules: PhotoSettings) -> dict:
    """Return the stored row of a planned photo, its copies put in the store."""
    prepared = photos.prepare(jpeg(p), rules, ZONE)
    distance, hours = photos._against(prepared, p.report)
    flags = photos.flags_for(prepared, p.kind, distance, hours, rules)
    # flags_for takes an after or check photo's age at upload from the clock; a demo photo
    # was sent at its historical time, so its age is taken then.
    if "time_off" in flags and p.kind in (K.AFTER, K.CHECK) and prepared.taken_at:
        limit = timedelta(hours=rules.flag_time_h)
        if (
            hours is not None
            and hours >= -rules.flag_time_h
            and p.sent_at - prepared.taken_at <= limit
        ):
            flags.remove("time_off")
    return {
        "id": p.id,
        "rid": p.report.id,
        "kind": str(p.kind),
        "sha": store.put(prepared.clean),
        "up": prepared.upload_sha256,
        "thumb": store.put(prepared.thumb),
        "phash": prepared.phash,
        "ct": prepared.content_type,
        "bytes": len(prepared.clean),
        "w": prepared.width,
        "h": prepared.height,
        "taken": prepared.taken_at,
        "lon": prepared.lon,
        "lat": prepared.lat,
        "dist": distance,
        "hours": hours,
        "flags": flags,
        "created": p.sent_at,
    }


def _stored(conn: Connection, planned: list[Planned]) -> dict[uuid.UUID, tuple[str, str]]:
    """Return the files (copy, thumbnail) of the planned photos already stored, by id."""
    rows = conn.execute(
        text("SELECT id, sha256, thumb_sha256 FROM report_photos WHERE id = ANY(:ids)"),
        {"ids": [p.id for p in planned]},
    )
    return {r.id: (r.sha256, r.thumb_sha256) for r in rows}


def load_demo_photos(
    engine: Engine, store: PhotoStore, report_ids: list[uuid.UUID], rules: PhotoSettings, seed: int
) -> dict:
    """Make and store the demo photos of `report_ids` that are not stored yet; return counts."""
    with engine.connect() as conn:
        rows = list(conn.execute(_REPORTS, {"ids": [str(i) for i in report_ids]}))
        planned = plan(rows, seed)
        stored = _stored(conn, planned)
    # A stored row whose files the store has lost gets them back (same bytes, same names).
    todo = [p for p in planned if not all(map(store.exists, stored.get(p.id, ())))]
    todo += [p for p in planned if p.id not in stored]
    values = [_row(p, store, rules) for p in todo]
    new = [v for v in values if v["id"] not in stored]
    if new:
        with engine.begin() as conn:
            conn.execute(_INSERT, new)
            conn.execute(_REUSE, {"ids": [str(v["id"]) for v in new], "bits": photos.REUSE_BITS})
    return {"added": len(new), "existing": len(stored)}
