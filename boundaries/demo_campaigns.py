"""The demo's campaigns as objects: run to their dates on the demo's clock (today, in
Asia/Shanghai), with their target lists and seeded visits that echo the published figures.

- 创安二号 (elderly): the households of the register with someone over 60 living alone are its
  targets; most of them were visited at home.
- 创安四号 (flood): every one of its 3,139 hazards was found on a visit (the visit at the
  report's place and time), among 12,000 visits in its 5 days; 365 of them relocated a
  household, 724 people in all (its checklist tallies relocations).
- 创安六号 (fire): 1,500 small workshops (小作坊) in the urban districts are its targets; 92 %
  of them were visited.

Ids derive from the seed: loading again stores nothing twice. Visits are stored set-based,
their grids assigned by the report rules, as a bulk import would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from boundaries.daqing import CAMPAIGNS, URBAN
from geo.campaigns import bulk, targets
from geo.campaigns.lifecycle import CampaignStatus, status_on
from geo.campaigns.store import get_row
from geo.grids.queries import centres

SEED = 20230725  # 创安四号's start date
ZONE = ZoneInfo("Asia/Shanghai")
FLOOD_VISITS = 12_000
RELOCATED_HOUSEHOLDS, RELOCATED_PEOPLE = 365, 724  # 创安四号's published figures
FLOOD_PLACES = ("230603", "230622", "230624")  # wetland and the Nen River: where people moved
WORKSHOPS, WORKSHOPS_VISITED = 1500, 0.92
ELDERLY_VISITED = 0.85


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZONE)


def campaign_rows(today: date) -> list[dict]:
    """Return the demo campaigns with the status their dates give them on `today`, launched
    at the start of their first day and closed at the end of their last."""
    rows = []
    for c in CAMPAIGNS:
        status = status_on(c["starts_on"], c["ends_on"], today)
        rows.append(
            {
                **c,
                "status": str(status),
                "launched_at": None
                if status == CampaignStatus.DRAFT
                else _midnight(c["starts_on"]),
                "closed_at": _midnight(c["ends_on"] + timedelta(days=1))
                if status == CampaignStatus.CLOSED
                else None,
            }
        )
    return rows


def today() -> date:
    """Return the demo's clock: today in Asia/Shanghai."""
    return datetime.now(ZONE).date()


def _workshops(conn: Connection, rng: np.random.Generator) -> list[tuple]:
    """Return the demo workshops: points near the centres of urban grids, weighted by people."""
    grid = pd.DataFrame(centres(conn))
    grid = grid[grid["district_code"].isin(URBAN)].reset_index(drop=True)
    pop = grid["population"].fillna(0).to_numpy(dtype=float) + 1
    pick = rng.choice(len(grid), WORKSHOPS, p=pop / pop.sum())
    lon = grid["lon"].to_numpy()[pick] + rng.normal(0, 0.0004, WORKSHOPS)
    lat = grid["lat"].to_numpy()[pick] + rng.normal(0, 0.0003, WORKSHOPS)
    trades = ("食品加工", "家具", "汽修", "服装", "印刷", "五金")
    return [
        (float(lon[i]), float(lat[i]), f"XZF{i + 1:05d}", f"小作坊{i + 1:05d}",
         {"trade": trades[i % len(trades)]})
        for i in range(WORKSHOPS)
    ]  # fmt: skip


def _ids(kind: str, n: int) -> list[uuid.UUID]:
    return [uuid.uuid5(uuid.NAMESPACE_URL, f"riskgrid:demo:{SEED}:{kind}:{i}") for i in range(n)]


