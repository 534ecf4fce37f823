"""Report file import: one transaction, refused rows listed in row order, the rest loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from boundaries.importer import ImportOptions
from boundaries.importer import import_file as import_boundaries
from boundaries.report_import import ReportOutcome, format_outcome, import_file
from geo.errors import InvalidInput
from geo.settings import ImportSettings, ReportSettings
from tests.factories import grid_frame, point_m, tiled, write

RULES = ReportSettings()


@pytest.fixture
def grids(db, tmp_path):
    path = write(grid_frame(tiled(2)), tmp_path / "g.geojson")
    import_boundaries(db, path, ImportOptions(), ImportSettings())
    return db


def _csv(path: Path, *rows: tuple[float, float, str]) -> Path:
    lines = ["lon,lat,theme,category,reported_at"]
    lines += [f"{lon},{lat},{theme},gas_leak,2024-08-23 10:00" for lon, lat, theme in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Progress:
    """Records what an import tells its progress display."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.chunks: list[int] = []

    def __call__(self, total: int):
        self.total = total
        return self.chunks.append


def test_fit_rows_load_and_refusals_from_file_and_database_come_in_row_order(grids, tmp_path):
    inside, far = point_m(250, 250), point_m(60_000, 0)  # far: outside the service area
    path = _csv(tmp_path / "r.csv", (*far, "gas"), (*inside, "weather"), (*inside, "gas"))
    progress = Progress()
    out = import_file(grids, path, RULES, progress)
    assert (out.rows, out.inserted, out.already_stored) == (3, 1, 0)
    assert [n for n, _ in out.errors] == [2, 3]
    assert "service area" in out.errors[0][1] and "unknown theme" in out.errors[1][1]
    assert out.by_method == {"inside": 1} and not out.refused_all
    assert progress.total == 2 and sum(progress.chunks) == 2  # the rows the file check let by
    again = import_file(grids, path, RULES)
    assert (again.inserted, again.already_stored, len(again.errors)) == (0, 1, 2)


def test_a_file_of_refused_rows_stores_nothing_and_says_so(grids, tmp_path):
    out = import_file(grids, _csv(tmp_path / "r.csv", (125.0, 95.0, "gas")), RULES)
    assert out.refused_all and out.as_dict()["refused"] == 1
    with grids.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM reports")).scalar_one() == 0


def test_a_file_lacking_columns_is_refused_whole(grids, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("lon,lat\n125,46\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"lacks columns \['theme', 'category'\]"):
        import_file(grids, path, RULES)


def test_printed_report_shows_200_refusals_then_points_to_json():
    errors = [(n, "unknown theme 'x'") for n in range(2, 207)]
    out = ReportOutcome(Path("r.csv"), 205, 0, 0, {}, 0.5, errors)
    lines = format_outcome(out).splitlines()
    assert lines[0] == (
        "r.csv: 205 row(s): 0 stored, 0 already stored, 205 refused (0.5 s); assignment: {}"
    )
    assert len(lines) == 202 and lines[-1] == "  … and 5 more (use --json for all)"


def test_import_is_audited_with_its_counts(grids, tmp_path):
    from geo.identity.audit import AuditFilter, entries
    from geo.identity.principal import Principal
    from geo.vocabulary import Role

    inside = point_m(250, 250)
    path = _csv(tmp_path / "r.csv", (*inside, "gas"), (*inside, "weather"))
    import_file(grids, path, RULES, who=Principal(3, "li", Role.ADMIN))
    import_file(grids, path, RULES)
    with grids.connect() as conn:
        again, first = entries(conn, AuditFilter(action="import.reports"), 10, None)["entries"]
    assert (first["actor"], first["object_type"], first["object_id"]) == ("li", "file", "r.csv")
    assert first["changes"] == {
        "rows": 2, "inserted": 1, "already_stored": 0, "refused": 1, "by_method": {"inside": 1},
    }  # fmt: skip
    assert again["actor"] == "system"
    assert (again["changes"]["inserted"], again["changes"]["already_stored"]) == (0, 1)
