"""The evaluation's answer: per unit its counts, every rate with its 95 % interval, its
shrunken estimate and rank, as the caller may see them; the monthly trend; export tables."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from geo.errors import InvalidInput
from geo.evaluation import access, indicators, periods, ranking
from geo.evaluation import trend as monthly
from geo.evaluation.indicators import AREA_AND_WORKER_ONLY, COUNTS
from geo.evaluation.query import By, Query
from geo.identity import audit
from geo.identity.principal import Principal
from geo.settings import Settings
from geo.vocabulary import Role


@dataclass(frozen=True)
class Rate:
    """A rate of the evaluation: numerator / denominator, and which way is better."""

    numerator: str
    denominator: str
    higher_is_better: bool
    zh: str
    en: str


RATES: dict[str, Rate] = {
    "closure_rate": Rate("closed", "due_to_close", True, "结案率", "closure rate"),
    "on_time_closure_rate": Rate(
        "closed_on_time", "due_to_close", True, "按期结案率", "closed on time"
    ),
    "on_time_handling_rate": Rate(
        "handled_on_time", "handling_due", True, "按期处置率", "handled on time"
    ),
    "rework_rate": Rate("reworked", "resolved", False, "返工率", "rework rate"),
    "return_rate": Rate("returned", "dispatched", False, "回退率", "return rate"),
    "check_pass_rate": Rate("checks_passed", "checks", True, "核查通过率", "checks passed"),
    "street_or_below_share": Rate(
        "resolved_low", "resolved", True, "街道及以下处置占比", "resolved at street or below"
    ),
    "checks_on_time": Rate(
        "checks_answered_on_time", "check_tasks", True, "按时核查率", "checks on time"
    ),
    "visit_coverage": Rate("grids_visited", "grids", True, "走访覆盖率", "grids visited"),
}
# Rates about people who send reports and visit grids: none for a department.
NOT_FOR_DEPARTMENTS = ("checks_on_time", "visit_coverage")
DEFAULT_RANK_BY = "on_time_closure_rate"
TREND_MONTHS = 12
# The longest trend asked for: ten years of months (each month is one evaluation).
MAX_TREND_MONTHS = 120


def _now(conn: Connection) -> datetime:
    return conn.execute(text("SELECT now()")).scalar_one()


def _names(conn: Connection, by: By, units: list[str]) -> dict[str, tuple[str, str | None]]:
    """Return {unit key: (unit, unit_name)}: an area's code and name, a grid worker's
    username and name (other senders of reports are no units), a department's name."""
    if by == By.DEPARTMENT:
        return {u: (u, None) for u in units}
    if by == By.WORKER:
        ids = [int(u) for u in units if u.isdigit()]
        rows = conn.execute(
            text(
                "SELECT id, username, name FROM users WHERE id = ANY(:ids) "
                f"AND role = '{Role.WORKER}'"
            ),
            {"ids": ids},
        )
        return {str(r.id): (r.username, r.name) for r in rows}
    rows = conn.execute(
        text("SELECT code, name FROM areas WHERE code = ANY(:codes)"), {"codes": units}
    )
    names = {r.code: r.name for r in rows}
    return {u: (u, names.get(u)) for u in units}


def _value(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 6)


