"""Check boundary features before import: repair what can be repaired, report everything.

Findings come in two severities. `error`: the feature is left out of a default import (empty,
degenerate, unknown kind, duplicate or missing code). `warning`: the feature is imported but
something is off (repaired geometry, overlap, gap, outside its district). `--strict` refuses
the file on any finding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.errors import InvalidInput
from geo.geometry import repair_polygonal
from geo.settings import ImportSettings

KIND_ALIASES = {
    "comprehensive": "comprehensive",
    "综合": "comprehensive",
    "综合网格": "comprehensive",
    "1": "comprehensive",
    "c": "comprehensive",
    "exclusive": "exclusive",
    "专属": "exclusive",
    "专属网格": "exclusive",
    "2": "exclusive",
    "e": "exclusive",
    "special": "exclusive",
}
LEVEL_ALIASES = {
    "city": "city",
    "市": "city",
    "district": "district",
    "county": "district",
    "区县": "district",
    "区": "district",
    "县": "district",
    "street": "street",
    "township": "street",
    "街道": "street",
    "乡镇": "street",
    "镇": "street",
    "乡": "street",
    "community": "community",
    "village": "community",
    "社区": "community",
    "村": "community",
}
MAX_FINDING_GEOMS = 50  # keep the JSON report readable on a badly broken file


@dataclass
class Finding:
    """One problem found in a boundary file."""

    check: str
    severity: str  # "error" (feature left out) or "warning" (imported, but look at it)
    codes: list[str]
    message: str
    area_m2: float | None = None
    where: str | None = None  # WKT of the problem area (overlap, gap) when useful


@dataclass
class ValidationReport:
    """All findings for one file, and how many features are fit to import."""

    source: str
    layer: str
    features: int
    importable: int
    source_crs: str
    encoding: str | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    def counts(self) -> dict[str, int]:
        """Return the number of findings per check."""
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.check] = out.get(f.check, 0) + 1
        return out

    def as_dict(self) -> dict:
        """Return the report as plain JSON-ready data."""
        return {
            "source": self.source,
            "layer": self.layer,
            "features": self.features,
            "importable": self.importable,
            "source_crs": self.source_crs,
            "encoding": self.encoding,
            "counts": self.counts(),
            "findings": [asdict(f) for f in self.findings],
        }


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    s = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        s = str(int(value))  # shapefiles store numeric codes as floats
    return s or None


def normalise(frame: gpd.GeoDataFrame, columns: dict[str, str], layer: str) -> gpd.GeoDataFrame:
    """Return a frame with the canonical columns (code, name, kind/level, …) as text or int."""
    out = gpd.GeoDataFrame(geometry=frame.geometry.values, crs=frame.crs)
    for role, col in columns.items():
        if role == "population":
            out[role] = pd.to_numeric(frame[col], errors="coerce").astype("Int64").values
        else:
            # object dtype keeps None as None (pandas' str dtype would turn it into NaN)
            out[role] = pd.Series([_text(v) for v in frame[col]], dtype=object).values
    if layer == "grids":
        if "kind" not in out:
            out["kind"] = "comprehensive"
        else:
            out["kind_raw"] = out["kind"]
            kinds = [KIND_ALIASES.get((k or "comprehensive").lower()) for k in out["kind"]]
            out["kind"] = pd.Series(kinds, dtype=object).values
    else:
        out["level_raw"] = out["level"]
        levels = [LEVEL_ALIASES.get((v or "").lower()) for v in out["level"]]
        out["level"] = pd.Series(levels, dtype=object).values
    for role in ("name", "category", "community_code", "district_code", "parent_code"):
        if role not in out:
            out[role] = pd.Series([None] * len(out), dtype=object).values
    if "population" not in out:
        out["population"] = pd.array([None] * len(out), dtype="Int64")
    return out


def _area_m2(geoms: np.ndarray | list, utm: object) -> np.ndarray:
    """Return the areas in m² of EPSG:4326 geometries, measured in the data's UTM zone.

    Topology is tested where it is stored (EPSG:4326, as PostGIS will see it); only the
    measuring is projected. A sliver can exist in one CRS and not in another.
    """
    if len(geoms) == 0:
        return np.zeros(0)
    return gpd.GeoSeries(list(geoms), crs=4326).to_crs(utm).area.to_numpy()


def _codes(frame: gpd.GeoDataFrame, idx: np.ndarray | list[int]) -> list[str]:
    return [c or f"#{i}" for i, c in zip(idx, frame["code"].iloc[list(idx)], strict=True)]


def validate(
    frame: gpd.GeoDataFrame,
    layer: str,
    tolerances: ImportSettings,
    districts: gpd.GeoDataFrame | None = None,
    communities: gpd.GeoDataFrame | None = None,
) -> tuple[gpd.GeoDataFrame, list[Finding]]:
    """Return the features fit to import (repaired where needed) and every finding.

    `districts` and `communities` (code, geometry in EPSG:4326) enable the checks that need
    the administrative outlines: grids outside their district and gaps inside a community.
    """
    if frame.empty:
        raise InvalidInput("the file holds no features")
    findings: list[Finding] = []
    frame = frame.copy()
    fixed = _check_geometries(frame, findings)
    keep = np.fromiter((g is not None for g in fixed), dtype=bool, count=len(fixed))
    frame = frame.set_geometry(gpd.GeoSeries(fixed, crs=frame.crs, index=frame.index))
    keep &= _check_codes(frame, findings)
    keep &= _check_role(frame, layer, keep, findings)
    if layer == "grids":
        _fill_district(frame, districts)
    ok = frame[keep].copy()
    if layer == "grids" and len(ok):
        findings += _check_topology(ok, tolerances, districts, communities)
    return ok, findings


def _check_geometries(
    frame: gpd.GeoDataFrame, findings: list[Finding]
) -> list[shapely.MultiPolygon | None]:
    """Return each feature's geometry as stored (None when it cannot be); add the findings."""
    fixed: list[shapely.MultiPolygon | None] = []
    for i, g in enumerate(frame.geometry.values):
        poly, finding = _checked_geometry(g, frame["code"].iat[i] or f"#{i}")
        if finding is not None:
            findings.append(finding)
        fixed.append(poly)
    return fixed


