"""`riskgrid households import`: read a household file, check it row by row, and upsert the rows
fit to store (by code) in one transaction, each assigned to its grid; a refused row is listed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from geo.identity import audit
from geo.identity.principal import SYSTEM, Principal
from geo.risk import households
from geo.risk.household_files import read_households
from geo.settings import ReportSettings

SHOWN_ERRORS = 200  # in the printed report; --json lists every one


@dataclass
class HouseholdOutcome:
    """What a household file import stored, and each refused row."""

    path: Path
    received: int
    stored: int  # added or changed
    unassigned: int  # among those stored: outside every grid
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)

    @property
    def refused_all(self) -> bool:
        """Return whether rows were refused and none was fit to load."""
        return bool(self.errors) and not self.received

    def as_dict(self) -> dict[str, Any]:
        """Return the outcome as JSON-ready data."""
        return {
            "received": self.received,
            "stored": self.stored,
            "unassigned": self.unassigned,
            "refused": len(self.errors),
            "errors": [{"row": n, "error": e} for n, e in self.errors],
        }


def import_file(
    engine: Engine,
    path: Path,
    rules: ReportSettings,
    progress: Callable[[int], Callable[[int], None]] | None = None,
    who: Principal = SYSTEM,
) -> HouseholdOutcome:
    """Check and upsert a CSV or GeoJSON household file in one transaction, audited
    (`import.households`, as `who`) in it; return what it did.

    Households are assigned to grids by the report rules (`rules.snap_tolerance_m`).
    `progress`, when given, is told the number of rows to load once the file is read, and
    returns the callback told of each chunk of rows stored.
    """
    parsed = read_households(path)
    with engine.begin() as conn:
        update = progress(len(parsed.rows)) if progress else None
        counts = households.load(conn, parsed.rows, rules.snap_tolerance_m, update)
        outcome = HouseholdOutcome(
            path=path,
            received=counts["received"],
            stored=counts["stored"],
            unassigned=counts["unassigned"],
            errors=parsed.errors,
        )
        changes = {k: v for k, v in outcome.as_dict().items() if k != "errors"}
        audit.record(conn, who, "import.households", "file", path.name, changes)
    return outcome


def format_outcome(outcome: HouseholdOutcome) -> str:
    """Return the human-readable report printed by the CLI."""
    o = outcome
    lines = [
        f"{o.path.name}: {o.received} household(s) read, {o.stored} added or changed, "
        f"{o.unassigned} outside every grid, {len(o.errors)} refused"
    ]
    lines += [f"  row {n}: {e}" for n, e in o.errors[:SHOWN_ERRORS]]
    return "\n".join(lines)