def _rates(frame: pd.DataFrame, by: By, rank_by: str) -> tuple[pd.DataFrame, dict, dict]:
    """Add to `frame` (one row per unit, COUNTS as columns) each rate, its interval and its
    shrunken estimate, and the rank by `rank_by`'s expected rank; return it with the pooled
    rates and the fitted priors."""
    pooled, priors = {}, {}
    for name, r in RATES.items():
        k = frame[r.numerator].to_numpy(dtype=float)
        n = frame[r.denominator].to_numpy(dtype=float)
        if by == By.DEPARTMENT and name in NOT_FOR_DEPARTMENTS:
            n = np.zeros(len(frame))
        low, high = ranking.wilson(k, n)
        prior = ranking.fit_prior(k, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            frame[name] = np.where(n > 0, k / n, np.nan)
        frame[f"{name}_ci_low"], frame[f"{name}_ci_high"] = low, high
        frame[f"{name}_shrunk"] = ranking.shrunk(k, n, prior)
        if name == rank_by:
            expected = ranking.expected_ranks(k, n, prior, r.higher_is_better)
            frame["rank"] = ranking.ranks(expected, higher_is_better=False)
        pooled[name] = _value(k.sum() / n.sum()) if n.sum() > 0 else None
        priors[name] = (
            None
            if prior is None
            else {"mean": round(prior.mean, 6), "strength": round(prior.strength, 3)}
        )
    return frame, pooled, priors


def _unit(row: dict, by: By) -> dict:
    """One unit of the answer."""
    out: dict = {"unit": row["unit"], "unit_name": row["unit_name"]}
    for c in COUNTS:
        out[c] = None if by == By.DEPARTMENT and c in AREA_AND_WORKER_ONLY else int(row[c])
    for name in RATES:
        out[name] = _value(row[name])
        low, high = row[f"{name}_ci_low"], row[f"{name}_ci_high"]
        out[f"{name}_ci"] = None if np.isnan(low) else [_value(low), _value(high)]
        out[f"{name}_shrunk"] = _value(row[f"{name}_shrunk"])
    out["rank"] = None if np.isnan(row["rank"]) else int(row["rank"])
    return out


def _period(q: Query, now: datetime, label: str | None) -> dict:
    def iso(t: datetime | None) -> str | None:
        return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")

    return {"since": iso(q.since), "until": iso(q.until or now), "label": label}


def evaluate(
    conn: Connection,
    q: Query,
    who: Principal,
    settings: Settings,
    rank_by: str = DEFAULT_RANK_BY,
    label: str | None = None,
    spare: Callable[[], AbstractContextManager[Connection]] | None = None,
) -> dict:
    """Return the evaluation `{by, period, rank_by, pooled, priors, units}` as `who` may see
    it: every unit computed among the units of their view, ranked best first (with `spare`,
    a second connection, half of the reports counted on it: indicators.counts)."""
    seen = access.view(who, q.by, settings.auth.sensitive_themes)
    now = _now(conn)
    found = indicators.counts(conn, q, seen.scope, settings.reports, settings.worktime, spare=spare)
    names = _names(conn, q.by, list(found))
    rows = [
        {"key": key, "unit": names[key][0], "unit_name": names[key][1], **c}
        for key, c in found.items()
        if key in names
    ]
    frame = pd.DataFrame(rows, columns=["key", "unit", "unit_name", *COUNTS])
    frame, pooled, priors = _rates(frame, q.by, rank_by)
    if seen.only is not None:
        frame = frame[frame["key"] == seen.only]
    # Plain dicts: a pandas row per unit cost 0.6 ms (88 streets: 54 ms).
    units = [_unit(row, q.by) for row in frame.to_dict("records")]
    units.sort(key=lambda u: (u["rank"] is None, u["rank"] or 0, str(u["unit"])))
    if q.by == By.WORKER:
        audit.record(
            conn, who, audit.PERSONAL_DATA_READ, "evaluation", _object_id(q), people=len(units)
        )
    return {
        "by": str(q.by),
        "period": _period(q, now, label),
        "theme": q.theme,
        "campaign": q.campaign,
        "rank_by": rank_by,
        "pooled": pooled,
        "priors": priors,
        "units": units,
    }


def _object_id(q: Query) -> str:
    """What an evaluation showed, as the audit log's object id (at most 64 characters)."""
    parts = [f"by={q.by}"]
    if q.since:
        parts.append(f"since={q.since.date()}")
    if q.until:
        parts.append(f"until={q.until.date()}")
    return ";".join(parts)[:64]


def trend(
    conn: Connection,
    q: Query,
    who: Principal,
    settings: Settings,
    spare: Callable[[], AbstractContextManager[Connection]] | None = None,
) -> list[dict]:
    """Return the closure rates per local month of [since, until) over the units `who` sees
    (their own alone for a department or a worker): each month evaluated on its own."""
    seen = access.view(who, q.by, settings.auth.sensitive_themes)
    zone = settings.worktime.timezone
    until = q.until or _now(conn)
    since = q.since
    if since is None:  # the 12 months up to the latest report (or up to `until`)
        latest = conn.execute(text("SELECT max(reported_at) FROM reports")).scalar_one()
        end = min(until, latest) if latest is not None else until
        since = periods.months_back(end, TREND_MONTHS, zone)
        until = min(until, periods.months_back(end, 0, zone))
    months = periods.months(since, until, zone)
    if len(months) > MAX_TREND_MONTHS:
        raise InvalidInput(
            f"the trend spans {len(months)} months; ask for at most {MAX_TREND_MONTHS} "
            "(narrow since and until)"
        )
    found = monthly.trend(
        conn,
        Query(q.by, since, q.until, q.theme, q.campaign),
        seen.scope,
        settings.reports,
        settings.worktime,
        spare,
    )
    if q.by == By.WORKER:
        found = {k: v for k, v in found.items() if k in _names(conn, q.by, list(found))}
    out = []
    for start, _ in months:
        month = start.strftime("%Y-%m")
        cells = [m[month] for key, m in found.items() if month in m and seen.only in (None, key)]
        totals = {c: sum(x[c] for x in cells) for c in ("due_to_close", "closed", "closed_on_time")}
        point: dict = {"month": month, **totals}
        for name in ("closure_rate", "on_time_closure_rate"):
            k, n = totals[RATES[name].numerator], totals["due_to_close"]
            low, high = ranking.wilson(np.array([k]), np.array([n]))
            point[name] = round(k / n, 6) if n else None
            point[f"{name}_ci"] = [_value(low[0]), _value(high[0])] if n else None
        out.append(point)
    return out


def table(answer: dict) -> pd.DataFrame:
    """Return the units of an answer as one flat table (intervals as two columns)."""
    rows = []
    for u in answer["units"]:
        row = {}
        for key, value in u.items():
            if key.endswith("_ci"):
                row[f"{key}_low"], row[f"{key}_high"] = value if value else (None, None)
            else:
                row[key] = value
        rows.append(row)
    return pd.DataFrame(rows)


def definitions(lang: str = "zh") -> pd.DataFrame:
    """Return each rate's name, label, numerator, denominator and which way is better."""
    return pd.DataFrame(
        [
            {
                "rate": name,
                "label": r.zh if lang == "zh" else r.en,
                "numerator": r.numerator,
                "denominator": r.denominator,
                "better": "higher" if r.higher_is_better else "lower",
            }
            for name, r in RATES.items()
        ]
    )
