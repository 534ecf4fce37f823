"""Household file import: checked rows upserted by code in one transaction, refusals listed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from boundaries.household_import import HouseholdOutcome, format_outcome, import_file
from boundaries.importer import ImportOptions
from boundaries.importer import import_file as import_boundaries
from geo.errors import InvalidInput
from geo.settings import ImportSettings, ReportSettings
from tests.factories import grid_frame, point_m, tiled, write

RULES = ReportSettings()


@pytest.fixture
def grids(db, tmp_path):
    path = write(grid_frame(tiled(2)), tmp_path / "g.geojson")
    import_boundaries(db, path, ImportOptions(), ImportSettings())
    return db


def _csv(path: Path, *rows: str) -> Path:
    path.write_text("\n".join(["code,lon,lat,members", *rows]) + "\n", encoding="utf-8")
    return path


def test_households_are_upserted_assigned_and_refusals_listed(grids, tmp_path):
    (lon, lat), (far_lon, far_lat) = point_m(250, 250), point_m(60_000, 0)
    path = _csv(
        tmp_path / "hh.csv", f"H1,{lon},{lat},2", f"H2,{lon},{lat},0", f"H3,{far_lon},{far_lat},1"
    )
    told: list[int] = []

    def progress(total: int):
        told.append(total)
        return told.append

    out = import_file(grids, path, RULES, progress)
    assert (out.received, out.stored, out.unassigned) == (2, 2, 1)
    assert out.errors == [(3, "members must be a whole number 1-50")] and not out.refused_all
    assert told == [2, 2]  # the total first, then the one chunk stored
    assert import_file(grids, path, RULES).stored == 0
    with grids.connect() as conn:
        got = conn.execute(text("SELECT code, grid_code FROM households ORDER BY code")).all()
    assert [tuple(r) for r in got] == [("H1", "230602001001001"), ("H3", None)]


def test_a_file_of_refused_rows_is_refused_all(grids, tmp_path):
    out = import_file(grids, _csv(tmp_path / "hh.csv", "H1,125,95,1"), RULES)
    assert out.refused_all
    assert out.as_dict() == {
        "received": 0, "stored": 0, "unassigned": 0, "refused": 1,
        "errors": [{"row": 2, "error": "lat within -90..90 and lon within -180..180"}],
    }  # fmt: skip


def test_a_missing_file_is_named(grids, tmp_path):
    with pytest.raises(InvalidInput, match="no such file"):
        import_file(grids, tmp_path / "none.csv", RULES)


def test_printed_report_counts_and_lists_refusals():
    out = HouseholdOutcome(Path("hh.csv"), 3, 1, 0, [(4, "code is required")])
    assert format_outcome(out).splitlines() == [
        "hh.csv: 3 household(s) read, 1 added or changed, 0 outside every grid, 1 refused",
        "  row 4: code is required",
    ]


def test_import_is_audited_with_its_counts(grids, tmp_path):
    from geo.identity.audit import AuditFilter, entries

    lon, lat = point_m(250, 250)
    import_file(grids, _csv(tmp_path / "hh.csv", f"H1,{lon},{lat},2", f"H2,{lon},{lat},0"), RULES)
    with grids.connect() as conn:
        (entry,) = entries(conn, AuditFilter(action="import.households"), 10, None)["entries"]
    assert (entry["actor"], entry["role"], entry["object_id"]) == ("system", "admin", "hh.csv")
    assert entry["changes"] == {"received": 1, "stored": 1, "unassigned": 0, "refused": 1}
