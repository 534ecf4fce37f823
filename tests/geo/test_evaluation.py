"""The evaluation's counts (issue 15, item 5) recomputed from the raw loop records by an
independent reference: a few hundred reports with random paths through the loop (立案,
派遣, 回退, 返工, 核查, 自行处置, a legacy dispatch without 立案, open cases), inserted as the
loop writes them, then every count per unit, for every kind of unit and several periods,
computed event by event in Python with the Python deadline calendar and compared with the
one SQL statement. Then the deadlines in SQL against geo.reports.deadlines, and the
statistics: Wilson intervals, shrinkage, ranks fair to a unit with 3 reports."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy.stats import binomtest
from sqlalchemy import Engine, text

from geo.evaluation import clock, indicators, ranking
from geo.evaluation.indicators import COUNTS
from geo.evaluation.query import By, Query
from geo.identity.scope import EVERYTHING, ReportScope
from geo.reports import deadlines, taxonomy
from geo.settings import Settings
from geo.vocabulary import AT_OR_BELOW_STREET

SETTINGS = Settings()
CAL = deadlines.calendar(SETTINGS.worktime)
Z = CAL.zone
DISTRICTS = {"230602": "萨尔图区", "230603": "龙凤区"}
STREETS = {
    "230602001": ("230602", "萨尔图街道"),
    "230602002": ("230602", "富强街道"),
    "230603001": ("230603", "龙凤街道"),
}
# grid → (community, street, district)
GRIDS = {
    "230602001001001": ("230602001001", "230602001", "230602"),
    "230602002001001": ("230602002001", "230602002", "230602"),
    "230603001001001": ("230603001001", "230603001", "230603"),
}
# Calendar hours (gas leak), working hours (electrical), working and calendar days (neighbour).
CATEGORIES = (
    ("gas", "gas_leak"),
    ("fire", "electrical"),
    ("dispute", "neighbour"),
    ("flood", "waterlogging"),
)
DEPARTMENTS = ("燃气公司", "消防救援支队", "街道综治中心", "水务局")
LEVELS = ("grid", "community", "street", "district", "city")


@dataclass
class Case:
    """A report as the loop leaves it: its row's columns and its transitions."""

    id: uuid.UUID
    theme: str
    category: str
    grid: str
    reported_at: datetime
    reporter_id: int | None
    on_site: bool = False
    events: list[dict] = field(default_factory=list)

    @property
    def district(self) -> str:
        return GRIDS[self.grid][2]

    @property
    def street(self) -> str:
        return GRIDS[self.grid][1]

    def status(self) -> str:
        return self.events[-1]["to"] if self.events else "reported"

    def department(self) -> str:
        dispatches = [e["department"] for e in self.events if e["to"] == "dispatched"]
        own = taxonomy.department(self.theme, self.category)
        return dispatches[-1] if dispatches else own

    def level(self) -> str | None:
        levels = [e["level"] for e in self.events if e["to"] == "resolved"]
        return levels[-1] if levels and self.status() in ("resolved", "verified") else None


