"""Overdue notices and escalation (issue 14, item 5): once per stage, to whose turn it is,
then to the district's dispatchers; a move starts the next stage afresh."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from geo.reports.escalation import Sweeper, sweep
from geo.settings import ReportSettings
from tests.api.test_reports import grids, report  # noqa: F401 - the grids fixture
from tests.factories import at_once, login_as

RULES = ReportSettings(escalate_after_h=24)


def _late(db, rid: str, hours: float) -> None:
    with db.begin() as conn:
        conn.execute(
            text("UPDATE reports SET due_at = now() - make_interval(hours => :h) WHERE id = :id"),
            {"h": hours, "id": rid},
        )


def _kinds(db, username: str) -> list[str]:
    with db.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT n.kind FROM notifications n JOIN users u ON u.id = n.user_id "
                    "WHERE u.username = :u ORDER BY n.id"
                ),
                {"u": username},
            ).scalars()
        )


def _sweep(db) -> dict:
    with db.begin() as conn:
        return sweep(conn, RULES)


def test_overdue_is_noticed_once_then_escalated_once_to_the_district(grids, settings):  # noqa: F811
    db = grids
    login_as(db, "dispatcher", "desk-city")
    login_as(db, "department", "gas-1", department="燃气公司")
    worker = login_as(db, "worker", "wgy")
    with TestClient(create_app(settings, engine=db)) as c:
        c.headers["Authorization"] = f"Bearer {worker}"
        waiting = c.post("/api/v1/reports", json=report()).json()["id"]
        c.headers["Authorization"] = f"Bearer {login_as(db, 'dispatcher', 'desk-2')}"
        held = c.post("/api/v1/reports", json=report(x=300)).json()["id"]
        c.post(f"/api/v1/reports/{held}/transitions", json={"to": "accepted"})
        c.post(f"/api/v1/reports/{held}/transitions", json={"to": "dispatched"})
    _late(db, waiting, 1)  # still to be accepted: the desk's turn
    _late(db, held, 1)  # with the gas company
    assert _sweep(db) == {"noticed": 2, "escalated": 0}
    assert _sweep(db) == {"noticed": 0, "escalated": 0}  # once per stage
    assert _kinds(db, "desk-city").count("overdue") == 1  # the waiting one
    assert _kinds(db, "gas-1") == ["dispatched", "overdue"]
    _late(db, held, 25)
    assert _sweep(db) == {"noticed": 0, "escalated": 1}
    assert _sweep(db) == {"noticed": 0, "escalated": 0}
    assert _kinds(db, "desk-city")[-1] == "escalated"
    with db.connect() as conn:
        stamped = conn.execute(
            text("SELECT escalated_at IS NOT NULL FROM reports WHERE id = :id"), {"id": held}
        ).scalar_one()
        kinds = list(conn.execute(text("SELECT kind FROM outbox ORDER BY id")).scalars())
    assert stamped and kinds.count("overdue") == 2 and kinds.count("escalated") == 1


def test_two_sweepers_at_once_notice_each_report_once(grids, settings):  # noqa: F811
    db = grids
    login_as(db, "dispatcher", "desk-city")
    with TestClient(create_app(settings, engine=db)) as c:
        c.headers["Authorization"] = f"Bearer {login_as(db, 'worker', 'wgy')}"
        ids = [c.post("/api/v1/reports", json=report(x=60 + 20 * i)).json()["id"] for i in range(8)]
    for rid in ids:
        _late(db, rid, 2)
    results = at_once(lambda _: _sweep(db), range(2))
    assert sum(r["noticed"] for r in results) == 8
    assert _kinds(db, "desk-city").count("overdue") == 8


def test_the_sweeper_thread_runs_and_stops(grids):  # noqa: F811
    db = grids
    login_as(db, "dispatcher", "desk-city")
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO reports (id, theme, category, severity, status, geom, source_crs, "
                "assignment_method, reported_at, due_at, district_code) VALUES "
                "(gen_random_uuid(), 'gas', 'gas_leak', 2, 'reported', "
                "ST_SetSRID(ST_MakePoint(125, 46.6), 4326), 'wgs84', 'unassigned', now(), "
                "now() - interval '1 hour', '230602')"
            )
        )
    sweeper = Sweeper(db, RULES.model_copy(update={"overdue_check_s": 0.05})).start()
    try:
        for _ in range(100):
            if _kinds(db, "desk-city"):
                break
            threading.Event().wait(0.05)
    finally:
        sweeper.stop()
    assert _kinds(db, "desk-city") == ["overdue"]


def test_riskgrid_sweep_runs_every_sweep_once_from_the_command_line(grids, settings, cli_env):  # noqa: F811
    import json

    from typer.testing import CliRunner

    from riskgrid.cli import app

    db = grids
    login_as(db, "dispatcher", "desk-city")
    worker = login_as(db, "worker", "wgy")
    with TestClient(create_app(settings, engine=db)) as c:
        c.headers["Authorization"] = f"Bearer {worker}"
        rid = c.post("/api/v1/reports", json=report()).json()["id"]
    _late(db, rid, 30)  # past the second limit too
    runner = CliRunner()
    first = runner.invoke(app, ["sweep", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {
        "overdue": {"noticed": 1, "escalated": 1},
        "letter reply": {"letters_overdue": 0},
    }
    again = runner.invoke(app, ["sweep"])
    assert again.exit_code == 0
    assert "overdue: 0 noticed, 0 escalated" in again.stdout
    assert _kinds(db, "desk-city") == ["overdue", "escalated"]
