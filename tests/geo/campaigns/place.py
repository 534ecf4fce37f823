"""A small place for the campaign tests: three districts side by side (A, B, C), two grids in
A and B and one in C, households in A and B, and a campaign body to start from."""

from __future__ import annotations

import uuid
from copy import deepcopy
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from boundaries.importer import ImportOptions, import_file
from geo.risk import households
from geo.settings import ImportSettings
from tests.conftest import TABLES
from tests.factories import grid_frame, login_as, point_m, square_m, truncate, write

D_A, D_B, D_C = "230602", "230603", "230604"
A1, A2 = "230602001001001", "230602001001002"
B1, B2 = "230603001001001", "230603001001002"
C1 = "230604001001001"
CENTRE = {A1: (250, 250), A2: (750, 250), B1: (2250, 250), B2: (2750, 250), C1: (6000, 250)}
# Tables a test of this place empties (the place itself stays for the module).
PER_TEST = (
    "visit_counts",
    "visits",
    "campaign_targets",
    "report_photos",
    "notifications",
    "outbox",
    "report_events",
    "reports",
    "campaigns",
    "audit_log",
    "auth_tokens",
    "user_grids",
    "user_districts",
    "users",
)

CHECKLIST = [
    {"code": "low_lying", "label": "低洼易涝", "answer": "yes_no", "required": True},
    {"code": "to_relocate", "label": "需转移人数", "answer": "number", "tally": "relocations"},
    {
        "code": "households_moved",
        "label": "转移户数",
        "answer": "number",
        "tally": "relocated_households",
    },
    {"code": "note", "label": "情况说明", "answer": "text"},
]


def campaign_body(**over) -> dict:
    """Return a valid campaign body (flood, districts A and B), with `over` applied."""
    body = {
        "code": "CA11",
        "name": "创安十一号",
        "theme": "flood",
        "categories": ["waterlogging", "relocation_needed"],
        "starts_on": "2025-07-20",
        "ends_on": "2025-07-24",
        "districts": [D_A, D_B],
        "departments": ["水务局", "应急管理局"],
        "checklist": deepcopy(CHECKLIST),
        "description": "汛期排查",
    }
    body.update(over)
    return body


def at(code: str, dx: float = 0.0, dy: float = 0.0) -> tuple[float, float]:
    """Return the (lon, lat) of a point near the centre of grid `code`."""
    x, y = CENTRE[code]
    return point_m(x + dx, y + dy)


def build(engine: Engine, tmp: Path) -> None:
    """Import the districts, grids and households of the place."""
    districts = [
        {"code": code, "name": name, "level": "district", "geometry": square_m(x0, -2000, 3500)}
        for code, name, x0 in (
            (D_A, "萨尔图区", -2000),
            (D_B, "龙凤区", 1500),
            (D_C, "让胡路区", 5000),
        )
    ]
    import_file(
        engine,
        write(grid_frame(districts), tmp / "d.geojson"),
        ImportOptions(layer="areas"),
        ImportSettings(),
    )
    grids = [
        {
            "code": code,
            "name": f"网格{code[5]}{code[-1]}",
            "kind": "comprehensive",
            "community_code": code[:12],
            "geometry": square_m(x - 250, y - 250, 500),
        }
        for code, (x, y) in CENTRE.items()
    ]
    import_file(
        engine, write(grid_frame(grids), tmp / "g.geojson"), ImportOptions(), ImportSettings()
    )
    with engine.begin() as conn:
        households.load(conn, household_frame(), 150.0)


# (grid, living alone, oldest age, members) of the households: the filter
# living_alone_over=60 takes those alone and older than 60: 3 in A1, 1 in A2, 2 in B1.
HOUSEHOLDS = [
    (A1, True, 81, 1),
    (A1, True, 66, 1),
    (A1, True, 72, 1),
    (A1, True, 58, 1),  # alone, not over 60
    (A1, False, 90, 3),  # over 60, not alone
    (A2, True, 77, 1),
    (B1, True, 61, 1),
    (B1, True, 85, 1),
    (B2, False, 40, 4),
    (C1, True, 88, 1),  # outside the campaign's districts
]


def household_frame() -> pd.DataFrame:
    """Return the place's households as the register loader takes them."""
    rows = []
    for i, (grid, alone, oldest, members) in enumerate(HOUSEHOLDS):
        lon, lat = at(grid, dx=-150 + 30 * (i % 10), dy=60)
        rows.append(
            {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, f"riskgrid:test:household:{i}"),
                "code": f"HH{i:03d}",
                "head_name": f"住户{i}",
                "phone": f"1390000{i:04d}",
                "address": f"测试路{i}号",
                "members": members,
                "over_60": 1 if oldest > 60 else 0,
                "oldest_age": oldest,
                "living_alone": alone,
                "mobility_needs": False,
                "contact_worker": None,
                "lon": lon,
                "lat": lat,
            }
        )
    return pd.DataFrame(rows)


def prepared(engine: Engine, tmp: Path) -> Engine:
    """Empty the database and build the place in it (a module's fixture)."""
    with engine.begin() as conn:
        truncate(conn, TABLES)
    build(engine, tmp)
    return engine


def emptied(engine: Engine) -> Engine:
    """Empty what a test of the place leaves (the place itself stays)."""
    with engine.begin() as conn:
        truncate(conn, PER_TEST)
    return engine


def as_(engine: Engine, role: str, **scope) -> dict[str, str]:
    """Return the Authorization header of a new user of `role` (grids=, districts=, ...)."""
    return {"Authorization": f"Bearer {login_as(engine, role, **scope)}"}