def _checked_geometry(
    g: shapely.Geometry | None, code: str
) -> tuple[shapely.MultiPolygon | None, Finding | None]:
    """Return the geometry to store (None: left out) and what was found: empty, invalid
    (repaired or not), or degenerate."""
    if g is None or g.is_empty:
        return None, Finding("empty_geometry", "error", [code], "feature has no geometry")
    repair = repair_polygonal(g)
    poly = repair.polygons
    if repair.reason is not None:
        if poly is None:
            message = f"invalid and not repairable: {repair.reason}"
            return None, Finding("invalid_geometry", "error", [code], message)
        message = f"invalid ({repair.reason}); repaired to a {poly.geom_type}"
        return poly, Finding("repaired_geometry", "warning", [code], message)
    if poly is None:
        message = f"{g.geom_type} with no area cannot be a grid"
        return None, Finding("degenerate_geometry", "error", [code], message)
    return poly, None


def _check_codes(frame: gpd.GeoDataFrame, findings: list[Finding]) -> np.ndarray:
    """Return which features have a code of their own; add the missing and repeated ones."""
    missing = frame["code"].isna().to_numpy()
    for i in np.flatnonzero(missing):
        findings.append(Finding("missing_code", "error", [f"#{i}"], "feature has no code"))
    dupes = frame["code"].duplicated(keep=False).to_numpy() & ~missing
    for code in sorted(set(frame.loc[dupes, "code"])):
        n = int((frame["code"] == code).sum())
        findings.append(
            Finding(
                "duplicate_code",
                "error",
                [code],
                f"code appears {n} times; none of them is imported",
            )
        )
    return ~missing & ~dupes


def _check_role(
    frame: gpd.GeoDataFrame, layer: str, keep: np.ndarray, findings: list[Finding]
) -> np.ndarray:
    """Return which features have a known kind (grids) or level (areas); add a finding for
    each unknown one among those still kept."""
    role = "kind" if layer == "grids" else "level"
    bad_role = frame[role].isna().to_numpy()
    for i in np.flatnonzero(bad_role & keep):
        raw = frame[f"{role}_raw"].iat[i] if f"{role}_raw" in frame else None
        findings.append(
            Finding(
                f"unknown_{role}",
                "error",
                [frame["code"].iat[i]],
                f"{role} {raw!r} is not one of the known values",
            )
        )
    return ~bad_role


