"""Read report files (CSV or GeoJSON points) for `riskgrid reports import`, row by row checked."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

from geo.coords import SourceCRS, to_wgs84
from geo.errors import InvalidInput
from geo.reports import taxonomy
from geo.reports.bulk import as_utc, content_ids
from geo.settings import ReportSettings
from geo.vocabulary import ReportStatus

LIMITS = {"description": 2000, "reporter": 100, "campaign": 32}
STATUSES = [s.value for s in ReportStatus]


@dataclass
class ReportFile:
    """Rows fit to load (WGS-84) and the refused ones with their reasons."""

    rows: pd.DataFrame
    errors: list[tuple[int, str]] = field(default_factory=list)


def read_table(path: Path) -> pd.DataFrame:
    """Return the rows of a CSV (UTF-8 or GB18030) or GeoJSON point file, `lon`/`lat` for
    GeoJSON geometry (reprojected to WGS-84), every cell a string or None."""
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
            raise InvalidInput(f"{path.name}: rows must be Point features (found {sorted(kinds)})")
        frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        frame["lon"] = gdf.geometry.x
        frame["lat"] = gdf.geometry.y
        return _none_for_missing(frame)
    raise InvalidInput(f"unsupported file {path.suffix!r}: use .csv or .geojson")


def to_wgs84_rows(
    lon: np.ndarray, lat: np.ndarray, crs: pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    """Return WGS-84 positions of rows each given in its own source CRS (`crs`, per row)."""
    out_lon, out_lat = lon.copy(), lat.copy()
    for code in crs.unique():
        m = (crs == code).to_numpy()
        out_lon[m], out_lat[m] = to_wgs84(lon[m], lat[m], code)
    return out_lon, out_lat


def _none_for_missing(frame: pd.DataFrame) -> pd.DataFrame:
    # Object columns keep None as None; pandas' str dtype would turn it into NaN.
    return frame.astype(object).where(frame.notna(), None)


class RowRefusals:
    """The first reason to refuse each row of a file's frame, filled in check by check."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.reasons = np.full(len(frame), None, dtype=object)

    def column(self, name: str) -> pd.Series:
        """Return the named column, or one of None where the file has no such column."""
        f = self.frame
        return f[name] if name in f else pd.Series(None, index=f.index, dtype=object)

    def flag(self, mask: object, msg: str | Callable[[int], str]) -> None:
        """Give the rows of `mask` not refused yet `msg` as their reason (or `msg(row index)`)."""
        hit = np.asarray(mask, dtype=bool) & pd.isna(self.reasons)
        if not callable(msg):
            self.reasons[hit] = msg
            return
        for i in np.flatnonzero(hit):  # messages only for refused rows: few
            self.reasons[i] = msg(int(i))


def _errors(
    f: pd.DataFrame, now: datetime, rules: ReportSettings, campaigns: set[str]
) -> np.ndarray:
    """Return, per row, the first reason to refuse it (None when fine), checked column-wise."""
    rows = RowRefusals(f)
    _check_position(rows)
    _check_vocabulary(rows)
    _check_text(rows)
    _check_ids(rows)
    _check_time(rows, now, rules.clock_skew_s)
    _check_campaign(rows, campaigns)
    return rows.reasons


