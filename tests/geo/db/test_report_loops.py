"""`report_loops` (migration 0010): each report's loop in one row, kept by a trigger on the
transitions, checked against an independent reference computed in Python from the same
events, whatever the order and the batches they arrive in."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, exc, text

from geo.vocabulary import AT_OR_BELOW_STREET
from tests.geo.test_evaluation import Case, _areas_and_grids, _random_case, _users

COLUMNS = ("last_at", "accepted_at", "verified_at", "dispatched_at", "returned_at", "returns",
           "taken_at", "first_resolved_at", "resolved_at", "reworked_at", "first_checked_at",
           "last_checked_at", "checks", "first_checker", "low")  # fmt: skip


def expected(events: list[dict]) -> dict:
    """The loop row of one report's transitions, event by event."""

    def times(test) -> list:
        return sorted(e["at"] for e in events if test(e))

    def first(test):
        return (times(test) or [None])[0]

    def last(test):
        return (times(test) or [None])[-1]

    checks = sorted((e for e in events if e["from"] == "resolved"), key=lambda e: e["at"])
    resolutions = [e for e in events if e["to"] == "resolved"]
    return {
        "last_at": last(lambda e: True),
        "accepted_at": first(
            lambda e: e["to"] == "accepted" or (e["from"], e["to"]) == ("reported", "dispatched")
        ),
        "verified_at": first(lambda e: e["to"] == "verified"),
        "dispatched_at": last(lambda e: e["to"] == "dispatched"),
        "returned_at": last(lambda e: e["to"] == "returned"),
        "returns": sum(e["to"] == "returned" for e in events),
        "taken_at": last(lambda e: (e["from"], e["to"]) == ("dispatched", "in_progress")),
        "first_resolved_at": first(lambda e: e["to"] == "resolved"),
        "resolved_at": last(lambda e: e["to"] == "resolved"),
        "reworked_at": last(lambda e: (e["from"], e["to"]) == ("resolved", "in_progress")),
        "first_checked_at": checks[0]["at"] if checks else None,
        "last_checked_at": checks[-1]["at"] if checks else None,
        "checks": len(checks),
        "first_checker": checks[0]["actor_id"] if checks else None,
        "low": all(e["level"] in AT_OR_BELOW_STREET for e in resolutions) if resolutions else None,
    }


def _insert_reports(conn, cases: list[Case]) -> None:
    conn.execute(
        text(
            "INSERT INTO reports (id, theme, category, severity, status, geom, source_crs, "
            "assignment_method, reported_at, grid_code, district_code) VALUES (:id, :t, :c, 2, "
            "'reported', ST_SetSRID(ST_MakePoint(125.004, 46.604), 4326), 'wgs84', 'inside', "
            ":at, :g, :d)"
        ),
        [
            {
                "id": c.id,
                "t": c.theme,
                "c": c.category,
                "at": c.reported_at,
                "g": c.grid,
                "d": c.district,
            }
            for c in cases
        ],
    )


INSERT_EVENTS = text(
    "INSERT INTO report_events (report_id, kind, from_status, to_status, at, level, actor_id) "
    "SELECT r, 'transition', f, t, at, l, a FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
    "AS x(r uuid, f text, t text, at timestamptz, l text, a int)"
)


def _rows(events: list[tuple[uuid.UUID, dict]]) -> str:
    return json.dumps(
        [
            {
                "r": str(r),
                "f": e["from"],
                "t": e["to"],
                "at": e["at"].isoformat(),
                "l": e["level"],
                "a": e["actor_id"],
            }
            for r, e in events
        ]
    )


def _stored(conn) -> dict[uuid.UUID, dict]:
    rows = conn.execute(text(f"SELECT report_id, {', '.join(COLUMNS)} FROM report_loops"))  # noqa: S608
    return {r.report_id: {c: getattr(r, c) for c in COLUMNS} for r in rows}


@pytest.fixture
def cases(db: Engine) -> list[Case]:
    with db.begin() as conn:
        _areas_and_grids(conn)
        workers = _users(conn)
    rng = random.Random(10)  # noqa: S311 - test data

    return [_random_case(rng, workers, datetime(2024, 1, 1, tzinfo=UTC)) for _ in range(300)]


def test_the_loops_match_the_transitions_however_they_arrive(db: Engine, cases):
    rng = random.Random(3)  # noqa: S311 - test data
    events = [(c.id, e) for c in cases for e in c.events]
    rng.shuffle(events)  # later transitions before earlier ones, in batches of any size
    with db.begin() as conn:
        _insert_reports(conn, cases)
        i = 0
        while i < len(events):
            n = rng.choice((1, 1, 2, 7, 50, 400))
            conn.execute(INSERT_EVENTS, {"rows": _rows(events[i : i + n])})
            i += n
        # A note is not a transition: it changes nothing.
        conn.execute(
            text(
                "INSERT INTO report_events (report_id, kind, to_status, at, note) "
                "VALUES (:r, 'note', 'verified', '2030-01-01T00:00:00Z', 'a note')"
            ),
            {"r": cases[0].id},
        )
        stored = _stored(conn)
    with_events = [c for c in cases if c.events]
    assert len(with_events) > 250
    assert {c.id for c in with_events} == set(stored)
    for c in with_events:
        assert stored[c.id] == expected(c.events), c.id
    # The scenario reaches every column.
    for column in COLUMNS:
        assert any(row[column] for row in stored.values()), column
    assert any(row["low"] is False for row in stored.values())


def test_a_transition_is_kept_as_recorded_and_leaves_with_its_report(db: Engine, cases):
    c = next(c for c in cases if len(c.events) >= 3)
    with db.begin() as conn:
        _insert_reports(conn, [c])
        conn.execute(INSERT_EVENTS, {"rows": _rows([(c.id, e) for e in c.events])})
    for change in ("at = at + interval '1 day'", "to_status = 'verified'", "kind = 'note'"):
        with pytest.raises(exc.IntegrityError, match="kept as recorded"), db.begin() as conn:
            conn.execute(
                text(f"UPDATE report_events SET {change} WHERE report_id = :r"),  # noqa: S608
                {"r": c.id},
            )
    with db.begin() as conn:  # what the loop row does not read may change
        conn.execute(text("UPDATE report_events SET note = 'x' WHERE report_id = :r"), {"r": c.id})
        assert _stored(conn)[c.id] == expected(c.events)
        conn.execute(text("DELETE FROM reports WHERE id = :r"), {"r": c.id})
        assert _stored(conn) == {}
