"""Seeded synthetic reports for the Daqing demo, echoing the 创安 campaigns' published figures.

- 创安四号 (flood): 3,139 hazards in its 5 days; 创安十号 (road safety): 3,247 hazards.
- 21,782 hazards across the campaigns (every theme but disputes).
- 创安五号 (disputes): 3,211 disputes, 3,200 resolved, over 90% at street level or below.

Reports cluster around a few hotspots per theme (so hotspot analysis has something real to
find) over a background that follows population. A small share stays open and past its
deadline. Ids are derived from the seed, so loading again stores nothing twice. Everything
goes through the same bulk path as `riskgrid reports import`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from boundaries.daqing import CAMPAIGNS
from geo.grids.queries import centres
from geo.reports import taxonomy
from geo.reports.bulk import BulkResult, load
from geo.settings import ReportSettings

SEED = 20240822  # 创安十号's start date

# Reports per campaign: 四号, 五号 and 十号 are the published figures; the rest make up the
# 21,782 hazards.
COUNTS: dict[str, int] = {
    "CA01": 1800,
    "CA02": 2900,
    "CA03": 2100,
    "CA04": 3139,
    "CA05": 3211,
    "CA06": 2700,
    "CA07": 1600,
    "CA08": 2296,
    "CA09": 2000,
    "CA10": 3247,
}
DISPUTES_RESOLVED = 3200
HOTSPOT_SHARE = 0.55  # the rest is background
OPEN_SHARE = 0.02  # hazards still open (and overdue) at the end of the demo
LEVEL_WEIGHTS = {"grid": 0.34, "community": 0.31, "street": 0.27, "district": 0.06, "city": 0.02}

# Where each theme's hotspots sit: division → extra weight on top of population.
THEME_PLACES: dict[str, dict[str, float]] = {
    "flood": {"230603": 6.0, "230624": 5.0, "230622": 5.0, "230606": 2.0},  # wetland, Nen River
    "road_safety": {"230621": 3.0, "230606": 3.0, "230604": 2.0, "230602": 2.0},
    "fire": {"230602": 3.0, "230604": 3.0, "230603": 2.0},
    "gas": {"230602": 3.0, "230604": 2.0, "230605": 2.0},
    "elderly": {},
    "dispute": {"230602": 2.0, "230603": 2.0, "230604": 2.0},
    "stability": {"230602": 2.0, "230604": 1.5},
}


def _jitter(
    rng: np.random.Generator, lon: np.ndarray, lat: np.ndarray, sigma_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    dx = rng.normal(0.0, 1.0, len(lon)) * sigma_m
    dy = rng.normal(0.0, 1.0, len(lat)) * sigma_m
    return lon + dx / (111_320.0 * np.cos(np.radians(lat))), lat + dy / 110_574.0


def generate(engine: Engine, seed: int = SEED) -> pd.DataFrame:
    """Return the demo reports as rows for the bulk loader (ids, positions, timelines)."""
    rng = np.random.default_rng(seed)
    with engine.connect() as conn:
        grid = pd.DataFrame(centres(conn))
    pop = grid["population"].fillna(0).to_numpy(dtype=float)
    size_m = np.sqrt(grid["area_m2"].to_numpy(dtype=float))
    frames = []
    for c in CAMPAIGNS:
        code, theme = c["code"], c["theme"]
        n = COUNTS[code]
        boost = grid["district_code"].map(THEME_PLACES[theme]).fillna(1.0).to_numpy()
        weight = pop * boost
        weight = weight / weight.sum()
        # Hotspots: a few grids per theme, reports spread a few hundred metres around them.
        k = int(rng.integers(6, 12))
        hot = rng.choice(len(grid), size=k, replace=False, p=weight)
        n_hot = int(n * HOTSPOT_SHARE)
        which = hot[rng.integers(0, k, n_hot)]
        back = rng.choice(len(grid), size=n - n_hot, p=pop / pop.sum())
        idx = np.concatenate([which, back])
        sigma = np.concatenate(
            [
                np.clip(size_m[which] * 0.8, 150, 1200),  # clusters
                size_m[back] * 0.35,  # inside or near the chosen grid
            ]
        )
        lon, lat = _jitter(rng, grid["lon"].to_numpy()[idx], grid["lat"].to_numpy()[idx], sigma)
        cats = [cat.code for cat in taxonomy.THEME_BY_CODE[theme].categories]
        start = datetime.combine(c["starts_on"], datetime.min.time(), tzinfo=UTC)
        span_s = ((c["ends_on"] - c["starts_on"]).days + 1) * 86400
        reported = [start + timedelta(seconds=float(s)) for s in rng.uniform(0, span_s, n)]
        frames.append(
            pd.DataFrame(
                {
                    "id": [
                        uuid.uuid5(uuid.NAMESPACE_URL, f"riskgrid:demo:{seed}:{code}:{i}")
                        for i in range(n)
                    ],
                    "lon": lon,
                    "lat": lat,
                    "theme": theme,
                    "category": rng.choice(cats, n, p=_category_weights(len(cats))),
                    "severity": rng.choice([1, 2, 3, 4], n, p=[0.2, 0.5, 0.22, 0.08]),
                    "campaign_code": code,
                    "reporter": [f"网格员{grid['code'].iat[i][-6:]}" for i in idx],
                    "accuracy_m": np.round(rng.gamma(2.0, 8.0, n), 1),
                    "reported_at": reported,
                }
            )
        )
    rows = pd.concat(frames, ignore_index=True)
    return _timelines(rows, rng)


def _category_weights(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** 0.6  # the first categories are the commonest
    return w / w.sum()


def _timelines(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Give each report its path through the loop: most verified, a few still open."""
    n = len(rows)
    hours = lambda lo, hi: pd.to_timedelta(rng.uniform(lo, hi, n), unit="h")  # noqa: E731
    at = pd.to_datetime(rows["reported_at"], utc=True)
    dispatched = at + hours(0.3, 6)
    started = dispatched + hours(1, 24)
    resolved = started + hours(2, 72)
    verified = resolved + hours(1, 48)
    status = np.full(n, "verified", dtype=object)
    disputes = (rows["theme"] == "dispute").to_numpy()
    hazards = ~disputes
    open_draw = rng.random(n)
    status[hazards & (open_draw < OPEN_SHARE)] = rng.choice(
        ["reported", "dispatched", "in_progress", "resolved"],
        int((hazards & (open_draw < OPEN_SHARE)).sum()),
    )
    rejected = hazards & (open_draw >= OPEN_SHARE) & (open_draw < OPEN_SHARE + 0.01)
    status[rejected] = "rejected"
    # Disputes: exactly 3,200 of 3,211 resolved; the others still in mediation.
    d_idx = np.flatnonzero(disputes)
    status[rng.choice(d_idx, len(d_idx) - DISPUTES_RESOLVED, replace=False)] = "in_progress"
    levels = rng.choice(list(LEVEL_WEIGHTS), n, p=list(LEVEL_WEIGHTS.values()))
    s = pd.Series(status)
    reached = {
        "dispatched_at": s.isin(["dispatched", "in_progress", "resolved", "verified"]),
        "started_at": s.isin(["in_progress", "resolved", "verified"]),
        "resolved_at": s.isin(["resolved", "verified"]),
        "verified_at": s.eq("verified"),
    }
    out = rows.copy()
    out["status"] = status
    for col, series in (
        ("dispatched_at", dispatched),
        ("started_at", started),
        ("resolved_at", resolved),
        ("verified_at", verified),
    ):
        out[col] = series.where(reached[col].to_numpy(), None)
    out["closed_at"] = (at + hours(1, 24)).where(s.eq("rejected").to_numpy(), None)
    out["resolution_level"] = np.where(reached["resolved_at"], levels, None)
    return out


def load_demo_reports(engine: Engine, rules: ReportSettings, seed: int = SEED) -> BulkResult:
    """Generate and bulk-load the demo reports; loading again stores nothing new."""
    rows = generate(engine, seed)
    with engine.begin() as conn:
        return load(conn, rows, rules)