def _random_case(rng: random.Random, workers: dict[str, int], start: datetime) -> Case:
    theme, category = rng.choice(CATEGORIES)
    grid = rng.choice(list(GRIDS))
    at = start + timedelta(hours=rng.uniform(0, 24 * 240))
    reporter = workers[grid] if rng.random() < 0.85 else None
    case = Case(uuid.uuid4(), theme, category, grid, at, reporter)
    own = taxonomy.department(theme, category)

    def step(frm, to, hours, **kw):
        nonlocal at
        at = at + timedelta(hours=hours)
        case.events.append(
            {
                "from": frm,
                "to": to,
                "at": at,
                "department": None,
                "level": None,
                "actor_id": None,
                **kw,
            }
        )

    def wait() -> float:
        # Mostly quick, sometimes days, now and then weeks: on time, late, and open at the end.
        return rng.choice((rng.uniform(0.05, 3), rng.uniform(3, 60), rng.uniform(60, 600)))

    if rng.random() < 0.06:  # 自行处置: resolved on the spot, checked by the desk
        case.on_site = True
        step("reported", "resolved", 0, level="grid", actor_id=reporter)
    else:
        if rng.random() < 0.05:
            step("reported", "rejected", wait())
            return case
        legacy = rng.random() < 0.05  # dispatched before the loop had 立案
        if not legacy:
            step("reported", "accepted", wait())
            if rng.random() < 0.05:
                return case
        first = rng.choice([d for d in DEPARTMENTS if d != own]) if rng.random() < 0.12 else own
        step("reported" if legacy else "accepted", "dispatched", wait(), department=first)
        if first != own or rng.random() < 0.04:
            step("dispatched", "returned", wait())
            if rng.random() < 0.1:
                return case
            step("returned", "dispatched", wait(), department=own)
        if rng.random() < 0.06:
            return case
        step("dispatched", "in_progress", wait())
        if rng.random() < 0.06:
            return case
        step("in_progress", "resolved", wait(), level=rng.choice(LEVELS))
    for _ in range(2):
        if rng.random() < 0.07:
            return case
        checker = workers[grid] if rng.random() < 0.7 and not case.on_site else 999_999
        if rng.random() < 0.15:
            step("resolved", "in_progress", wait(), actor_id=checker)
            if rng.random() < 0.1:
                return case
            step("in_progress", "resolved", wait(), level=rng.choice(LEVELS))
        else:
            step("resolved", "verified", wait(), actor_id=checker)
            return case
    return case


def _areas_and_grids(conn) -> None:
    """Two districts, three streets with a community each, one grid in each community."""
    conn.execute(
        text(
            "INSERT INTO boundary_versions (id, layer, source, sha256, summary) "
            "VALUES (1, 'grids', 'test', 'x', '{}')"
        )
    )
    rows = [(c, n, "district", None) for c, n in DISTRICTS.items()]
    rows += [(c, n, "street", d) for c, (d, n) in STREETS.items()]
    rows += [(comm, f"社区{i}", "community", s) for i, (comm, s, _) in enumerate(GRIDS.values())]
    for i, (code, name, level, parent) in enumerate(rows):
        conn.execute(
            text(
                "INSERT INTO areas (code, name, level, parent_code, geom, boundary_version) "
                "VALUES (:c, :n, :l, :p, ST_Multi(ST_MakeEnvelope(125 + :i * 0.01, 46.6, "
                "125.009 + :i * 0.01, 46.609, 4326)), 1)"
            ),
            {"c": code, "n": name, "l": level, "p": parent, "i": i},
        )
    for i, (code, (comm, _, district)) in enumerate(GRIDS.items()):
        conn.execute(
            text(
                "INSERT INTO grids (code, name, kind, community_code, district_code, geom, "
                "area_m2, boundary_version) VALUES (:c, :c, 'comprehensive', :m, :d, "
                "ST_Multi(ST_MakeEnvelope(125 + :i * 0.01, 46.6, 125.009 + :i * 0.01, 46.609, "
                "4326)), 1e6, 1)"
            ),
            {"c": code, "m": comm, "d": district, "i": i},
        )


def _users(conn) -> dict[str, int]:
    """A grid worker per grid (and one with two grids, for coverage); return grid → user."""
    out = {}
    for i, grid in enumerate(GRIDS):
        uid = conn.execute(
            text("INSERT INTO users (username, name, role) VALUES (:u, :n, 'worker') RETURNING id"),
            {"u": f"worker-{i}", "n": f"网格员{i}"},
        ).scalar_one()
        conn.execute(text("INSERT INTO user_grids VALUES (:u, :g)"), {"u": uid, "g": grid})
        out[grid] = uid
    conn.execute(
        text("INSERT INTO user_grids VALUES (:u, :g)"),
        {"u": out[next(iter(GRIDS))], "g": list(GRIDS)[1]},
    )
    return out


