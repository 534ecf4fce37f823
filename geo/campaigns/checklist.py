"""A campaign's screening checklist (排查清单): its items, and a visit's answers checked
against them.

An item is `{code, label, answer: yes_no|number|text, required?, tally?}`. A number item may
be marked `tally: relocations` (people moved to safety) or `tally: relocated_households`:
progress sums that item's answers over the visits, so a campaign says once which question
counts its relocations. Each tally is carried by at most one item.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from geo.errors import Conflict, InvalidInput


class AnswerKind(StrEnum):
    """What an item's answer is."""

    YES_NO = "yes_no"  # JSON true / false
    NUMBER = "number"  # a finite number, at least 0 (a tally item: a whole number)
    TEXT = "text"  # plain text


class Tally(StrEnum):
    """What a number item's answers add up to in the campaign's progress."""

    RELOCATIONS = "relocations"  # people relocated (转移人数)
    RELOCATED_HOUSEHOLDS = "relocated_households"  # households relocated (转移户数)


MAX_NUMBER = 1_000_000_000
MAX_TEXT = 500


@dataclass(frozen=True)
class Item:
    """One checklist item."""

    code: str
    label: str
    answer: AnswerKind
    required: bool = False
    tally: Tally | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the item as stored and answered."""
        out: dict[str, Any] = {"code": self.code, "label": self.label, "answer": str(self.answer)}
        out["required"] = self.required
        if self.tally is not None:
            out["tally"] = str(self.tally)
        return out


def parse(items: list[dict]) -> list[Item]:
    """Return the items of a stored or sent checklist, checked: codes unique, a tally only on
    a number item and at most once (InvalidInput naming the item)."""
    out: list[Item] = []
    seen: set[str] = set()
    tallies: dict[str, str] = {}
    for i, raw in enumerate(items):
        item = Item(
            code=raw["code"],
            label=raw["label"],
            answer=AnswerKind(raw["answer"]),
            required=bool(raw.get("required", False)),
            tally=Tally(raw["tally"]) if raw.get("tally") else None,
        )
        where = f"checklist[{i}] ({item.code})"
        if item.code in seen:
            raise InvalidInput(f"{where}: the code {item.code!r} is used twice; codes are unique")
        seen.add(item.code)
        if item.tally is not None:
            if item.answer != AnswerKind.NUMBER:
                raise InvalidInput(
                    f"{where}: tally {item.tally} sums numbers; make the item's answer number"
                )
            if item.tally in tallies:
                raise InvalidInput(
                    f"{where}: tally {item.tally} is already counted by {tallies[item.tally]!r}; "
                    "one item per tally"
                )
            tallies[item.tally] = item.code
        out.append(item)
    return out


def tally_items(items: list[Item]) -> dict[Tally, str]:
    """Return the code of the item counting each tally (those the checklist has)."""
    return {i.tally: i.code for i in items if i.tally is not None}


def check_edit(old: list[Item], new: list[Item]) -> None:
    """Raise Conflict when an edit of a running campaign's checklist would change what stored
    answers mean: an item removed, or its answer kind or tally changed (labels may change,
    items may be added)."""
    now = {i.code: i for i in new}
    for item in old:
        after = now.get(item.code)
        if after is None:
            raise Conflict(
                f"checklist item {item.code!r} cannot be removed once the campaign has run: "
                "visits have answered it; add a new item instead"
            )
        if (after.answer, after.tally) != (item.answer, item.tally):
            raise Conflict(
                f"checklist item {item.code!r} keeps its answer ({item.answer}) and tally "
                f"({item.tally or 'none'}) once the campaign has run; add a new item instead"
            )


def check_answers(items: list[Item], answers: dict[str, Any], campaign: str) -> dict[str, Any]:
    """Return a visit's answers, checked against the checklist (InvalidInput naming the item:
    an unknown code, a wrong type, a required item missing)."""
    by_code = {i.code: i for i in items}
    for code, value in answers.items():
        item = by_code.get(code)
        if item is None:
            raise InvalidInput(
                f"answers.{code}: no such item in the checklist of {campaign}; its items: "
                + ", ".join(by_code)
            )
        _check_value(item, value)
    missing = [i.code for i in items if i.required and i.code not in answers]
    if missing:
        labels = ", ".join(f"{c} ({by_code[c].label})" for c in missing)
        raise InvalidInput(f"answers: the required item(s) {labels} are not answered")
    return dict(answers)


def _check_value(item: Item, value: Any) -> None:
    where = f"answers.{item.code} ({item.label})"
    if item.answer == AnswerKind.YES_NO:
        if not isinstance(value, bool):
            raise InvalidInput(f"{where} is a yes/no item: send true or false (got {value!r})")
    elif item.answer == AnswerKind.NUMBER:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or not 0 <= value <= MAX_NUMBER:
            raise InvalidInput(
                f"{where} is a number item: send a number from 0 to {MAX_NUMBER:,} (got {value!r})"
            )
        if item.tally is not None and value != int(value):
            raise InvalidInput(f"{where} counts {item.tally}: send a whole number (got {value})")
    elif not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidInput(
            f"{where} is a text item: send a string of at most {MAX_TEXT} characters "
            f"(got {type(value).__name__})"
        )