def _check_position(rows: RowRefusals) -> None:
    """Refuse rows without a finite lon/lat in range; name a swapped pair."""
    f, flag = rows.frame, rows.flag
    lon = pd.to_numeric(f["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(f["lat"], errors="coerce").to_numpy(dtype=float)
    flag(f["lon"].isna() | f["lat"].isna(), "lon and lat are required")
    flag(np.isnan(lon) | np.isnan(lat), "lon and lat must be numbers")
    flag(~np.isfinite(lon) | ~np.isfinite(lat), "lon and lat must be finite numbers")
    bad_lat = np.abs(lat) > 90
    flag(
        bad_lat & (np.abs(lon) <= 90) & (np.abs(lat) <= 180),
        lambda i: f"lat must be within -90..90 (got {lat[i]}); lon and lat look swapped",
    )
    flag(bad_lat, lambda i: f"lat must be within -90..90 (got {lat[i]})")
    flag(np.abs(lon) > 180, lambda i: f"lon must be within -180..180 (got {lon[i]})")


def _check_vocabulary(rows: RowRefusals) -> None:
    """Refuse rows whose theme, category, crs, status or resolution level is unknown."""
    col, flag = rows.column, rows.flag
    theme, category = col("theme"), col("category")
    flag(~theme.isin(list(taxonomy.THEME_BY_CODE)), lambda i: f"unknown theme {theme.iat[i]!r}")
    known = {f"{t}/{c}" for t, c in taxonomy.CATEGORY_BY_CODE}
    flag(
        ~(theme.astype(str) + "/" + category.astype(str)).isin(known),
        lambda i: f"unknown category {category.iat[i]!r} for theme {theme.iat[i]!r}",
    )
    crs = col("crs")
    flag(
        crs.notna() & ~crs.isin([c.value for c in SourceCRS]),
        lambda i: f"unknown crs {crs.iat[i]!r}: wgs84, cgcs2000, gcj02 or bd09",
    )
    status, level = col("status"), col("resolution_level")
    flag(status.notna() & ~status.isin(STATUSES), lambda i: f"unknown status {status.iat[i]!r}")
    flag(
        level.notna() & ~level.isin([v.value for v in taxonomy.LEVELS]),
        lambda i: f"unknown resolution_level {level.iat[i]!r}: one of {', '.join(taxonomy.LEVELS)}",
    )
    flag(
        status.isin(["resolved", "verified"]) & level.isna(),
        "a resolved or verified report needs its resolution_level",
    )


def _check_text(rows: RowRefusals) -> None:
    """Refuse rows with text over its limit or holding NUL, or a severity outside 1-4."""
    col, flag = rows.column, rows.flag
    for name, limit in LIMITS.items():
        values = col(name).astype("string")
        too_long = (values.str.len() > limit).fillna(False)
        nul = values.str.contains("\x00", regex=False).fillna(False)
        flag(too_long | nul, f"{name} is longer than {limit} characters or holds NUL")
    severity = pd.to_numeric(col("severity"), errors="coerce")
    flag(col("severity").notna() & ~severity.isin([1, 2, 3, 4]), "severity must be 1-4")


def _check_ids(rows: RowRefusals) -> None:
    """Refuse rows whose given id is not a UUID."""
    ids = rows.column("id")
    for i in np.flatnonzero(ids.notna().to_numpy()):
        try:
            uuid.UUID(str(ids.iat[i]))
        except ValueError:
            rows.flag(np.arange(len(ids)) == i, f"id {ids.iat[i]!r} is not a UUID")


def _check_time(rows: RowRefusals, now: datetime, clock_skew_s: float) -> None:
    """Refuse rows whose reported_at is not a date-time or lies in the future."""
    col, flag = rows.column, rows.flag
    at = pd.to_datetime(col("reported_at"), utc=True)
    flag(
        col("reported_at_text").notna() & at.isna(),
        lambda i: f"reported_at {col('reported_at_text').iat[i]!r} is not an ISO 8601 date-time",
    )
    flag(
        (at - now > pd.Timedelta(seconds=clock_skew_s)).fillna(False),
        lambda i: f"reported_at {at.iat[i].isoformat()} is in the future",
    )


def _check_campaign(rows: RowRefusals, campaigns: set[str]) -> None:
    """Refuse rows naming a campaign that is not stored."""
    camp = rows.column("campaign")
    rows.flag(
        camp.notna() & ~camp.isin(list(campaigns)), lambda i: f"unknown campaign {camp.iat[i]!r}"
    )


def read_reports(path: Path, rules: ReportSettings, campaigns: set[str]) -> ReportFile:
    """Return the checked rows of a CSV or GeoJSON report file, converted to WGS-84."""
    if not path.exists():
        raise InvalidInput(f"no such file: {path}")
    frame = read_table(path)
    missing = [c for c in ("lon", "lat", "theme", "category") if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"{path.name} lacks columns {missing}; columns found: {list(frame.columns)}"
        )
    frame = frame.reset_index(drop=True)
    # Ids for rows that bring none, from the row's text as written: stable across re-imports.
    raw_ids = content_ids(
        frame, ["lon", "lat", "theme", "category", "reported_at", "reporter", "description"]
    )
    frame["row_no"] = np.arange(2 if path.suffix.lower() == ".csv" else 1, len(frame) + 2)[
        : len(frame)
    ]
    if "reported_at" in frame:
        frame["reported_at_text"] = frame["reported_at"]
        frame["reported_at"] = as_utc(frame["reported_at"], rules.naive_timezone)
    else:
        frame["reported_at"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    now = datetime.now(UTC)
    err = _errors(frame, now, rules, campaigns)
    keep = pd.isna(err)
    refused = ~keep
    errors = [(int(n), str(e)) for n, e in zip(frame["row_no"][refused], err[refused], strict=True)]
    ok = frame[np.asarray(keep, dtype=bool)].copy()
    if ok.empty:
        return ReportFile(ok, errors)
    crs = ok["crs"].fillna("wgs84") if "crs" in ok else pd.Series("wgs84", index=ok.index)
    lon = ok["lon"].astype(float).to_numpy()
    lat = ok["lat"].astype(float).to_numpy()
    out_lon, out_lat = to_wgs84_rows(lon, lat, crs)
    ok["source_crs"] = crs.to_numpy()
    ok["source_lon"] = np.where(crs == "wgs84", None, lon)
    ok["source_lat"] = np.where(crs == "wgs84", None, lat)
    ok["lon"], ok["lat"] = out_lon, out_lat
    derived = [d for d, k in zip(raw_ids, keep, strict=True) if k]
    given = list(ok["id"]) if "id" in ok else [None] * len(ok)
    ok["id"] = [
        str(uuid.UUID(str(g))) if g is not None else d for g, d in zip(given, derived, strict=True)
    ]
    # Rows without a time are stamped now, after their content id is fixed.
    ok["reported_at"] = ok["reported_at"].where(ok["reported_at"].notna(), now)
    ok = ok.rename(columns={"campaign": "campaign_code"})
    for col in ("accuracy_m", "severity"):
        if col in ok:
            ok[col] = pd.to_numeric(ok[col])
    return ReportFile(ok, errors)