def store(engine: Engine, cases: list[Case]) -> None:
    """Insert the cases as the loop leaves them: the report row and its transitions."""
    with engine.begin() as conn:
        for c in cases:
            conn.execute(
                text(
                    "INSERT INTO reports (id, theme, category, severity, status, geom, "
                    "source_crs, assignment_method, reported_at, grid_code, district_code, "
                    "department, reporter_id, on_site, resolution_level) VALUES (:id, :t, :c, "
                    "2, :s, ST_SetSRID(ST_MakePoint(125.004, 46.604), 4326), 'wgs84', "
                    "'inside', :at, :g, :d, :dept, :rep, :os, :lvl)"
                ),
                {
                    "id": c.id,
                    "t": c.theme,
                    "c": c.category,
                    "s": c.status(),
                    "at": c.reported_at,
                    "g": c.grid,
                    "d": c.district,
                    "dept": c.department(),
                    "rep": c.reporter_id,
                    "os": c.on_site,
                    "lvl": c.level(),
                },
            )
        rows = [
            {
                "r": c.id,
                "f": e["from"],
                "t": e["to"],
                "at": e["at"],
                "d": e["department"],
                "l": e["level"],
                "a": e["actor_id"],
            }
            for c in cases
            for e in c.events
        ]
        if rows:
            conn.execute(
                text(
                    "INSERT INTO report_events (report_id, kind, from_status, to_status, at, "
                    "department, level, actor_id) VALUES (:r, 'transition', :f, :t, :at, :d, "
                    ":l, :a)"
                ),
                rows,
            )


@pytest.fixture
def scenario(db: Engine) -> tuple[list[Case], dict[str, int]]:
    with db.begin() as conn:
        _areas_and_grids(conn)
        workers = _users(conn)
    rng = random.Random(15)  # noqa: S311 - test data
    start = datetime(2024, 1, 1, tzinfo=Z)
    cases = [_random_case(rng, workers, start) for _ in range(420)]
    store(db, cases)
    return cases, workers


# --- the reference: every count, event by event ----------------------------------------------


def _chain(t: datetime, theme: str, category: str, stages: tuple[str, ...]) -> datetime:
    for s in stages:
        limit = deadlines.limit_for(theme, category, s, SETTINGS.reports)
        t = deadlines.due_at(t, limit, CAL)
    return t


def _first(events, test):
    return next((e["at"] for e in events if test(e)), None)


def _last(events, test):
    return next((e["at"] for e in reversed(events) if test(e)), None)


