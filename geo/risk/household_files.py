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

from geo.coords import SourceCRS, to_wgs84
from geo.errors import InvalidInput
from geo.reports.files import read_table

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
    """Rows fit to load (WGS-84, in geo.households.COLUMNS) and the refused ones."""

    rows: pd.DataFrame
    errors: list[tuple[int, str]] = field(default_factory=list)


def _flags(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return (value, bad) for a yes/no column."""
    text = values.astype("string").str.strip().str.lower().fillna("")
    return text.isin(YES).to_numpy(), (~text.isin(YES | NO)).to_numpy()


def read_households(path: Path) -> HouseholdFile:
    """Return the checked households of a CSV or GeoJSON file, positions in WGS-84."""
    if not path.exists():
        raise InvalidInput(f"no such file: {path}")
    f = read_table(path).rename(columns=ALIASES).reset_index(drop=True)
    missing = [c for c in ("code", "lon", "lat", "members") if c not in f.columns]
    if missing:
        raise InvalidInput(f"{path.name} lacks columns {missing}; columns found: {list(f.columns)}")
    first = 2 if path.suffix.lower() == ".csv" else 1
    err = np.full(len(f), None, dtype=object)

    def flag(mask: object, msg: str) -> None:
        hit = np.asarray(mask, dtype=bool) & pd.isna(err)
        err[hit] = msg

    def col(name: str) -> pd.Series:
        return f[name] if name in f else pd.Series(None, index=f.index, dtype=object)

    lon = pd.to_numeric(f["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(f["lat"], errors="coerce").to_numpy(dtype=float)
    flag(~np.isfinite(lon) | ~np.isfinite(lat), "lon and lat must be finite numbers")
    flag((np.abs(lat) > 90) | (np.abs(lon) > 180), "lat within -90..90 and lon within -180..180")
    crs = col("crs").fillna("wgs84").astype(str).str.lower()
    flag(~crs.isin([c.value for c in SourceCRS]), "crs must be wgs84, cgcs2000, gcj02 or bd09")
    code = col("code").astype("string").str.strip()
    flag(code.isna() | (code == ""), "code is required")
    flag(code.duplicated(keep=False).fillna(False), "code appears more than once in the file")
    members = pd.to_numeric(col("members"), errors="coerce")
    over_60 = pd.to_numeric(col("over_60"), errors="coerce").fillna(0)
    age = pd.to_numeric(col("oldest_age"), errors="coerce")
    flag(~members.between(1, 50) | (members % 1 != 0), "members must be a whole number 1-50")
    flag(~over_60.between(0, 50) | (over_60 > members), "over_60 must be 0..members")
    flag(col("oldest_age").notna() & ~age.between(0, 130), "oldest_age must be 0-130")
    alone, bad_alone = _flags(col("living_alone"))
    mobility, bad_mobility = _flags(col("mobility_needs"))
    flag(bad_alone | bad_mobility, "living_alone and mobility_needs take 1/0, true/false, 是/否")
    flag(alone & (members != 1), "living_alone needs members = 1")
    for name, limit in TEXT_LIMITS.items():
        values = col(name).astype("string")
        too_long = (values.str.len() > limit).fillna(False) | values.str.contains(
            "\x00", regex=False
        ).fillna(False)
        flag(too_long, f"{name} is longer than {limit} characters or holds NUL")
    keep = pd.isna(err)
    errors = [(first + int(i), str(err[i])) for i in np.flatnonzero(~keep)]
    ok = np.flatnonzero(keep)
    out_lon, out_lat = lon[ok].copy(), lat[ok].copy()
    for c in crs.iloc[ok].unique():
        m = (crs.iloc[ok] == c).to_numpy()
        out_lon[m], out_lat[m] = to_wgs84(lon[ok][m], lat[ok][m], c)
    codes = code.iloc[ok].astype(str).to_numpy()
    rows = pd.DataFrame(
        {
            # The id follows the code: importing the register again updates, never duplicates.
            "id": [str(uuid.UUID(bytes=hashlib.sha256(c.encode()).digest()[:16])) for c in codes],
            "code": codes,
            **{
                name: col(name).iloc[ok].to_numpy()
                for name in ("head_name", "phone", "address", "contact_worker")
            },
            "members": members.iloc[ok].astype(int).to_numpy(),
            "over_60": over_60.iloc[ok].astype(int).to_numpy(),
            "oldest_age": age.iloc[ok].astype("Int64").to_numpy(),
            "living_alone": alone[ok],
            "mobility_needs": mobility[ok],
            "lon": np.round(out_lon, 7),
            "lat": np.round(out_lat, 7),
        }
    )
    return HouseholdFile(rows, errors)