def _check_topology(
    grids: gpd.GeoDataFrame,
    tolerances: ImportSettings,
    districts: gpd.GeoDataFrame | None,
    communities: gpd.GeoDataFrame | None,
) -> list[Finding]:
    """Return the findings between grids: overlaps, parts outside the district, gaps."""
    findings = _overlaps(grids, tolerances.overlap_tolerance_m2)
    if districts is not None and len(districts):
        findings += _outside(grids, districts, tolerances.outside_tolerance_m2)
    findings += _gaps(grids, communities, tolerances.gap_tolerance_m2)
    return findings


def _fill_district(frame: gpd.GeoDataFrame, districts: gpd.GeoDataFrame | None) -> None:
    # Grid codes start with their division code (6 digits), so the district can be read from it.
    if districts is None or not len(districts):
        return
    known = set(districts["code"])
    filled = []
    for code, district in zip(frame["code"], frame["district_code"], strict=True):
        if district is None and code is not None and code[:6] in known:
            district = code[:6]
        filled.append(district)
    frame["district_code"] = filled


def _overlaps(frame: gpd.GeoDataFrame, tol: float) -> list[Finding]:
    findings: list[Finding] = []
    utm = frame.geometry.estimate_utm_crs()
    for kind in ("comprehensive", "exclusive"):
        idx = np.flatnonzero((frame["kind"] == kind).to_numpy())
        if len(idx) < 2:
            continue
        geoms = frame.geometry.values[idx]
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="intersects")
        pairs = left < right
        left, right = left[pairs], right[pairs]
        # Interiors that meet in two dimensions: touching along an edge is not an overlap.
        inner = shapely.relate_pattern(geoms[left], geoms[right], "2********")
        left, right = left[inner], right[inner]
        if not len(left):
            continue
        shared = shapely.intersection(geoms[left], geoms[right])
        areas = _area_m2(shared, utm)
        for a, b, area, where in zip(left, right, areas, shared, strict=True):
            if area > tol:
                findings.append(
                    Finding(
                        "overlap",
                        "warning",
                        _codes(frame, [idx[a], idx[b]]),
                        f"{kind} grids overlap by {area:,.1f} m²",
                        float(area),
                        where.wkt if len(findings) < MAX_FINDING_GEOMS else None,
                    )
                )
    return findings


def _outside(frame: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, tol: float) -> list[Finding]:
    findings: list[Finding] = []
    outlines = dict(zip(districts["code"], districts.geometry.values, strict=True))
    has = frame["district_code"].isin(list(outlines)).to_numpy()
    if not has.any():
        return findings
    sub = frame[has]
    outside = shapely.difference(
        sub.geometry.values, np.array([outlines[c] for c in sub["district_code"]])
    )
    areas = _area_m2(outside, frame.geometry.estimate_utm_crs())
    for i in np.flatnonzero(areas > tol):
        findings.append(
            Finding(
                "outside_district",
                "warning",
                [sub["code"].iat[i]],
                f"{areas[i]:,.1f} m² of the grid lies outside its district "
                f"{sub['district_code'].iat[i]}",
                float(areas[i]),
            )
        )
    return findings


def _gaps(
    frame: gpd.GeoDataFrame, communities: gpd.GeoDataFrame | None, tol: float
) -> list[Finding]:
    """Gaps: community outline not covered by its comprehensive grids, or holes in their union."""
    findings: list[Finding] = []
    comp = frame[(frame["kind"] == "comprehensive") & frame["community_code"].notna()]
    if comp.empty:
        return findings
    utm = frame.geometry.estimate_utm_crs()
    outlines: dict[str, shapely.Geometry] = {}
    if communities is not None and len(communities):
        outlines = dict(zip(communities["code"], communities.geometry.values, strict=True))
    for community, geoms in comp.geometry.groupby(comp["community_code"].values):
        union = shapely.union_all(geoms.values)
        if community in outlines:
            gap = shapely.difference(outlines[community], union)
        else:
            holes = [shapely.polygons(r) for p in shapely.get_parts(union) for r in p.interiors]
            gap = shapely.union_all(holes) if holes else shapely.Polygon()
        parts = shapely.get_parts(gap)
        areas = _area_m2(parts, utm)
        pieces = [g for g, a in zip(parts, areas, strict=True) if a > tol]
        if pieces:
            area = float(areas[areas > tol].sum())
            findings.append(
                Finding(
                    "gap",
                    "warning",
                    [str(community)],
                    f"{len(pieces)} gap(s) of {area:,.1f} m² inside community {community} "
                    "are covered by no comprehensive grid",
                    area,
                    shapely.union_all(pieces).wkt if len(findings) < MAX_FINDING_GEOMS else None,
                )
            )
    return findings
