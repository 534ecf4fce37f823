"""Read household files (CSV or GeoJSON points) for `riskgrid households import`, checked row
by row: a bad row is reported with its number and left out, the others are loaded.

Columns: `code` (the household's id in the grid workers' register), `lon`, `lat` (or GeoJSON
geometry), `members`, and optionally `crs` (wgs84, cgcs2000, gcj02, bd09), `over_60`,
`oldest_age`, `living_alone`, `mobility_needs` (1/0, true/false, 是/否), `head_name`, `phone`,
`address`, `contact_worker`. Chinese column names are understood too (户编号, 经度, 纬度, 人数, …).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from geo.coords import SourceCRS
from geo.errors import InvalidInput
from geo.reports.files import RowRefusals, read_table, to_wgs84_rows

ALIASES = {
    "户编号": "code",
    "编号": "code",
    "经度": "lon",
    "纬度": "lat",
    "坐标系": "crs",
    "人数": "members",
    "家庭人数": "members",
    "60岁以上": "over_60",
    "60岁以上人数": "over_60",
    "最大年龄": "oldest_age",
    "独居": "living_alone",
    "行动不便": "mobility_needs",
    "户主": "head_name",
    "电话": "phone",
    "联系电话": "phone",
    "地址": "address",
    "网格员": "contact_worker",
}
TEXT_LIMITS = {"code": 64, "head_name": 100, "phone": 32, "address": 300, "contact_worker": 100}
YES = {"1", "true", "yes", "y", "是", "t"}
NO = {"0", "false", "no", "n", "否", "f", ""}


@dataclass
class HouseholdFile:
    """Rows fit to load (WGS-84, in geo.risk.households.COLUMNS) and the refused ones."""

    rows: pd.DataFrame
    errors: list[tuple[int, str]] = field(default_factory=list)


def _flags(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return (value, bad) for a yes/no column."""
    text = values.astype("string").str.strip().str.lower().fillna("")
    return text.isin(YES).to_numpy(), (~text.isin(YES | NO)).to_numpy()


@dataclass
class _Checked:
    """A household file's columns, parsed while they were checked."""

    lon: np.ndarray
    lat: np.ndarray
    crs: pd.Series
    code: pd.Series
    members: pd.Series
    over_60: pd.Series
    age: pd.Series
    alone: np.ndarray
    mobility: np.ndarray


def read_households(path: Path) -> HouseholdFile:
    """Return the checked households of a CSV or GeoJSON file, positions in WGS-84."""
    rows = RowRefusals(_read_frame(path))
    checked = _check(rows)
    keep = pd.isna(rows.reasons)
    first = 2 if path.suffix.lower() == ".csv" else 1
    errors = [(first + int(i), str(rows.reasons[i])) for i in np.flatnonzero(~keep)]
    return HouseholdFile(_households(rows, checked, np.flatnonzero(keep)), errors)


def _read_frame(path: Path) -> pd.DataFrame:
    """Return the file's rows under English column names; refuse a file lacking a needed one."""
    if not path.exists():
        raise InvalidInput(f"no such file: {path}")
    f = read_table(path).rename(columns=ALIASES).reset_index(drop=True)
    missing = [c for c in ("code", "lon", "lat", "members") if c not in f.columns]
    if missing:
        raise InvalidInput(f"{path.name} lacks columns {missing}; columns found: {list(f.columns)}")
    return f


def _check(rows: RowRefusals) -> _Checked:
    """Refuse the rows failing a check (the first reason kept); return the parsed columns."""
    lon, lat, crs = _check_position(rows)
    code = _check_code(rows)
    members, over_60, age = _check_counts(rows)
    alone, mobility = _check_flags(rows, members)
    _check_text(rows)
    return _Checked(lon, lat, crs, code, members, over_60, age, alone, mobility)


def _check_position(rows: RowRefusals) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Refuse rows without a finite lon/lat in range or with an unknown crs."""
    f, flag = rows.frame, rows.flag
    lon = pd.to_numeric(f["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(f["lat"], errors="coerce").to_numpy(dtype=float)
    flag(~np.isfinite(lon) | ~np.isfinite(lat), "lon and lat must be finite numbers")
    flag((np.abs(lat) > 90) | (np.abs(lon) > 180), "lat within -90..90 and lon within -180..180")
    crs = rows.column("crs").fillna("wgs84").astype(str).str.lower()
    flag(~crs.isin([c.value for c in SourceCRS]), "crs must be wgs84, cgcs2000, gcj02 or bd09")
    return lon, lat, crs


def _check_code(rows: RowRefusals) -> pd.Series:
    """Refuse rows without a code or whose code another row of the file has too."""
    code = rows.column("code").astype("string").str.strip()
    rows.flag(code.isna() | (code == ""), "code is required")
    rows.flag(code.duplicated(keep=False).fillna(False), "code appears more than once in the file")
    return code


def _check_counts(rows: RowRefusals) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Refuse rows whose members, over_60 or oldest_age is out of range."""
    col, flag = rows.column, rows.flag
    members = pd.to_numeric(col("members"), errors="coerce")
    over_60 = pd.to_numeric(col("over_60"), errors="coerce").fillna(0)
    age = pd.to_numeric(col("oldest_age"), errors="coerce")
    flag(~members.between(1, 50) | (members % 1 != 0), "members must be a whole number 1-50")
    flag(~over_60.between(0, 50) | (over_60 > members), "over_60 must be 0..members")
    flag(col("oldest_age").notna() & ~age.between(0, 130), "oldest_age must be 0-130")
    return members, over_60, age


def _check_flags(rows: RowRefusals, members: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Refuse rows whose yes/no columns hold something else, or alone with others."""
    alone, bad_alone = _flags(rows.column("living_alone"))
    mobility, bad_mobility = _flags(rows.column("mobility_needs"))
    rows.flag(
        bad_alone | bad_mobility, "living_alone and mobility_needs take 1/0, true/false, 是/否"
    )
    rows.flag(alone & (members != 1), "living_alone needs members = 1")
    return alone, mobility


def _check_text(rows: RowRefusals) -> None:
    """Refuse rows with text over its limit or holding NUL."""
    for name, limit in TEXT_LIMITS.items():
        values = rows.column(name).astype("string")
        too_long = (values.str.len() > limit).fillna(False) | values.str.contains(
            "\x00", regex=False
        ).fillna(False)
        rows.flag(too_long, f"{name} is longer than {limit} characters or holds NUL")


def _households(rows: RowRefusals, checked: _Checked, ok: np.ndarray) -> pd.DataFrame:
    """Return the rows `ok` in geo.risk.households.COLUMNS, positions converted to WGS-84."""
    lon, lat = to_wgs84_rows(checked.lon[ok], checked.lat[ok], checked.crs.iloc[ok])
    codes = checked.code.iloc[ok].astype(str).to_numpy()
    return pd.DataFrame(
        {
            # The id follows the code: importing the register again updates, never duplicates.
            "id": [str(uuid.UUID(bytes=hashlib.sha256(c.encode()).digest()[:16])) for c in codes],
            "code": codes,
            **{
                name: rows.column(name).iloc[ok].to_numpy()
                for name in ("head_name", "phone", "address", "contact_worker")
            },
            "members": checked.members.iloc[ok].astype(int).to_numpy(),
            "over_60": checked.over_60.iloc[ok].astype(int).to_numpy(),
            "oldest_age": checked.age.iloc[ok].astype("Int64").to_numpy(),
            "living_alone": checked.alone[ok],
            "mobility_needs": checked.mobility[ok],
            "lon": np.round(lon, 7),
            "lat": np.round(lat, 7),
        }
    )
