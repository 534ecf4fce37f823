"""Hot spots and their trend in a letter's scope, through the functions the hotspot API uses:
Gi* (`gistar_result`) and emerging hot spots (`emerging_geojson`), each computed in the
statistics process within its time budget and cached per query and data version.

Gi* runs with the API's defaults (queen contiguity, 999 permutations, seed 12345, no FDR).
The trend's slices follow the period: days up to a month, weeks up to three years, months
beyond; a period under three days has no trend.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import orjson
from sqlalchemy import Connection, text

from geo.analytics.counts import rounded
from geo.analytics.emerging import (
    MAX_SLICES,
    EmergingSpec,
    counts_by_slice,
    emerging_geojson,
    slice_count,
)
from geo.analytics.gistar import CLASSES, GiSpec, gistar_result
from geo.cache import Versions
from geo.grids.layer import grid_layer
from geo.reports.queries import ReportFilter

SPEC = GiSpec()
# The patterns a letter warns of: hot spots that are new, growing or holding.
WARNING_PATTERNS = (
    "new_hot",
    "consecutive_hot",
    "intensifying_hot",
    "persistent_hot",
    "sporadic_hot",
    "oscillating_hot",
)


def _districts(conn: Connection, codes: list[str]) -> dict[str, tuple[str | None, str | None]]:
    rows = conn.execute(
        text(
            "SELECT g.code, g.district_code, a.name FROM grids g LEFT JOIN areas a "
            "ON a.code = g.district_code AND a.level = 'district' WHERE g.code = ANY(:c)"
        ),
        {"c": codes},
    ).all()
    return {r.code: (r.district_code, r.name) for r in rows}


def hotspots(
    conn: Connection, f: ReportFilter, v: Versions, listed: int
) -> tuple[dict, dict[str, str]]:
    """Return the Gi* summary a letter shows (classes counted, the hottest grids listed) and
    the class of every significant grid (for the map)."""
    r = gistar_result(conn, f, SPEC, v)
    classes = r.classes()
    significant = {
        code: c
        for code, c in zip(r.layer.codes, classes, strict=True)
        if c.startswith(("hot", "cold"))
    }
    hot = [i for i, c in enumerate(classes) if c.startswith("hot")]
    hot.sort(key=lambda i: (-float(np.nan_to_num(r.gi.z[i], nan=-1e9)), r.layer.codes[i]))
    shown = hot[:listed]
    places = _districts(conn, [r.layer.codes[i] for i in shown])
    grids = [
        {
            "code": r.layer.codes[i],
            "name": r.layer.names[i],
            "district": places.get(r.layer.codes[i], (None, None))[0],
            "district_name": places.get(r.layer.codes[i], (None, None))[1],
            "count": int(r.counts[i]),
            "z": rounded(r.gi.z[i], 3),
            "p": rounded(r.gi.p[i]),
            "class": classes[i],
        }
        for i in shown
    ]
    summary = {
        "method": {
            "statistic": "Getis-Ord Gi*",
            "weights": SPEC.weights,
            "permutations": SPEC.permutations,
            "seed": SPEC.seed,
            "fdr": SPEC.fdr,
        },
        "total": int(r.counts.sum()),
        "classes": {c: int((r.gi.bins == b).sum()) for b, c in CLASSES.items()},
        "hot": len(hot),
        "grids": grids,
    }
    return summary, significant


def step_for(since: datetime, until: datetime) -> str | None:
    """Return the slicing of a period: day, week or month; None under three days (or over
    156 months)."""
    days = slice_count(since, until, "day")
    if days < 3:
        return None
    if days <= 31:
        return "day"
    if slice_count(since, until, "week") <= MAX_SLICES:
        return "week"
    return "month" if slice_count(since, until, "month") <= MAX_SLICES else None


def _slice_start(since: datetime, step: str, k: int) -> datetime:
    if step == "day":
        return since + timedelta(days=k)
    if step == "week":
        return since + timedelta(weeks=k)
    if k == 0:
        return since
    months = since.month - 1 + k  # later month slices start on the 1st (UTC, as emerging cuts)
    return since.replace(
        year=since.year + months // 12, month=months % 12 + 1, day=1, hour=0, minute=0, second=0
    )


def trend(conn: Connection, f: ReportFilter, v: Versions, listed: int) -> dict:
    """Return the emerging hot spot trend a letter shows: patterns counted, the grids whose
    pattern warns (new, growing or holding hot spots), and reports per slice."""
    assert f.since is not None and f.until is not None  # noqa: S101 - remit.resolve fills them
    step = step_for(f.since, f.until)
    if step is None:
        return {"step": None, "note": "the period is too short (under 3 days) for a trend"}
    body, _ = emerging_geojson(conn, f, EmergingSpec(step), v)
    found = orjson.loads(body)
    warn = [
        feat["properties"]
        for feat in found["features"]
        if feat["properties"]["pattern"] in WARNING_PATTERNS
    ]
    warn.sort(key=lambda p: (WARNING_PATTERNS.index(p["pattern"]), -p["count"], p["code"]))
    n = found["slices"]
    series = counts_by_slice(conn, f, grid_layer(conn, v), step, n).sum(axis=1)
    return {
        "step": step,
        "slices": n,
        "patterns": found["patterns"],
        "warning": len(warn),
        "grids": [
            {k: p[k] for k in ("code", "name", "pattern", "count", "hot_slices", "trend_tau")}
            for p in warn[:listed]
        ],
        "series": [
            {"start": _slice_start(f.since, step, k).isoformat(), "count": int(c)}
            for k, c in enumerate(series)
        ],
    }
