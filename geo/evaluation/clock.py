"""Deadlines computed in SQL: the working-time calendar as arrays PostgreSQL searches, and each
category's limits as steps, so that one statement finds every report's due times.

The loop stores only the current stage's `due_at`; an evaluation needs the deadlines of stages
long past (when was this case due to close?). Python's calendar (`geo.worktime`) walks day by
day, ~20 µs a deadline: 250,000 reports would take seconds. Here office time is a monotone
clock instead: W(t) is the office time from the calendar's start to t, flat outside office
hours. With the office periods' starts s, lengths l and the office time c before each as
sorted arrays, W(t) = c[i] + clamp(t - s[i], 0, l[i]) where i = width_bucket(t, s) (a binary
search in C), and adding office time is W⁻¹(W(t) + amount): the first instant the clock
reaches it, as `Calendar.add` answers (a limit that ends with a period ends at its close, not
at the next opening). Calendar hours add elapsed time; calendar days add local days.

Everything stays `timestamptz` and `interval` (time-only intervals: no day part that the
session's time zone would read): epoch seconds would come from `extract(epoch ...)`, which
goes through `numeric` since PostgreSQL 14 (a width_bucket of a numeric then casts the
whole array: 12 µs a search, measured, against 0.3 µs).

Consecutive stages of the same kind of time add up (W⁻¹(W(W⁻¹(W(t) + a)) + b) = W⁻¹(W(t) + a +
b)), so a path of stages (accepted → dispatched → in progress → resolved, the time allowed to
close a case) is at most as many steps as it changes kind: one for most categories.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum
from functools import lru_cache

from geo.reports import deadlines, taxonomy
from geo.settings import ReportSettings, WorkTimeSettings
from geo.vocabulary import ReportStatus
from geo.worktime import DAY_MINUTES, Calendar, Limit, Unit

S = ReportStatus


class Kind(IntEnum):
    """What a step adds: nothing, office seconds, elapsed seconds, local calendar days."""

    NONE = 0
    OFFICE = 1
    ELAPSED = 2
    DAYS = 3


# The stages each deadline runs through, from the time it starts.
PATHS: dict[str, tuple[ReportStatus, ...]] = {
    # 结案时限: from 立案, every stage up to 核查 taking its whole limit.
    "close": (S.ACCEPTED, S.DISPATCHED, S.IN_PROGRESS, S.RESOLVED),
    # 处置时限: from 派遣, the department's stages (take up, resolve).
    "handle": (S.DISPATCHED, S.IN_PROGRESS),
    "dispatched": (S.DISPATCHED,),
    "in_progress": (S.IN_PROGRESS,),
    # 核查时限: from 处置完成.
    "check": (S.RESOLVED,),
}


@dataclass(frozen=True)
class OfficeClock:
    """The office periods of a calendar's years as SQL array literals, ascending."""

    starts: tuple[str, ...]  # ISO instants
    cumulative: tuple[str, ...]  # office time before each period ('12600 seconds')
    lengths: tuple[str, ...]
    # -(cumulative + length), last period first: ascending, so width_bucket counts the
    # periods ending before a point of office time (the inverse needs a strict count).
    ends_desc: tuple[str, ...]
    zone: str

    def binds(self) -> dict[str, object]:
        """Return the bind values the SQL of `with_deadlines` refers to: each array as one
        literal, written once (adapting 12,000 strings a statement cost psycopg 25 ms)."""
        return {**_literals(self), "oc_n": len(self.starts), "oc_zone": self.zone}


@lru_cache(maxsize=16)
def _literals(clock: OfficeClock) -> dict[str, str]:
    def literal(items: tuple[str, ...]) -> str:
        return "{" + ",".join(f'"{x}"' for x in items) + "}"

    return {
        "oc_s": literal(clock.starts),
        "oc_c": literal(clock.cumulative),
        "oc_l": literal(clock.lengths),
        "oc_e": literal(clock.ends_desc),
    }


# The office clock's arrays as bound values: constants of the statement's plan, read in place.
_S = "CAST(:oc_s AS timestamptz[])"
_C, _L, _E = (f"CAST(:oc_{a} AS interval[])" for a in "cle")
_N, _ZONE = "CAST(:oc_n AS int)", "CAST(:oc_zone AS text)"
_ZERO = "interval '0 seconds'"


def seconds(x: float) -> str:
    """Return a time-only interval literal of `x` seconds ('900 seconds')."""
    return f"{x:.0f} seconds" if float(x).is_integer() else f"{x:.6f} seconds"


