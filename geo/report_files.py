"""Read report files (CSV or GeoJSON points) for `riskgrid reports import`, row by row checked."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

from geo import taxonomy
from geo.coords import SourceCRS, to_wgs84
from geo.errors import InvalidInput
from geo.report_bulk import as_utc, content_id
from geo.settings import ReportSettings

LIMITS = {"description": 2000, "reporter": 100, "campaign": 32}
STATUSES = (*taxonomy.OPEN_STATUSES, *taxonomy.CLOSED_STATUSES)


@dataclass
class ReportFile:
    """Rows fit to load (WGS-84) and the refused ones with their reasons."""

    rows: pd.DataFrame
    errors: list[tuple[int, str]] = field(default_factory=list)


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except UnicodeDecodeError:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="gb18030")
        return _none_for_missing(frame.replace({"": None}))
    if suffix in (".geojson", ".json"):
        gdf = pyogrio.read_dataframe(path)
        if gdf.crs is not None and gdf.crs.to_epsg() not in (4326, 4490):
            gdf = gdf.to_crs(4326)
        kinds = set(gdf.geometry.geom_type.dropna())
        if kinds - {"Point"}:
            raise InvalidInput(
                f"{path.name}: reports must be Point features (found {sorted(kinds)})"
            )
        frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        frame["lon"] = gdf.geometry.x
        frame["lat"] = gdf.geometry.y
        return _none_for_missing(frame)
    raise InvalidInput(f"unsupported report file {path.suffix!r}: use .csv or .geojson")


def _none_for_missing(frame: pd.DataFrame) -> pd.DataFrame:
    # Object columns keep None as None; pandas' str dtype would turn it into NaN.
    return frame.astype(object).where(frame.notna(), None)


def _num(value: object) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)  # type: ignore[arg-type]


def _row_error(r: dict, now: datetime, rules: ReportSettings) -> str | None:
    try:
        lon, lat = _num(r.get("lon")), _num(r.get("lat"))
    except (TypeError, ValueError):
        return "lon and lat must be numbers"
    if lon is None or lat is None:
        return "lon and lat are required"
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return "lon and lat must be finite numbers"
    if not -90 <= lat <= 90:
        swapped = -90 <= lon <= 90 and -180 <= lat <= 180
        return f"lat must be within -90..90 (got {lat})" + (
            "; lon and lat look swapped" if swapped else ""
        )
    if not -180 <= lon <= 180:
        return f"lon must be within -180..180 (got {lon})"
    theme, category = r.get("theme"), r.get("category")
    if theme not in taxonomy.THEME_BY_CODE:
        return f"unknown theme {theme!r}"
    if taxonomy.category(theme, category or "") is None:
        return f"unknown category {category!r} for theme {theme!r}"
    if r.get("crs") not in (None, *[c.value for c in SourceCRS]):
        return f"unknown crs {r.get('crs')!r}: wgs84, cgcs2000, gcj02 or bd09"
    if r.get("status") not in (None, *STATUSES):
        return f"unknown status {r.get('status')!r}"
    for name, limit in LIMITS.items():
        v = r.get(name)
        if v is not None and (len(str(v)) > limit or "\x00" in str(v)):
            return f"{name} is longer than {limit} characters or holds NUL"
    try:
        sev = _num(r.get("severity"))
    except ValueError:
        return "severity must be 1-4"
    if sev is not None and sev not in (1, 2, 3, 4):
        return "severity must be 1-4"
    if r.get("id") is not None:
        try:
            uuid.UUID(str(r["id"]))
        except ValueError:
            return f"id {r['id']!r} is not a UUID"
    level = r.get("resolution_level")
    if level is not None and level not in taxonomy.LEVELS:
        return f"unknown resolution_level {level!r}: one of {', '.join(taxonomy.LEVELS)}"
    if r.get("status") in ("resolved", "verified") and level is None:
        return "a resolved or verified report needs its resolution_level"
    at = r.get("reported_at")
    if at is not None and at - now > timedelta(seconds=rules.clock_skew_s):
        return f"reported_at {at.isoformat()} is in the future"
    return None


def read_reports(path: Path, rules: ReportSettings, campaigns: set[str]) -> ReportFile:
    """Return the checked rows of a CSV or GeoJSON report file, converted to WGS-84."""
    if not path.exists():
        raise InvalidInput(f"no such file: {path}")
    frame = _read(path)
    missing = [c for c in ("lon", "lat", "theme", "category") if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"{path.name} lacks columns {missing}; columns found: {list(frame.columns)}"
        )
    frame = frame.reset_index(drop=True)
    frame["row_no"] = np.arange(2 if path.suffix.lower() == ".csv" else 1, len(frame) + 2)[
        : len(frame)
    ]
    try:
        frame["reported_at"] = (
            as_utc(frame["reported_at"], rules.naive_timezone) if ("reported_at" in frame) else None
        )
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{path.name}: a reported_at value is not a date-time ({exc})") from None
    now = datetime.now(UTC)
    errors: list[tuple[int, str]] = []
    keep = []
    for r in frame.to_dict("records"):
        err = _row_error(r, now, rules)
        if err is None and r.get("campaign") is not None and r["campaign"] not in campaigns:
            err = f"unknown campaign {r['campaign']!r}"
        if err is not None:
            errors.append((int(r["row_no"]), err))
        keep.append(err is None)
    ok = frame[np.asarray(keep, dtype=bool)].copy()
    if ok.empty:
        return ReportFile(ok, errors)
    crs = ok["crs"].fillna("wgs84") if "crs" in ok else pd.Series("wgs84", index=ok.index)
    lon = ok["lon"].astype(float).to_numpy()
    lat = ok["lat"].astype(float).to_numpy()
    out_lon, out_lat = lon.copy(), lat.copy()
    for code in crs.unique():
        m = (crs == code).to_numpy()
        out_lon[m], out_lat[m] = to_wgs84(lon[m], lat[m], code)
    ok["source_crs"] = crs.to_numpy()
    ok["source_lon"] = np.where(crs == "wgs84", None, lon)
    ok["source_lat"] = np.where(crs == "wgs84", None, lat)
    ok["lon"], ok["lat"] = out_lon, out_lat
    ids = list(ok["id"]) if "id" in ok else [None] * len(ok)
    ok["id"] = [
        uuid.UUID(str(i))
        if i is not None
        else content_id(
            r.get("lon"),
            r.get("lat"),
            r.get("theme"),
            r.get("category"),
            r.get("reported_at"),
            r.get("reporter"),
            r.get("description"),
        )
        for i, r in zip(ids, ok.to_dict("records"), strict=True)
    ]
    # Rows without a time are stamped now, after their content id is fixed.
    ok["reported_at"] = ok["reported_at"].where(ok["reported_at"].notna(), now)
    ok = ok.rename(columns={"campaign": "campaign_code"})
    for col in ("accuracy_m", "severity"):
        if col in ok:
            ok[col] = pd.to_numeric(ok[col])
    return ReportFile(ok, errors)