def reference(cases: list[Case], workers: dict[str, int], by: By, since, until):
    """Every count per unit, computed one report and one event at a time (docs/evaluation.md)."""
    S = since or datetime(1, 1, 1, tzinfo=UTC)
    U = until
    out: dict[str, dict[str, int]] = {}

    def add(unit, name, n=1):
        if unit is not None:
            out.setdefault(unit, dict.fromkeys(COUNTS, 0))[name] += n

    grids_of: dict[int, list[str]] = {}
    for grid, uid in workers.items():
        grids_of.setdefault(uid, []).append(grid)
    grids_of[workers[next(iter(GRIDS))]].append(list(GRIDS)[1])
    for c in cases:
        if c.reported_at >= U:
            continue
        ev = [e for e in c.events if e["at"] < U]
        th, cat = c.theme, c.category
        acc = _first(
            ev,
            lambda e: e["to"] == "accepted" or (e["from"], e["to"]) == ("reported", "dispatched"),
        )
        ver = _first(ev, lambda e: e["to"] == "verified")
        dispatches = [e for e in ev if e["to"] == "dispatched"]
        d_at = dispatches[-1]["at"] if dispatches else None
        ret = _last(ev, lambda e: e["to"] == "returned")
        r1 = _first(ev, lambda e: e["to"] == "resolved")
        rs = _last(ev, lambda e: e["to"] == "resolved")
        rw = _last(ev, lambda e: (e["from"], e["to"]) == ("resolved", "in_progress"))
        tu = _last(ev, lambda e: (e["from"], e["to"]) == ("dispatched", "in_progress"))
        c1 = [e for e in ev if e["from"] == "resolved"]
        if by == By.DEPARTMENT:
            unit = dispatches[-1]["department"] if dispatches else None
        elif by == By.DISTRICT:
            unit = c.district
        elif by == By.STREET:
            unit = c.street
        else:
            unit = str(c.reporter_id) if c.reporter_id else None
        if acc is not None:
            dc = _chain(acc, th, cat, ("accepted", "dispatched", "in_progress", "resolved"))
            closed = ver is not None and ver >= S
            if closed or (S <= dc < U and (ver is None or ver >= S)):
                add(unit, "due_to_close")
            if closed:
                add(unit, "closed")
                if ver <= dc:
                    add(unit, "closed_on_time")
        if d_at is not None and d_at >= S and (ret is None or ret < d_at):
            dh = _chain(d_at, th, cat, ("dispatched", "in_progress"))
            handled = r1 is not None and r1 > d_at
            if handled or dh < U:
                add(unit, "handling_due")
            if handled and r1 <= dh:
                add(unit, "handled_on_time")
        if r1 is not None and r1 >= S:
            add(unit, "resolved")
            if rw is not None:
                add(unit, "reworked")
            if all(e["level"] in AT_OR_BELOW_STREET for e in ev if e["to"] == "resolved"):
                add(unit, "resolved_low")
            ck = _chain(r1, th, cat, ("resolved",))
            # A grid worker's check tasks are those of their grids, answered by them; a
            # department makes no checks.
            if by == By.DEPARTMENT:
                pass
            elif (c1 or ck < U) and by != By.WORKER:
                add(unit, "check_tasks")
            elif (c1 or ck < U) and not c.on_site:
                for uid, gs in grids_of.items():
                    if c.grid in gs:
                        add(str(uid), "check_tasks")
                        if c1 and c1[0]["actor_id"] == uid and c1[0]["at"] <= ck:
                            add(str(uid), "checks_answered_on_time")
            if c1 and c1[0]["at"] <= ck and by not in (By.WORKER, By.DEPARTMENT):
                add(unit, "checks_answered_on_time")
        add(unit, "checks", sum(1 for e in c1 if e["at"] >= S))
        if ver is not None and ver >= S:
            add(unit, "checks_passed")
        in_hands = (
            d_at is not None
            and ver is None
            and (ret is None or ret < d_at)
            and not (rs is not None and (rw is None or rs > rw))
        )
        if in_hands:
            since_rework = rw is not None and (rs is None or rw > rs)
            working = rw if since_rework else tu
            stage, started = ("in_progress", working) if working else ("dispatched", d_at)
            if _chain(started, th, cat, (stage,)) < U:
                add(unit, "overdue_open")
        if c.reported_at >= S:
            add(unit, "reports_sent")
            if c.on_site:
                add(unit, "self_resolved")
        for e in dispatches:
            if e["at"] >= S:
                home = e["department"] if by == By.DEPARTMENT else unit
                add(home, "dispatched")
                later = [
                    x for x in ev if x["at"] > e["at"] and x["to"] in ("dispatched", "returned")
                ]
                if later and later[0]["to"] == "returned":
                    add(home, "returned")
    # A worker's grids and an area's: none visited in this scenario.
    if by == By.WORKER:
        for uid, gs in grids_of.items():
            add(str(uid), "grids", len(set(gs)))
    elif by in (By.DISTRICT, By.STREET):
        for _, street, district in GRIDS.values():
            add(district if by == By.DISTRICT else street, "grids")
    return out


def _sql(engine: Engine, by: By, since, until, scope: ReportScope = EVERYTHING, halves=False):
    s, q = SETTINGS, Query(by, since, until)
    spare = engine.connect if halves else None
    with engine.connect() as conn:
        return indicators.counts(conn, q, scope, s.reports, s.worktime, spare=spare)


PERIODS = (
    (None, None),  # everything up to now
    (datetime(2024, 3, 1, tzinfo=Z), datetime(2024, 6, 1, tzinfo=Z)),  # a quarter long past
    (datetime(2024, 7, 1, tzinfo=Z), None),
)


@pytest.mark.parametrize("by", list(By))
def test_every_count_recomputed_from_the_raw_events(scenario, db, by):
    cases, workers = scenario
    now = datetime.now(UTC)
    seen = set()
    for since, until in PERIODS:
        got = _sql(db, by, since, until)
        want = reference(cases, workers, by, since, until or now)
        if by == By.WORKER:  # reporters who are not grid workers are no units
            want = {u: c for u, c in want.items() if int(u) in workers.values()}
            got = {u: c for u, c in got.items() if int(u) in workers.values()}
        assert got == want, (since, until)
        # Each half of the reports counted on its own connection: the same sums.
        halves = _sql(db, by, since, until, halves=True)
        assert {u: c for u, c in halves.items() if u in got} == got
        seen |= {k for c in got.values() for k, v in c.items() if v}
    # The scenario reaches every count (grids are visited in the visits tests: not here).
    assert seen >= set(COUNTS) - {"grids_visited"} - (
        {"grids", "self_resolved", "check_tasks", "checks_answered_on_time"}
        if by == By.DEPARTMENT
        else set()
    )


