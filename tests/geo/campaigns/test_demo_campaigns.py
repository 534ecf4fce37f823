"""The demo's ten campaigns as objects, run to their dates, with the targets and visits that
echo the published figures (创安四号: 3,139 hazards, 365 households and 724 people relocated)."""

from __future__ import annotations

import orjson
from sqlalchemy import text

from boundaries.demo_campaigns import RELOCATED_HOUSEHOLDS, RELOCATED_PEOPLE, WORKSHOPS

DEMO = {f"CA{i:02d}" for i in range(1, 11)}


def test_the_demo_campaigns_have_checklists_partners_and_statuses(demo_client):
    listed = [c for c in demo_client.get("/api/v1/campaigns").json() if c["code"] in DEMO]
    assert len(listed) == 10
    by = {c["code"]: c for c in listed}
    assert all(c["status"] == "closed" and c["checklist"] for c in listed)  # all before today
    assert by["CA01"]["departments"] == ["公安局", "应急管理局", "城市管理综合执法局"]
    assert {i["code"]: i.get("tally") for i in by["CA04"]["checklist"]}["to_relocate"] == (
        "relocations"
    )
    assert by["CA02"]["targets"] == {"register": "households", "filter": {"living_alone_over": 60}}
    assert by["CA06"]["targets"] == {"register": "workshops"}
    assert len(by["CA10"]["districts"]) == 9


def test_the_flood_campaign_progress_echoes_its_bulletin(demo_client, demo_engine):
    p = demo_client.get("/api/v1/campaigns/CA04/progress").json()
    assert p["totals"]["hazards_found"] == 3139 and p["totals"]["visits"] == 12_000
    assert p["totals"]["relocations"] == RELOCATED_PEOPLE
    assert p["totals"]["relocated_households"] == RELOCATED_HOUSEHOLDS
    with demo_engine.connect() as conn:
        linked = conn.execute(
            text(
                "SELECT count(*) FROM reports r JOIN visits v ON v.id = r.visit_id "
                "WHERE r.campaign_code = 'CA04' AND v.grid_code IS NOT DISTINCT FROM r.grid_code"
            )
        ).scalar()
    assert linked == 3139  # each found on a visit in its own grid


def test_the_workshop_campaign_covers_most_of_its_targets(demo_client):
    fc = orjson.loads(demo_client.get("/api/v1/campaigns/CA06/coverage").content)
    totals = fc["totals"]
    assert totals["targets"] == WORKSHOPS and 0.88 < totals["targets_visited"] / WORKSHOPS < 0.96
    assert totals["grids"] == len(fc["features"]) == 4964
    assert sum(f["properties"]["targets"] for f in fc["features"]) == WORKSHOPS
