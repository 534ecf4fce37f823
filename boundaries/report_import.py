"""`riskgrid reports import`: read a report file, check it row by row, and load the rows fit to
store in one transaction, assigned to grids in bulk; a refused row is listed, not fatal."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from geo.campaigns.store import list_campaigns
from geo.identity import audit
from geo.identity.principal import SYSTEM, Principal
from geo.reports.bulk import load
from geo.reports.files import read_reports
from geo.settings import ReportSettings

SHOWN_ERRORS = 200  # in the printed report; --json lists every one


@dataclass
class ReportOutcome:
    """What a report file import stored, how the rows were assigned, and each refused row."""

    path: Path
    rows: int
    inserted: int
    already_stored: int
    by_method: dict[str, int]
    seconds: float
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason), sorted

    @property
    def refused_all(self) -> bool:
        """Return whether rows were refused and none is stored, from this import or before."""
        return bool(self.errors) and self.inserted + self.already_stored == 0

    def as_dict(self) -> dict[str, Any]:
        """Return the outcome as JSON-ready data."""
        return {
            "rows": self.rows,
            "inserted": self.inserted,
            "already_stored": self.already_stored,
            "refused": len(self.errors),
            "by_method": self.by_method,
            "seconds": self.seconds,
            "errors": [{"row": n, "error": e} for n, e in self.errors],
        }


def import_file(
    engine: Engine,
    path: Path,
    rules: ReportSettings,
    progress: Callable[[int], Callable[[int], None]] | None = None,
    who: Principal = SYSTEM,
) -> ReportOutcome:
    """Check and load a CSV or GeoJSON report file in one transaction, audited
    (`import.reports`, as `who`) in it; return what it did.

    `progress`, when given, is told the number of rows to load once the file is read, and
    returns the callback told of each chunk of rows stored.
    """
    t0 = time.perf_counter()
    with engine.begin() as conn:
        campaigns = {c["code"] for c in list_campaigns(conn)}
        parsed = read_reports(path, rules, campaigns)
        update = progress(len(parsed.rows)) if progress else None
        result = load(conn, parsed.rows, rules, progress=update)
        outcome = ReportOutcome(
            path=path,
            rows=len(parsed.rows) + len(parsed.errors),
            inserted=result.inserted,
            already_stored=result.existing,
            by_method=result.by_method,
            seconds=round(time.perf_counter() - t0, 2),
            errors=sorted(parsed.errors + result.refused),
        )
        counts = {k: v for k, v in outcome.as_dict().items() if k not in ("seconds", "errors")}
        audit.record(conn, who, "import.reports", "file", path.name, counts)
    return outcome


def format_outcome(outcome: ReportOutcome) -> str:
    """Return the human-readable report printed by the CLI."""
    o = outcome
    lines = [
        f"{o.path.name}: {o.rows} row(s): {o.inserted} stored, {o.already_stored} already "
        f"stored, {len(o.errors)} refused ({o.seconds} s); assignment: {o.by_method}"
    ]
    lines += [f"  row {n}: {e}" for n, e in o.errors[:SHOWN_ERRORS]]
    if len(o.errors) > SHOWN_ERRORS:
        lines.append(f"  … and {len(o.errors) - SHOWN_ERRORS} more (use --json for all)")
    return "\n".join(lines)
