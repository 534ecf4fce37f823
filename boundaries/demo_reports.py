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
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from boundaries.daqing import CAMPAIGNS
from geo.grids.queries import centres
from geo.reports import taxonomy
from geo.reports.bulk import TIMELINE, BulkResult, load
from geo.settings import ReportSettings

ZONE = ZoneInfo("Asia/Shanghai")

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
OPEN_STATES = ("reported", "accepted", "dispatched", "in_progress", "returned", "resolved")
RETURN_SHARE = 0.04  # dispatched to the wrong department first (回退)
REWORK_SHARE = 0.03  # resolved, failed the check, worked again (返工)
SUPERVISED_SHARE = 0.3  # of the open (and overdue) reports: under 督办
TIMELINE_COLUMNS = tuple(col for col, _, _ in TIMELINE)
REJECT_REASONS = ("不属于受理范围 / outside our remit", "信息不全无法核实 / too little to verify")
RETURN_REASONS = (
    "不属于本部门职责 / not this department's remit",
    "权属为其他单位 / owned by another body",
    "应由属地街道处置 / for the street office",
)
REWORK_REASONS = (
    "现场复查仍有隐患 / hazard still there on re-check",
    "整改不彻底 / only partly fixed",
    "照片与现场不符 / photo does not match the site",
)
SUPERVISION_NOTES = (
    "超期未办结，请加快处置 / overdue: speed up",
    "群众反映强烈，挂牌督办 / many complaints: supervised",
)
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
        # A campaign's days are Daqing's: from local midnight of its first to the end of its last.
        start = datetime.combine(c["starts_on"], datetime.min.time(), tzinfo=ZONE)
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
    """Give each report its path through the loop: most verified, a few still open, some
    returned and re-dispatched, some sent back as rework, some open ones under 督办."""
    n = len(rows)
    status = _statuses(rows, rng)
    s = pd.Series(status)
    dispatched_ever = ~s.isin(["reported", "accepted", "rejected"]).to_numpy()
    resolved_ever = s.isin(["resolved", "verified"]).to_numpy()
    # 回退: a share of dispatched reports went to the wrong department first; the `returned`
    # ones are still waiting to be re-dispatched.
    returned = (dispatched_ever & (rng.random(n) < RETURN_SHARE)) | (status == "returned")
    # 返工: a share of resolved hazards failed the check once and were worked again.
    hazard = (rows["theme"] != "dispute").to_numpy()
    reworked = resolved_ever & hazard & (rng.random(n) < REWORK_SHARE)

    hours = lambda lo, hi: pd.to_timedelta(rng.uniform(lo, hi, n), unit="h")  # noqa: E731
    at = pd.to_datetime(rows["reported_at"], utc=True)
    t: dict[str, pd.Series] = {"accepted_at": at + hours(0.1, 2)}
    t["dispatched_at"] = t["accepted_at"] + hours(0.2, 4)
    t["returned_at"] = t["dispatched_at"] + hours(1, 8)
    t["redispatched_at"] = t["returned_at"] + hours(0.5, 6)
    t["started_at"] = t["redispatched_at"].where(returned, t["dispatched_at"]) + hours(1, 24)
    t["resolved_at"] = t["started_at"] + hours(2, 72)
    t["reworked_at"] = t["resolved_at"] + hours(2, 24)
    t["reresolved_at"] = t["reworked_at"] + hours(4, 48)
    t["verified_at"] = t["reresolved_at"].where(reworked, t["resolved_at"]) + hours(1, 48)
    reached = {
        "accepted_at": ~s.isin(["reported", "rejected"]).to_numpy(),
        "dispatched_at": dispatched_ever,
        "returned_at": returned,
        "redispatched_at": returned & (status != "returned"),
        "started_at": s.isin(["in_progress", "resolved", "verified"]).to_numpy(),
        "resolved_at": resolved_ever,
        "reworked_at": reworked,
        "reresolved_at": reworked,
        "verified_at": status == "verified",
    }
    out = rows.copy()
    out["status"] = status
    for col, series in t.items():
        out[col] = series.where(reached[col], None)
    rejected = s.eq("rejected").to_numpy()
    out["closed_at"] = (at + hours(1, 24)).where(rejected, None)
    out["closed_reason"] = np.where(rejected, rng.choice(REJECT_REASONS, n), None)
    out["return_reason"] = np.where(returned, rng.choice(RETURN_REASONS, n), None)
    out["rework_reason"] = np.where(reworked, rng.choice(REWORK_REASONS, n), None)
    levels = rng.choice(list(LEVEL_WEIGHTS), n, p=list(LEVEL_WEIGHTS.values()))
    out["resolution_level"] = np.where(resolved_ever, levels, None)
    out["returned_by"] = _returned_by(out, returned, status, rng)
    return _supervision(out, rng)