def _flood_visits(conn: Connection, rng: np.random.Generator) -> pd.DataFrame:
    """Return 创安四号's visits: one at each of its reports, the rest over its grids and days."""
    found = pd.DataFrame(
        conn.execute(
            text(
                "SELECT id AS report_id, ST_X(geom) AS lon, ST_Y(geom) AS lat, reported_at "
                "FROM reports WHERE campaign_code = 'CA04' ORDER BY id"
            )
        ).mappings().all()
    )  # fmt: skip
    grid = pd.DataFrame(centres(conn))
    n = FLOOD_VISITS - len(found)
    pop = grid["population"].fillna(0).to_numpy(dtype=float) + 1
    pick = rng.choice(len(grid), n, p=pop / pop.sum())
    c = next(x for x in CAMPAIGNS if x["code"] == "CA04")
    start = _midnight(c["starts_on"])
    span_s = ((c["ends_on"] - c["starts_on"]).days + 1) * 86400
    quiet = pd.DataFrame(
        {
            "report_id": None,
            "lon": grid["lon"].to_numpy()[pick] + rng.normal(0, 0.002, n),
            "lat": grid["lat"].to_numpy()[pick] + rng.normal(0, 0.0015, n),
            "reported_at": [start + timedelta(seconds=float(s)) for s in rng.uniform(0, span_s, n)],
            "district": grid["district_code"].to_numpy()[pick],
        }
    )
    found["district"] = None
    v = pd.concat([found, quiet], ignore_index=True)
    v["id"] = _ids("CA04", len(v))
    v["visited_at"] = pd.to_datetime(v["reported_at"], utc=True)
    people = np.zeros(len(v), dtype=int)
    homes = np.zeros(len(v), dtype=int)
    movers = rng.choice(np.flatnonzero(v["district"].isin(FLOOD_PLACES)), RELOCATED_HOUSEHOLDS,
                        replace=False)  # fmt: skip
    extra = rng.multinomial(
        RELOCATED_PEOPLE - RELOCATED_HOUSEHOLDS, [1 / len(movers)] * len(movers)
    )
    people[movers], homes[movers] = 1 + extra, 1
    hazard = v["report_id"].notna().to_numpy()
    v["answers"] = [
        json.dumps({"low_lying": bool(h or m), "dilapidated": bool(rng.random() < 0.05),
                    "drainage_ok": not h, "to_relocate": int(p), "households_moved": int(m)})
        for h, p, m in zip(hazard, people, homes, strict=True)
    ]  # fmt: skip
    v["leaflets"] = rng.poisson(1.2, len(v))
    v["stickers"] = 0
    v["campaign"] = "CA04"
    v["target_id"] = None
    return v


def _target_visits(
    conn: Connection, code: str, share: float, answers: Callable, rng
) -> pd.DataFrame:
    """Return visits to `share` of the campaign's targets, at them, during the campaign."""
    rows = conn.execute(
        text(
            """
            SELECT t.id AS target_id, ST_X(COALESCE(t.geom, h.geom)) AS lon,
                   ST_Y(COALESCE(t.geom, h.geom)) AS lat
            FROM campaign_targets t LEFT JOIN households h ON h.id = t.household_id
            WHERE t.campaign_code = :c ORDER BY t.ref
            """
        ),
        {"c": code},
    ).mappings().all()  # fmt: skip
    v = pd.DataFrame(rows, columns=["target_id", "lon", "lat"])
    v = v[rng.random(len(v)) < share].reset_index(drop=True)
    c = next(x for x in CAMPAIGNS if x["code"] == code)
    span_s = ((c["ends_on"] - c["starts_on"]).days + 1) * 86400
    start = _midnight(c["starts_on"]) + timedelta(hours=8)
    # Daytime visits: from 08:00 local on a day of the campaign, within ten hours.
    days = rng.integers(0, span_s // 86400, len(v))
    seconds = rng.uniform(0, 36_000, len(v))
    v["visited_at"] = [start + timedelta(days=int(d), seconds=float(s))
                       for d, s in zip(days, seconds, strict=True)]  # fmt: skip
    v["id"] = _ids(code, len(v))
    v["answers"] = [json.dumps(answers(rng)) for _ in range(len(v))]
    v["leaflets"] = rng.poisson(1.0, len(v))
    v["stickers"] = rng.poisson(0.5, len(v))
    v["campaign"] = code
    v["report_id"] = None
    return v


def _workshop_answers(rng: np.random.Generator) -> dict:
    return {"exit_clear": bool(rng.random() < 0.85), "extinguishers": int(rng.integers(0, 4)),
            "wiring_ok": bool(rng.random() < 0.8), "flammables": bool(rng.random() < 0.15),
            "people_live_in": bool(rng.random() < 0.1)}  # fmt: skip


def _elderly_answers(rng: np.random.Generator) -> dict:
    return {"seen_in_person": bool(rng.random() < 0.93), "needs_care": bool(rng.random() < 0.2),
            "home_hazard": bool(rng.random() < 0.12)}  # fmt: skip


def load_demo_campaign_work(engine: Engine, snap_m: float, echo: Callable[[str], None]) -> dict:
    """Take 创安二号's household targets, import 创安六号's workshops, store the visits; return
    counts (nothing new on a second run)."""
    rng = np.random.default_rng(SEED)
    with engine.begin() as conn:
        households = targets.take_households(conn, get_row(conn, "CA02"))
        shops = targets.store_points(
            conn, get_row(conn, "CA06"), _workshops(conn, rng), snap_m, _ids("XZF", WORKSHOPS)
        )
        visits = pd.concat(
            [
                _flood_visits(conn, rng),
                _target_visits(conn, "CA02", ELDERLY_VISITED, _elderly_answers, rng),
                _target_visits(conn, "CA06", WORKSHOPS_VISITED, _workshop_answers, rng),
            ],
            ignore_index=True,
        )
        added = bulk.store_visits(conn, visits, snap_m)
    echo(
        f"campaigns: {households} household targets taken, {shops['added']} workshops added, "
        f"{added} visits added ({len(visits) - added} already stored)"
    )
    return {"household_targets": households, "workshops": shops["added"], "visits": added}
