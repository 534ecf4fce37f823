import numpy as np
import prcoords
import pytest

from geo.coords import (
    SourceCRS,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_to_gcj02,
)

# 大庆 points: 萨尔图 centre, 让胡路 旭园街道, 大同区 太阳升镇, 林甸.
POINTS = [(125.0300, 46.6000), (124.8700, 46.6500), (124.6800, 46.1000), (124.8700, 47.1800)]


@pytest.mark.parametrize(("lon", "lat"), POINTS)
def test_gcj02_forward_matches_prcoords(lon, lat):
    ref = prcoords.wgs_gcj(prcoords.Coords(lat, lon))
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon == pytest.approx(ref.lon, abs=1e-12)
    assert glat == pytest.approx(ref.lat, abs=1e-12)


@pytest.mark.parametrize(("lon", "lat"), POINTS)
def test_gcj02_inverse_recovers_wgs84_to_a_millimetre(lon, lat):
    glon, glat = wgs84_to_gcj02(lon, lat)
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    # 1e-8 degrees is about a millimetre; a one-step inverse is off by metres.
    assert abs(wlon - lon) < 1e-8 and abs(wlat - lat) < 1e-8


@pytest.mark.parametrize(("lon", "lat"), POINTS)
def test_bd09_round_trip_against_prcoords(lon, lat):
    ref = prcoords.wgs_bd(prcoords.Coords(lat, lon))
    blon, blat = gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))
    assert blon == pytest.approx(ref.lon, abs=1e-9)
    assert blat == pytest.approx(ref.lat, abs=1e-9)
    wlon, wlat = bd09_to_wgs84(ref.lon, ref.lat)
    assert abs(wlon - lon) < 1e-8 and abs(wlat - lat) < 1e-8


def test_gcj02_offset_in_daqing_is_hundreds_of_metres():
    # The offset is why GCJ-02 positions must be converted: ~590 m at Daqing's centre.
    glon, glat = wgs84_to_gcj02(125.03, 46.59)
    dx = (glon - 125.03) * 111_320 * np.cos(np.radians(46.59))
    dy = (glat - 46.59) * 110_574
    assert 400 < np.hypot(dx, dy) < 800


def test_outside_china_is_not_shifted():
    lon, lat = wgs84_to_gcj02(2.35, 48.85)
    assert (lon, lat) == (2.35, 48.85)


def test_to_wgs84_dispatches_on_crs_and_accepts_arrays():
    lons, lats = np.array([125.03, 124.87]), np.array([46.6, 46.65])
    g = wgs84_to_gcj02(lons, lats)
    back = to_wgs84(*g, SourceCRS.GCJ02)
    np.testing.assert_allclose(back[0], lons, atol=1e-8)
    assert to_wgs84(125.0, 46.0, "cgcs2000") == (125.0, 46.0)
    with pytest.raises(ValueError, match="not a valid SourceCRS"):
        to_wgs84(125.0, 46.0, "utm")