def _statuses(rows: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Return each report's status now: most verified, OPEN_SHARE of hazards open."""
    n = len(rows)
    status = np.full(n, "verified", dtype=object)
    disputes = (rows["theme"] == "dispute").to_numpy()
    hazards = ~disputes
    draw = rng.random(n)
    open_ = hazards & (draw < OPEN_SHARE)
    status[open_] = rng.choice(OPEN_STATES, int(open_.sum()))
    status[hazards & (draw >= OPEN_SHARE) & (draw < OPEN_SHARE + 0.01)] = "rejected"
    # Disputes: exactly 3,200 of 3,211 resolved; the others still in mediation.
    d_idx = np.flatnonzero(disputes)
    status[rng.choice(d_idx, len(d_idx) - DISPUTES_RESOLVED, replace=False)] = "in_progress"
    return status


def _returned_by(
    out: pd.DataFrame, returned: np.ndarray, status: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Return the department that sent each returned report back (None for the others).

    A re-dispatched report went to another department first; a report still `returned`
    keeps the department that returned it, as the loop leaves it."""
    names = sorted(taxonomy.departments())
    pos = {d: i for i, d in enumerate(names)}
    own = np.array(
        [pos[taxonomy.department(t, c)] for t, c in zip(out["theme"], out["category"], strict=True)]
    )
    wrong = (own + rng.integers(1, len(names), len(out))) % len(names)
    first = np.where(status == "returned", own, wrong)
    return np.where(returned, np.array(names, dtype=object)[first], None)


def _supervision(out: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Put SUPERVISED_SHARE of the open reports under 督办, a day or three into their stage."""
    n = len(out)
    steps = [c for c in TIMELINE_COLUMNS if c in out]
    entered = pd.concat([pd.to_datetime(out[c], utc=True) for c in steps], axis=1).max(axis=1)
    entered = entered.where(entered.notna(), pd.to_datetime(out["reported_at"], utc=True))
    open_ = out["status"].isin(OPEN_STATES).to_numpy()
    chosen = open_ & (rng.random(n) < SUPERVISED_SHARE)
    when = entered + pd.to_timedelta(rng.uniform(24, 72, n), unit="h")
    out["supervised_at"] = when.where(chosen, None)
    out["supervision_note"] = np.where(chosen, rng.choice(SUPERVISION_NOTES, n), None)
    return out


def demo_ids(seed: int = SEED) -> list[uuid.UUID]:
    """Return the ids of the demo's reports (the same that `generate` gives them)."""
    return [
        uuid.uuid5(uuid.NAMESPACE_URL, f"riskgrid:demo:{seed}:{code}:{i}")
        for code, n in COUNTS.items()
        for i in range(n)
    ]


# Handlers, once the department users exist (the demo makes its users after its reports):
# every report taken up has one, half the dispatched ones were named one at dispatch, the
# returned ones have none. Picked by the report's id among its department's users, so the
# same users give the same handlers; a report that has one keeps it.
_HANDLERS = text(
    """
    WITH h AS (
      SELECT u.id, u.department,
             row_number() OVER (PARTITION BY u.department ORDER BY u.username) - 1 AS k,
             count(*) OVER (PARTITION BY u.department) AS n
      FROM users u WHERE u.role = 'department' AND u.disabled_at IS NULL
    ),
    pick AS (
      SELECT r.id, h.id AS handler FROM reports r
      JOIN h ON h.department = r.department
        AND h.k = get_byte(decode(md5(r.id::text), 'hex'), 0) % h.n
      WHERE r.id = ANY(CAST(:ids AS uuid[])) AND r.handler_id IS NULL
        AND (r.status IN ('in_progress', 'resolved', 'verified')
             OR (r.status = 'dispatched' AND get_byte(decode(md5(r.id::text), 'hex'), 1) % 2 = 0))
    ),
    upd AS (
      UPDATE reports r SET handler_id = pick.handler FROM pick WHERE pick.id = r.id
      RETURNING r.id, r.handler_id
    ),
    last AS (  -- the latest dispatch of each: where the handler was named
      SELECT DISTINCT ON (e.report_id) e.id, upd.handler_id FROM report_events e
      JOIN upd ON upd.id = e.report_id
      WHERE e.kind = 'transition' AND e.to_status = 'dispatched'
      ORDER BY e.report_id, e.at DESC
    ),
    ev AS (
      UPDATE report_events e SET handler_id = last.handler_id FROM last WHERE e.id = last.id
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM upd) AS handlers, (SELECT count(*) FROM ev) AS events
    """
)
_SUPERVISORS = text(
    """
    UPDATE reports SET supervised_by = :by
    WHERE id = ANY(CAST(:ids AS uuid[])) AND supervised_at IS NOT NULL AND supervised_by IS NULL
    """
)


def assign_handlers(conn: Connection, supervisor: str, seed: int = SEED) -> int:
    """Give the demo's worked reports handlers among their departments' users, and its 督办
    reports `supervisor` as who set it; return how many reports got a handler."""
    ids = [str(i) for i in demo_ids(seed)]
    row = conn.execute(_HANDLERS, {"ids": ids}).one()
    by = conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": supervisor}).scalar()
    if by is not None:
        conn.execute(_SUPERVISORS, {"ids": ids, "by": by})
    return int(row.handlers)


def load_demo_reports(engine: Engine, rules: ReportSettings, seed: int = SEED) -> BulkResult:
    """Generate and bulk-load the demo reports; loading again stores nothing new."""
    rows = generate(engine, seed)
    with engine.begin() as conn:
        return load(conn, rows, rules)
