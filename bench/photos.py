"""Photo evidence benchmark: a 4 MB phone JPEG with EXIF uploaded to a report.

`python -m bench.photos`. In one run, on a fresh database with one report per upload:
- POST /api/v1/reports/{id}/photos with a 12-megapixel JPEG of ~4 MB (EXIF model, position and
  time): checked, EXIF read, re-encoded without EXIF, thumbnail, perceptual hash, reuse
  look-up, stored, audited;
- baselines in the same run: the same 4 MB request to a report that does not exist (sent,
  parsed and answered 404 without any image work), and GET /api/v1/auth/me (a trivial route);
- the image work alone in process (`geo.reports.photos.prepare`).
The pictures are drawn (smooth colour fields with sensor-like noise), not real photos: each
upload is a different picture, so no upload is a replay or a reuse of another.
"""

from __future__ import annotations

import http.client
import io
import json
import statistics
import time
import uuid

import numpy as np
import psycopg
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from bench.common import RESULTS, bench_database, ms, server
from geo.reports.photos import prepare
from geo.settings import PhotoSettings

LON, LAT = 125.03, 46.59
SIZE = (4032, 3024)  # a 12-megapixel phone camera
WARM_UP = 3


def phone_jpeg(seed: int) -> bytes:
    """Return a ~4 MB 12-megapixel JPEG with the EXIF a phone writes."""
    rng = np.random.default_rng(seed)
    field = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    smooth = np.asarray(field.resize(SIZE, Image.Resampling.BICUBIC), dtype=np.int16)
    noisy = smooth + rng.normal(0, 8, (SIZE[1], SIZE[0], 1))
    img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = "riskgrid", "bench phone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLongitudeRef] = "N", "E"
    gps[ExifTags.GPS.GPSLatitude] = (IFDRational(46, 1), IFDRational(35, 1), IFDRational(24, 1))
    gps[ExifTags.GPS.GPSLongitude] = (IFDRational(125, 1), IFDRational(1, 1), IFDRational(48, 1))
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = time.strftime("%Y:%m:%d %H:%M:%S")
    sub[ExifTags.Base.OffsetTimeOriginal] = "+08:00"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif)
    return buf.getvalue()


def multipart(data: bytes, kind: str = "site") -> tuple[bytes, str]:
    """Return (body, content type) of a form with `file` and `kind`, as a browser sends it."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="IMG.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return (
        head + data + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


def _reports(b, n: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with psycopg.connect(**b.dsn()) as conn:
        for rid in ids:
            conn.execute(
                "INSERT INTO reports (id, theme, category, status, geom, assignment_method, "
                "reported_at) VALUES (%s, 'fire', 'electrical', 'reported', "
                "ST_SetSRID(ST_MakePoint(%s, %s), 4326), 'unassigned', now())",
                (rid, LON, LAT),
            )
    return ids


def _time(port: int, requests: list[tuple[str, str, bytes, dict]], ok: int) -> list[float]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    out = []
    for i, (method, path, body, headers) in enumerate(requests):
        t0 = time.perf_counter()
        c.request(method, path, body, headers)
        r = c.getresponse()
        answer = r.read()
        if r.status != ok:
            raise RuntimeError(f"{method} {path}: HTTP {r.status} {answer[:200]!r}")
        if i >= WARM_UP:
            out.append(time.perf_counter() - t0)
    return out


def main(n: int = 30) -> dict:
    jpegs = [phone_jpeg(seed) for seed in range(n + WARM_UP)]
    rules = PhotoSettings()
    work = []
    for data in jpegs[:10]:
        t0 = time.perf_counter()
        prepare(data, rules, "Asia/Shanghai")
        work.append(time.perf_counter() - t0)
    with bench_database(demo=False) as b:
        auth = {"authorization": f"Bearer {b.token()}"}
        ids = _reports(b, len(jpegs))
        uploads, missing = [], []
        for rid, data in zip(ids, jpegs, strict=True):
            body, ctype = multipart(data)
            headers = {**auth, "content-type": ctype}
            uploads.append(("POST", f"/api/v1/reports/{rid}/photos", body, headers))
            missing.append(("POST", f"/api/v1/reports/{uuid.uuid4()}/photos", body, headers))
        with server(b) as port:
            nothing = _time(port, missing, 404)
            upload = _time(port, uploads, 201)
            me = _time(port, [("GET", "/api/v1/auth/me", b"", auth)] * 200, 200)
    out = {
        "jpeg_mb": statistics.mean(len(j) for j in jpegs) / 1e6,
        "megapixels": SIZE[0] * SIZE[1] / 1e6,
        "upload_p50_ms": ms(upload, 50),
        "upload_p90_ms": ms(upload, 90),
        "same_body_404_p50_ms": ms(nothing, 50),
        "auth_me_p50_ms": ms(me, 50),
        "image_work_p50_ms": ms(work, 50),
        "ratio_upload_to_same_body_404": statistics.median(upload) / statistics.median(nothing),
        "uploads": len(upload),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "photos.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def _print(r: dict) -> None:
    print(
        f"{r['uploads']} uploads of a {r['megapixels']:.0f}-megapixel JPEG of "
        f"{r['jpeg_mb']:.1f} MB with EXIF: p50 {r['upload_p50_ms']:.0f} ms "
        f"(p90 {r['upload_p90_ms']:.0f}; target p50 < 300)"
    )
    print(
        f"the same 4 MB request to no report (404): p50 {r['same_body_404_p50_ms']:.0f} ms -> "
        f"upload = {r['ratio_upload_to_same_body_404']:.1f}x; GET /auth/me p50 "
        f"{r['auth_me_p50_ms']:.1f} ms; image work alone (decode, upright, re-encode, "
        f"thumbnail, hash) p50 {r['image_work_p50_ms']:.0f} ms"
    )


if __name__ == "__main__":
    _print(main())
