"""Letter numbers under concurrency: eight letters issued at once by eight real transactions get
1..8 with no duplicate and no gap, one letter issued twice at once is numbered once, and a
number taken by a transaction that rolls back is given to the next letter."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from geo.errors import Conflict
from geo.identity.principal import SYSTEM
from geo.letters import moves, numbering, store
from tests.factories import at_once

N = 8


def _drafts(db, n: int) -> list:
    scope = {"department": "住房和城乡建设局", "districts": []}
    texts = {"subject": "关于风险隐患的提示函", "opening": "", "recommendations": "", "closing": ""}
    with db.begin() as conn:
        return [store.insert(conn, SYSTEM, scope, {}, texts) for _ in range(n)]


def test_eight_letters_issued_at_once_get_one_to_eight(db, settings):
    ids = _drafts(db, N)
    issued = at_once(lambda i: moves.issue(db, i, SYSTEM, settings), ids, catch=(Conflict,))
    year = datetime.now(ZoneInfo(settings.worktime.timezone)).year
    assert sorted(a["sequence"] for a in issued) == list(range(1, N + 1))
    assert {a["number"] for a in issued} == {f"〔{year}〕第{k}号" for k in range(1, N + 1)}
    # Issue times follow the numbers: each issuer read the clock after the counter's lock.
    by_number = sorted(issued, key=lambda a: a["sequence"])
    assert [a["issued_at"] for a in by_number] == sorted(a["issued_at"] for a in issued)
    with db.connect() as conn:
        assert conn.execute(text("SELECT last FROM letter_numbers")).scalar_one() == N


def test_one_letter_issued_twice_at_once_is_numbered_once(db, settings):
    (letter,) = _drafts(db, 1)
    answers = at_once(
        lambda _: moves.issue(db, letter, SYSTEM, settings), range(3), catch=(Conflict,)
    )
    done = [a for a in answers if isinstance(a, dict)]
    refused = [a for a in answers if isinstance(a, Conflict)]
    assert len(done) == 1 and len(refused) == 2 and done[0]["sequence"] == 1
    assert "cannot issue" in str(refused[0])


def test_a_number_rolled_back_goes_to_the_next_letter(db, settings):
    with pytest.raises(RuntimeError), db.begin() as conn:
        assert numbering.next_number(conn, 2031) == 1
        raise RuntimeError("the issue failed after taking its number")
    with db.begin() as conn:
        assert numbering.next_number(conn, 2031) == 1
        assert numbering.next_number(conn, 2031) == 2
        assert numbering.next_number(conn, 2032) == 1  # each year counts from 1
    assert numbering.rendered(2031, 2) == "〔2031〕第2号" and numbering.rendered(None, None) is None
