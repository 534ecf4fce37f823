"""Query polygons measured so none slips under the size cap, and small counts withheld so none
can be told from the rest (no database needed)."""

from __future__ import annotations

import pytest
import shapely
from pyproj import Geod

from geo.errors import InvalidInput
from geo.risk.area_query import _equal_area_km2, _geodesic_km2, check_area
from geo.risk.households import COUNTS, withhold
from geo.settings import RiskSettings

RULES = RiskSettings()


def test_an_edge_across_the_antimeridian_is_refused():
    ring = [(-180, 40), (180, 40), (180, 50), (-180, 50)]
    # What let it through before: the geodesic area of this ring is 0.
    assert Geod(ellps="WGS84").geometry_area_perimeter(shapely.Polygon(ring))[0] == 0
    with pytest.raises(InvalidInput, match="antimeridian"):
        check_area(shapely.Polygon(ring), True, RULES)
    small_but_across = shapely.Polygon([(179.9, 46), (-179.9, 46), (-179.9, 46.1), (179.9, 46.1)])
    with pytest.raises(InvalidInput, match=r"from longitude 179\.9 to -179\.9"):
        check_area(small_but_across, True, RULES)


@pytest.mark.parametrize(
    "ring",
    [
        [(0, 0), (180, 0), (180, 1), (0, 1)],  # edges of exactly 180°: geodesic area 0
        [(-180, 46), (-60, 46), (60, 46), (180, 46), (180, 47), (60, 47), (-60, 47), (-180, 47)],
    ],
)
def test_a_ring_around_the_globe_is_measured_by_its_planar_area_too(ring):
    poly = shapely.Polygon(ring)
    assert _equal_area_km2(poly) > 1e6
    with pytest.raises(InvalidInput, match="km²"):
        check_area(poly, True, RULES)


def test_a_polygon_over_daqing_and_more_is_too_large_on_both_measures():
    poly = shapely.box(123.0, 45.0, 127.0, 48.0)
    assert _geodesic_km2(poly) > 100_000 and _equal_area_km2(poly) > 100_000
    with pytest.raises(InvalidInput, match="more than 2,000 km²"):
        check_area(poly, True, RULES)


@pytest.mark.parametrize("size_deg", [0.0001, 0.05, 0.4])
def test_the_planar_measure_agrees_with_the_geodesic_one_at_city_sizes(size_deg):
    poly = shapely.box(125.0, 46.5, 125.0 + size_deg, 46.5 + size_deg)
    assert _equal_area_km2(poly) == pytest.approx(_geodesic_km2(poly), rel=0.005)
    assert check_area(poly, True, RULES).geom.equals(shapely.MultiPolygon([poly]))


def _row(**counts) -> dict:
    return {c: counts.get(c, 0) for c in COUNTS}


def test_counts_from_one_to_k_minus_one_are_withheld_with_the_whole_row_when_few():
    few = _row(households=2, residents=3, over_60=1)
    many = _row(households=12, residents=30, over_60=4, living_alone=7)
    rows = [few, many]
    withhold(rows, 5)
    assert all(few[c] is None for c in COUNTS) and few["suppressed"]  # zeros too
    assert many["households"] == 12 and many["over_60"] is None and many["living_alone"] == 7
    assert many["mobility_needs"] == 0 and many["suppressed"]


def test_exact_rows_are_left_alone():
    rows = [_row(households=1, residents=1)]
    withhold(rows, 5, exact=[True])
    assert rows[0]["households"] == 1 and rows[0]["suppressed"] is False


def test_a_withheld_count_cannot_be_told_from_the_total():
    rows = [_row(households=8, residents=20), _row(households=1, residents=1)]
    total = _row(households=9, residents=21)
    withhold(rows, 5, total=total)
    # 9 - 8 would give the one household away: the 8 is withheld as well.
    assert [r["households"] for r in rows] == [None, None] and total["households"] == 9
    assert all(r["suppressed"] for r in rows) and total["suppressed"] is False


def test_the_total_is_withheld_when_no_other_count_can_be():
    rows = [_row(households=8, residents=20), _row(households=1, residents=1)]
    total = _row(households=9, residents=21)
    withhold(rows, 5, exact=[True, False], total=total)
    assert [r["households"] for r in rows] == [8, None]
    assert total["households"] is None and total["suppressed"]


def test_what_is_withheld_together_may_be_told_when_it_is_k_or_more():
    rows = [_row(households=20), _row(households=3), _row(households=3)]
    total = _row(households=26)
    withhold(rows, 5, total=total)
    assert [r["households"] for r in rows] == [20, None, None] and total["households"] == 26
