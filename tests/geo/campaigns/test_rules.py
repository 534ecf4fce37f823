"""The campaign rules that need no database: lifecycle moves, checklists and their answers,
target specifications, and the visits a stopped campaign still takes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from geo.campaigns import checklist, lifecycle, targets
from geo.campaigns.visits import check_open
from geo.errors import Conflict, Forbidden, InvalidInput
from geo.identity.principal import Principal
from geo.vocabulary import Role


def test_moves_from_each_status_follow_the_lifecycle():
    assert lifecycle.moves_from("draft") == ["launch"]
    assert lifecycle.moves_from("launched") == ["pause", "close"]
    assert lifecycle.moves_from("paused") == ["launch", "close"]
    assert lifecycle.moves_from("closed") == []
    with pytest.raises(Conflict, match="possible now: launch, close"):
        lifecycle.check_move("CA11", "paused", "pause")


def test_a_campaign_run_to_its_dates():
    start, end = date(2023, 7, 25), date(2023, 7, 29)
    assert lifecycle.status_on(start, end, date(2023, 7, 24)) == "draft"
    assert lifecycle.status_on(start, end, start) == "launched"
    assert lifecycle.status_on(start, end, end) == "launched"
    assert lifecycle.status_on(start, end, date(2023, 7, 30)) == "closed"


def test_managers_are_dispatchers_within_their_districts_and_admins():
    lifecycle.check_manager(Principal(1, "a", Role.ADMIN), ["230602"])
    lifecycle.check_manager(Principal(2, "d", Role.DISPATCHER), ["230602", "230603"])
    bound = Principal(3, "b", Role.DISPATCHER, districts=("230602",))
    lifecycle.check_manager(bound, ["230602"])
    with pytest.raises(Forbidden, match="230603 outside yours"):
        lifecycle.check_manager(bound, ["230602", "230603"])
    with pytest.raises(Forbidden):
        lifecycle.check_manager(Principal(4, "c", Role.COORDINATOR), ["230602"])


ITEMS = checklist.parse(
    [
        {"code": "low_lying", "label": "低洼易涝", "answer": "yes_no", "required": True},
        {"code": "people", "label": "需转移人数", "answer": "number", "tally": "relocations"},
        {"code": "depth", "label": "积水深度", "answer": "number"},
        {"code": "note", "label": "说明", "answer": "text"},
    ]
)


def test_answers_are_checked_against_the_checklist():
    ok = {"low_lying": False, "people": 2, "depth": 0.35, "note": "无"}
    assert checklist.check_answers(ITEMS, ok, "CA11") == ok
    assert checklist.tally_items(ITEMS) == {checklist.Tally.RELOCATIONS: "people"}
    for answers, words in (
        ({"low_lying": True, "depth": float("nan")}, "depth (积水深度) is a number item"),
        ({"low_lying": True, "depth": True}, "depth (积水深度) is a number item"),
        ({"low_lying": True, "people": 1.5}, "people (需转移人数) counts relocations"),
        ({"low_lying": True, "note": "x" * 501}, "note (说明) is a text item"),
        ({"low_lying": "yes"}, "low_lying (低洼易涝) is a yes/no item"),
        ({"low_lying": True, "colour": "red"}, "answers.colour: no such item"),
        ({}, "required item(s) low_lying (低洼易涝)"),
    ):
        with pytest.raises(InvalidInput, match=words.replace("(", r"\(").replace(")", r"\)")):
            checklist.check_answers(ITEMS, answers, "CA11")


def test_a_running_checklist_keeps_its_answered_items():
    relabelled = [checklist.Item("low_lying", "低洼", checklist.AnswerKind.YES_NO), *ITEMS[1:]]
    checklist.check_edit(ITEMS, [*relabelled, checklist.Item("x", "新", checklist.AnswerKind.TEXT)])
    with pytest.raises(Conflict, match="'depth' cannot be removed"):
        checklist.check_edit(ITEMS, [i for i in ITEMS if i.code != "depth"])
    untallied = [ITEMS[0], checklist.Item("people", "需转移人数", checklist.AnswerKind.NUMBER)]
    with pytest.raises(Conflict, match="'people' keeps its answer"):
        checklist.check_edit(ITEMS[:2], untallied)


def test_target_specifications():
    spec = {"register": "households", "filter": {"living_alone_over": 60, "mobility_needs": True}}
    assert targets.check_spec(spec) == spec
    assert targets.check_spec({"register": "workshops"}) == {"register": "workshops"}
    assert targets.check_spec(None) is None
    for bad, words in (
        ({"register": "cats"}, "targets.register must be one of"),
        ({"register": "households", "filter": {"living_alone_over": True}}, "an age"),
        ({"register": "households", "filter": {"living_alone_over": 200}}, "an age"),
        ({"register": "households", "filter": {"over_60": 1}}, "true or false"),
        ({"register": "households", "filter": {"rich": True}}, "filter.rich: unknown"),
        ({"register": "workshops", "filter": {"over_60": True}}, "for the household register"),
        ({"register": "workshops", "list": []}, "unknown field"),
    ):
        with pytest.raises(InvalidInput, match=words):
            targets.check_spec(bad)


def test_a_stopped_campaign_takes_only_the_visits_made_while_it_ran():
    launched = datetime(2025, 7, 20, tzinfo=UTC)
    paused = launched + timedelta(days=2)
    c = {"code": "CA11", "status": "paused", "launched_at": launched, "paused_at": paused,
         "closed_at": None}  # fmt: skip
    check_open(c, paused - timedelta(minutes=1))
    for t in (paused, launched - timedelta(minutes=1)):
        with pytest.raises(Conflict, match="it is paused"):
            check_open(c, t)
    # Relaunched, then closed: the first run's visits are before this launch.
    relaunched = paused + timedelta(days=1)
    closed = {
        **c,
        "status": "closed",
        "launched_at": relaunched,
        "closed_at": relaunched + timedelta(days=1),
    }
    check_open(closed, relaunched + timedelta(hours=3))
    with pytest.raises(Conflict, match="it is closed"):
        check_open(closed, paused - timedelta(minutes=1))
    with pytest.raises(Conflict, match="not been launched yet"):
        check_open({**c, "status": "draft", "launched_at": None, "paused_at": None}, launched)
