"""The compute budget (issue 13, item 2): bounds at the door, a time budget behind them.

Before: `gistar?weights=distance&distance_m=50000&permutations=9999` computed in the request
until the supervisor killed the server process, with every request in flight on it.
"""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from geo.analytics import stats_process
from geo.analytics.weights import MAX_MEAN_NEIGHBOURS
from geo.settings import ServerSettings
from tests.factories import login_as

GISTAR = "/api/v1/hotspots/gistar"


@pytest.fixture
def tight_budget(demo_database):
    """A client on the demo whose requests may compute for 0.3 s at most."""
    settings, engine, _ = demo_database
    tight = settings.model_copy(update={"server": ServerSettings(request_budget_s=0.3)})
    stats_process.submit(os.getpid)()  # a worker up (its start is not what is measured)
    try:
        with TestClient(create_app(tight, engine=engine)) as c:
            c.headers["Authorization"] = f"Bearer {login_as(engine, 'planner')}"
            yield c
    finally:
        stats_process.set_budget(ServerSettings().request_budget_s)


def test_a_band_linking_too_many_grids_is_refused_with_the_largest_allowed(demo_client):
    r = demo_client.get(GISTAR, params={"weights": "distance", "distance_m": 50_000})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert f"at most {MAX_MEAN_NEIGHBOURS}" in detail and "use a band of at most" in detail
    largest = int(detail.rsplit("at most ", 1)[1].split(" m")[0])
    # The band it names is accepted, and computes.
    ok = demo_client.get(
        GISTAR, params={"weights": "distance", "distance_m": largest, "permutations": 99}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["method"]["distance_m"] == largest


@pytest.mark.parametrize(
    "params",
    [
        {"permutations": 10_000},
        {"permutations": 98},
        {"weights": "distance", "distance_m": 50_001},
    ],
)
def test_parameters_past_their_documented_bounds_answer_422(demo_client, params):
    assert demo_client.get(GISTAR, params=params).status_code == 422


def test_a_computation_past_the_budget_answers_503_and_the_server_goes_on(tight_budget):
    before = stats_process.submit(os.getpid)()
    r = tight_budget.get(
        GISTAR,
        params={"weights": "distance", "distance_m": 4000, "permutations": 9999, "seed": 7},
    )
    assert r.status_code == 503
    assert "budget of 0.3 s" in r.json()["detail"] and "narrow" in r.json()["detail"]
    # The statistics process was stopped and replaced (its start takes seconds, more than
    # this budget); this server process answers on.
    stats_process.set_budget(30)
    after = stats_process.submit(os.getpid)()
    assert after not in (before, os.getpid())
    assert tight_budget.get("/health").status_code == 200
    assert tight_budget.get("/api/v1/hotspots/grids").status_code == 200


def test_emerging_hot_spots_run_in_the_statistics_process(demo_client, monkeypatch):
    ran_in: list[int] = []
    real = stats_process.submit

    def spy(fn, *args):
        ran_in.append(fn.__name__)
        return real(fn, *args)

    monkeypatch.setattr(stats_process, "submit", spy)
    r = demo_client.get(
        "/api/v1/hotspots/emerging",
        params={
            "since": "2024-01-01T00:00:00+08:00",
            "until": "2024-03-01T00:00:00+08:00",
            "step": "week",
            "theme": "fire",
        },
    )
    assert r.status_code == 200, r.text
    assert "patterns" in ran_in