def test_the_unit_of_a_returned_report_is_the_department_it_went_to_next(scenario, db):
    cases, _ = scenario
    moved = [
        c
        for c in cases
        if sum(e["to"] == "returned" for e in c.events) == 1 and c.events[-1]["to"] != "returned"
    ]
    c = moved[0]
    first, last = (e["department"] for e in c.events if e["to"] == "dispatched")
    assert first != last
    ret = next(e["at"] for e in c.events if e["to"] == "returned")
    # Evaluated at the end of the day it was returned, the case was nobody's; just before
    # it was returned it was the first department's: its dispatch counts, not yet returned.
    before = _sql(db, By.DEPARTMENT, None, ret)
    after = _sql(db, By.DEPARTMENT, None, ret + timedelta(microseconds=1))
    assert after[first]["returned"] == before[first]["returned"] + 1


def test_a_dispatcher_of_one_district_sees_its_units_only(scenario, db):
    got = _sql(db, By.STREET, None, None, ReportScope(districts=("230603",)))
    assert set(got) == {"230603001"}
    everything = _sql(db, By.STREET, None, None)
    assert got["230603001"] == everything["230603001"]


# --- deadlines in SQL --------------------------------------------------------------------------


def test_sql_deadlines_match_the_python_calendar_to_the_microsecond(db):
    s, cal = SETTINGS, CAL
    limits = clock.limit_binds(s.reports, s.worktime)
    rng = random.Random(7)  # noqa: S311 - test data
    cases = []
    for _ in range(600):
        theme, category = rng.choice(list(taxonomy.CATEGORY_BY_CODE))
        t = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 700 * 86400))
        if rng.random() < 0.3:  # on an office boundary: ends at the close, not the next opening
            t = t.astimezone(Z).replace(
                hour=rng.choice((8, 12, 13, 17)),
                minute=rng.choice((0, 30)),
                second=0,
                microsecond=0,
            )
        cases.append((theme, category, t))
    timers = [
        clock.Timer("close", "t", "close", count=clock.step_count(limits, "close")),
        clock.Timer("handle", "t", "handle"),
        clock.Timer("chk", "t", "check"),
    ]
    base = (
        "SELECT c.n, c.t, lim.* FROM unnest(CAST(:th AS text[]), CAST(:cat AS text[]), "
        "CAST(:t AS timestamptz[])) WITH ORDINALITY AS c (theme, category, t, n) "
        "JOIN lim USING (theme, category)"
    )
    deadlines_sql = clock.with_deadlines(base, ["n"], timers)
    sql = f"WITH {clock.limits_cte()} SELECT * FROM ({deadlines_sql}) x ORDER BY n"  # noqa: S608
    oc = clock.office_clock(cal, 2023, 2027)
    params = {
        **oc.binds(),
        **limits,
        "th": [c[0] for c in cases],
        "cat": [c[1] for c in cases],
        "t": [c[2] for c in cases],
    }
    with db.connect() as conn:
        rows = conn.execute(text(sql), params).all()
    for (theme, category, t), row in zip(cases, rows, strict=True):
        assert row.close == _chain(t, theme, category, clock.PATHS["close"]), (theme, category, t)
        assert row.handle == _chain(t, theme, category, clock.PATHS["handle"])
        assert row.chk == _chain(t, theme, category, clock.PATHS["check"])


def test_consecutive_limits_of_one_kind_add_up_into_one_step():
    day = 7.5 * 3600
    steps = clock.path_steps(
        [deadlines.Limit.parse(x) for x in ("4wh", "1wd", "30d", "3wd")], day, 4
    )
    assert steps == [
        (clock.Kind.OFFICE, 4 * 3600 + day),
        (clock.Kind.DAYS, 30.0),
        (clock.Kind.OFFICE, 3 * day),
        (clock.Kind.NONE, 0.0),
    ]