def _instant(cal: Calendar, day: date, minutes: int) -> datetime:
    """The instant `minutes` after local midnight of `day` (as Calendar._instant)."""
    day += timedelta(days=minutes // DAY_MINUTES)  # 24:00 is the next midnight
    clock = time(*divmod(minutes % DAY_MINUTES, 60))
    return datetime.combine(day, clock, cal.zone).astimezone(UTC)


@lru_cache(maxsize=16)
def office_clock(cal: Calendar, first_year: int, last_year: int) -> OfficeClock:
    """Return the office periods of the working days from `first_year` to `last_year`."""
    starts: list[datetime] = []
    lengths: list[float] = []
    day, last = date(first_year, 1, 1), date(last_year, 12, 31)
    while day <= last:
        if cal.is_working_day(day):
            for a, b in cal.periods:
                s = _instant(cal, day, a)
                starts.append(s)
                lengths.append((_instant(cal, day, b) - s).total_seconds())
        day += timedelta(days=1)
    cumulative, total = [], 0.0
    for length in lengths:
        cumulative.append(total)
        total += length
    ends = [c + length for c, length in zip(cumulative, lengths, strict=True)]
    return OfficeClock(
        tuple(s.isoformat() for s in starts),
        tuple(seconds(c) for c in cumulative),
        tuple(seconds(x) for x in lengths),
        tuple(seconds(-e) for e in reversed(ends)),
        cal.zone.key,
    )


def clock_for(worktime: WorkTimeSettings, first: datetime, last: datetime) -> OfficeClock:
    """Return the office clock covering `first` to `last` and a year either side (the
    longest limits run for months past the latest time an evaluation looks at)."""
    return office_clock(deadlines.calendar(worktime), first.year - 1, last.year + 1)


def _as_step(limit: Limit, day_length_s: float) -> tuple[Kind, float]:
    """A limit as a step: office or elapsed seconds, or local days."""
    if limit.unit == Unit.WORKING_HOURS:
        return Kind.OFFICE, limit.amount * 3600.0
    if limit.unit == Unit.WORKING_DAYS:
        return Kind.OFFICE, limit.amount * day_length_s
    if limit.unit == Unit.CALENDAR_HOURS:
        return Kind.ELAPSED, limit.amount * 3600.0
    return Kind.DAYS, limit.amount


def path_steps(
    limits: Sequence[Limit | None], day_length_s: float, width: int
) -> list[tuple[Kind, float]] | None:
    """Return the steps of a path of stage limits, runs of one kind added up, padded with
    empty steps to `width`; None when a stage has no limit."""
    if any(limit is None for limit in limits):
        return None
    steps: list[tuple[Kind, float]] = []
    for limit in limits:
        kind, amount = _as_step(limit, day_length_s)  # type: ignore[arg-type]
        if steps and steps[-1][0] == kind:
            steps[-1] = (kind, steps[-1][1] + amount)
        else:
            steps.append((kind, amount))
    return steps + [(Kind.NONE, 0.0)] * (width - len(steps))


def _amount(kind: Kind, amount: float) -> str:
    """The interval literal of a step: local days for calendar days, else seconds."""
    if kind == Kind.DAYS:
        return f"{amount:g} days"
    return seconds(amount)


def limit_binds(rules: ReportSettings, worktime: WorkTimeSettings) -> dict[str, list]:
    """Return, per (theme, category) of the taxonomy, every path's steps as columns
    (`lim_theme`, `lim_category`, `<path>_k1`, `<path>_a1`, …) for `limits_cte`; a path
    through a stage without a limit has an empty first step (no deadline)."""
    day_length_s = deadlines.calendar(worktime).day_length.total_seconds()
    cols: dict[str, list] = {"lim_theme": [], "lim_category": []}
    for theme, category in taxonomy.CATEGORY_BY_CODE:
        limits = deadlines.limits_for(theme, category, rules)
        cols["lim_theme"].append(theme)
        cols["lim_category"].append(category)
        for path, stages in PATHS.items():
            found = path_steps([limits.get(str(s)) for s in stages], day_length_s, len(stages))
            for i, (kind, amount) in enumerate(found or [(Kind.NONE, 0.0)] * len(stages), 1):
                cols.setdefault(f"{path}_k{i}", []).append(int(kind))
                cols.setdefault(f"{path}_a{i}", []).append(_amount(kind, amount))
    return cols


def step_count(binds: dict[str, list], path: str) -> int:
    """Return how many steps of `path` some category actually takes (1 to the stages)."""
    n = len(PATHS[path])
    while n > 1 and not any(binds[f"{path}_k{n}"]):
        n -= 1
    return n


def limits_cte() -> str:
    """Return the CTE `lim (theme, category, <path>_k1, <path>_a1, …)` of `limit_binds`."""
    names = ["theme", "category"]
    arrays = ["CAST(:lim_theme AS text[])", "CAST(:lim_category AS text[])"]
    for path, stages in PATHS.items():
        for i in range(1, len(stages) + 1):
            names += [f"{path}_k{i}", f"{path}_a{i}"]
            arrays += [f"CAST(:{path}_k{i} AS int[])", f"CAST(:{path}_a{i} AS interval[])"]
    return f"lim AS (SELECT * FROM unnest({', '.join(arrays)}) AS l({', '.join(names)}))"


@dataclass(frozen=True)
class Timer:
    """A deadline to compute per row: `start` (SQL, a timestamptz; NULL where none is needed)
    plus `path`'s steps, whose kinds and amounts are the `lim` columns `<path>_k<i>`,
    `<path>_a<i>` (or SQL of its own, for a stage chosen per row)."""

    name: str
    start: str
    path: str | None = None
    steps: tuple[tuple[str, str], ...] = ()
    count: int | None = None  # the path's steps some category takes (step_count)

    def step_columns(self) -> tuple[tuple[str, str], ...]:
        """Return (kind SQL, amount SQL) per step."""
        if self.path is None:
            return self.steps
        n = self.count or len(PATHS[self.path])
        return tuple((f"{self.path}_k{i}", f"{self.path}_a{i}") for i in range(1, n + 1))


def _days(x: str, amount: str) -> str:
    """SQL: the instant `x` plus `amount` local calendar days (the same clock time)."""
    return f"(({x}) AT TIME ZONE {_ZONE} + {amount}) AT TIME ZONE {_ZONE}"


def _result(name: str, i: int) -> str:
    """SQL: the instant step `i` of timer `name` reaches (W⁻¹ of its target for office time)."""
    w, j, t = f"{name}_w{i}", f"{name}_j{i}", f"{name}_t{i}"
    return f"CASE WHEN {j} IS NULL THEN {t} ELSE ({_S})[{j}] + ({w} - ({_C})[{j}]) END"


def _layer(inner: str, carried: list[str], new: list[str]) -> str:
    """A projection of `inner`'s `carried` columns and `new` ones; OFFSET 0 keeps it a layer
    of its own, so that each value is computed once and read by the next layer."""
    return f"SELECT {', '.join(carried + new)} FROM ({inner}) AS p OFFSET 0"


def with_deadlines(base: str, keep: Sequence[str], timers: Sequence[Timer]) -> str:
    """Return `base` (a SELECT with the `lim` columns), its columns `keep`, and one column per
    timer: its deadline (timestamptz), or NULL.

    Office time takes two binary searches a step (W at the start, W⁻¹ of the target), each in
    a layer of its own: a step reads the arrays four times and searches them twice, however
    long the calendar (inlining W where it is used made a step ten times dearer)."""
    carried = list(keep)
    first = []
    for t in timers:
        first.append(f"{t.start} AS {t.name}_x0")
        for i, (kind, amount) in enumerate(t.step_columns(), 1):
            first += [f"{kind} AS {t.name}_k{i}", f"{amount} AS {t.name}_a{i}"]
    sql = _layer(base, carried, first)
    carried += [c.rsplit(" AS ", 1)[1] for c in first]
    steps = max(len(t.step_columns()) for t in timers)
    for i in range(1, steps + 2):
        # Layer A: where step i starts (step i - 1's result) and W's period there; the result
        # of timers that ended with step i - 1.
        a_cols, dropped = [], []
        for t in timers:
            n, last = t.name, len(t.step_columns())
            if i > 1 and i - 1 <= last:
                dropped += [f"{n}_w{i - 1}", f"{n}_j{i - 1}", f"{n}_t{i - 1}"]
            if i - 1 == last:
                a_cols.append(f"{_result(n, last)} AS {n}")
            elif i <= last:
                x = f"{n}_x0" if i == 1 else _result(n, i - 1)
                if i > 1:
                    a_cols.append(f"{x} AS {n}_x{i - 1}")
                a_cols.append(
                    f"CASE WHEN {n}_k{i} = {Kind.OFFICE:d} THEN width_bucket({x}, {_S}) END "
                    f"AS {n}_i{i}"
                )
        carried = [c for c in carried if c not in dropped]
        sql = _layer(sql, carried, a_cols)
        carried += [c.rsplit(" AS ", 1)[1] for c in a_cols]
        if i > steps:
            break
        # Layer B: the step's office target and W⁻¹'s period there, or the time it reaches.
        b_cols, dropped = [], []
        for t in timers:
            if i > len(t.step_columns()):
                continue
            n = t.name
            x, k, a, p = f"{n}_x{i - 1}", f"{n}_k{i}", f"{n}_a{i}", f"{n}_i{i}"
            into = f"LEAST(GREATEST({x} - ({_S})[{p}], {_ZERO}), ({_L})[{p}])"
            office = f"({_C})[{p}] + {into} + {a}"
            empty = x if i > 1 else "NULL"
            b_cols += [
                f"CASE WHEN {k} = {Kind.OFFICE:d} THEN {office} END AS {n}_w{i}",
                f"CASE WHEN {k} = {Kind.OFFICE:d} THEN {_N} + 1 - width_bucket(-({office}), {_E}) "
                f"END AS {n}_j{i}",
                f"CASE {k} WHEN {Kind.ELAPSED:d} THEN {x} + {a} WHEN {Kind.DAYS:d} THEN "
                f"{_days(x, a)} WHEN {Kind.NONE:d} THEN {empty} END AS {n}_t{i}",
            ]
            dropped += [x, k, a, p]
        carried = [c for c in carried if c not in dropped]
        sql = _layer(sql, carried, b_cols)
        carried += [c.rsplit(" AS ", 1)[1] for c in b_cols]
    return sql