# --- intervals, shrinkage, ranks ---------------------------------------------------------------


def test_wilson_intervals_are_scipys_contain_the_rate_and_narrow_with_n():
    k = np.array([0, 1, 3, 7, 90, 911, 737, 30, 300])
    n = np.array([3, 3, 3, 10, 100, 972, 972, 40, 400])
    low, high = ranking.wilson(k, n)
    for ki, ni, lo, hi in zip(k, n, low, high, strict=True):
        ci = binomtest(int(ki), int(ni)).proportion_ci(method="wilson")
        assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)
        assert lo <= ki / ni <= hi
    # The same share, ten times the cases: a narrower interval around it.
    assert high[-1] - low[-1] < high[-2] - low[-2]
    assert high[5] - low[5] < high[3] - low[3]
    nothing = ranking.wilson(np.array([0]), np.array([0]))
    assert np.isnan(nothing[0][0]) and np.isnan(nothing[1][0])


def test_shrinkage_pulls_small_units_toward_the_pooled_rate_and_ranks_them_fairly():
    # Departments that close 70-93 % on time with hundreds of cases, and two with 3 cases:
    # all on time, and none.
    k = np.array([140, 93, 180, 450, 301, 3, 0])
    n = np.array([200, 100, 220, 500, 380, 3, 3])
    prior = ranking.fit_prior(k, n)
    assert prior is not None and 0.7 < prior.mean < 0.93
    est = ranking.shrunk(k, n, prior)
    raw = k / n
    for i in range(len(k)):
        # Every estimate lies between the unit's own rate and the prior's (near the pooled)...
        assert min(raw[i], prior.mean) - 1e-12 <= est[i] <= max(raw[i], prior.mean) + 1e-12
    assert abs(prior.mean - k.sum() / n.sum()) < 0.05
    # ...and the fewer its cases, the nearer the prior's mean (relative pull).
    pull = np.abs(est - raw) / np.maximum(np.abs(prior.mean - raw), 1e-12)
    assert pull[5] > 0.8 and pull[6] > 0.8 and pull[3] < 0.05
    order = np.argsort(n)
    assert np.all(np.diff(pull[order]) <= 1e-9)
    _, _, best_first = ranking.fair_ranks(k, n, higher_is_better=True)
    by_raw = ranking.ranks(raw, higher_is_better=True)
    by_mean = ranking.ranks(est, higher_is_better=True)
    # By its raw rate the 3-of-3 unit would be first and the 0-of-3 last; shrunken, neither.
    assert by_raw[5] == 1 and by_raw[6] == len(k)
    assert 1 < best_first[5] < len(k) and 1 < best_first[6] < len(k)
    # Where units differ this much, the 0-of-3 unit's mean is the lowest, yet its posterior
    # is wide: the expected rank does not put it last.
    assert by_mean[6] == len(k)
    # Large units keep the order of their rates: the best is first, the worst last.
    large = np.flatnonzero(n > 50)
    assert list(best_first[large][np.argsort(-raw[large])]) == sorted(best_first[large])
    assert best_first[large[np.argmin(raw[large])]] == len(k)


def test_expected_ranks_match_a_monte_carlo_of_the_posteriors():
    k, n = np.array([40, 93, 3, 0, 12]), np.array([50, 100, 3, 3, 20])
    prior = ranking.fit_prior(k, n)
    exact = ranking.expected_ranks(k, n, prior, higher_is_better=True)
    draws = np.random.default_rng(0).beta(
        (prior.alpha + k)[:, None], (prior.beta + n - k)[:, None], (len(k), 100_000)
    )
    simulated = (-draws).argsort(0).argsort(0).mean(axis=1) + 1
    assert exact == pytest.approx(simulated, abs=0.02)


def test_ranks_put_lower_first_for_rates_where_lower_is_better_and_leave_empty_unranked():
    r = ranking.ranks(np.array([0.1, np.nan, 0.05, 0.1]), higher_is_better=False)
    assert r[0] == 2 and np.isnan(r[1]) and r[2] == 1 and r[3] == 2
    assert ranking.fit_prior(np.array([3]), np.array([4])) is None  # one unit: no prior
    assert ranking.shrunk(np.array([3]), np.array([4]), None)[0] == 0.75
