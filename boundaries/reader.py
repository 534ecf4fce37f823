"""Read boundary files (GeoJSON, GeoPackage, Shapefile, zipped Shapefile, FlatGeobuf) into WGS-84.

Real files name their columns their own way and Chinese shapefiles often carry GBK/GB18030
attributes with no `.cpg`; this module decides the encoding, the CRS and which column is which.
"""

from __future__ import annotations

import json
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import charset_normalizer
import geopandas as gpd
import pyogrio
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo.errors import InvalidInput

SUPPORTED = {".geojson", ".json", ".gpkg", ".shp", ".zip", ".fgb"}

# Column names seen in real grid files, tried in order when no --*-field is given.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "code": ("code", "grid_code", "网格编码", "网格代码", "wgbm", "wgdm", "bm", "编码", "dm"),
    "name": ("name", "grid_name", "网格名称", "wgmc", "mc", "名称"),
    "kind": ("kind", "grid_kind", "网格类型", "wglx", "lx", "类型", "type"),
    "category": ("category", "专属类型", "zslx", "subtype"),
    # Shapefiles cut names to 10 characters: "community_code" comes back as "community_".
    "community_code": ("community_code", "community_", "社区编码", "sqbm", "community"),
    "district_code": ("district_code", "district_c", "区县编码", "qxbm", "district"),
    "population": ("population", "人口", "rk", "pop"),
    "level": ("level", "层级", "jb"),
    "parent_code": ("parent_code", "parent_cod", "上级编码", "sjbm", "parent"),
}
REQUIRED = {"grids": ("code", "name"), "areas": ("code", "name", "level")}


@dataclass
class FileRead:
    """A boundary file read into WGS-84 with its provenance."""

    frame: gpd.GeoDataFrame
    source_crs: str
    encoding: str | None
    layer: str | None
    columns: list[str] = field(default_factory=list)


def _zip_members(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


def _zip_shapefile(path: Path, layer: str | None) -> str:
    """Return the member path of the one shapefile inside a zip (or the one named `layer`)."""
    shps = [n for n in _zip_members(path) if n.lower().endswith(".shp")]
    if layer is not None:
        shps = [n for n in shps if Path(n).stem == layer]
    if not shps:
        raise InvalidInput(
            f"{path.name} holds no shapefile" + (f" named {layer!r}" if layer else "")
        )
    if len(shps) > 1:
        stems = [Path(n).stem for n in shps]
        raise InvalidInput(
            f"{path.name} holds several shapefiles {stems}: choose one with --file-layer"
        )
    return shps[0]


def _dbf_bytes(path: Path, member: str | None = None) -> tuple[bytes, str | None] | None:
    """Return the DBF's text bytes (header field names and records) and any .cpg content."""
    if member is not None:
        stem = member[: -len(".shp")]
        with zipfile.ZipFile(path) as zf:
            names = {n.lower(): n for n in zf.namelist()}
            dbf, cpg = names.get(f"{stem}.dbf".lower()), names.get(f"{stem}.cpg".lower())
            if dbf is None:
                return None
            data = zf.read(dbf)
            cpg_text = zf.read(cpg).decode("ascii", "replace").strip() if cpg else None
    else:
        dbf_path = path.with_suffix(".dbf")
        if not dbf_path.exists():
            dbf_path = path.with_suffix(".DBF")
        if not dbf_path.exists():
            return None
        data = dbf_path.read_bytes()
        cpg_path = next(
            (p for p in (path.with_suffix(".cpg"), path.with_suffix(".CPG")) if p.exists()), None
        )
        cpg_text = cpg_path.read_text("ascii", "replace").strip() if cpg_path else None
    if len(data) < 32:
        return None
    header_len = struct.unpack("<H", data[8:10])[0]
    # Field names sit in 32-byte descriptors after the 32-byte header; records follow.
    names = b"".join(data[i : i + 11] for i in range(32, header_len - 1, 32))
    return names + data[header_len:], cpg_text


def detect_encoding(raw: bytes) -> str:
    """Return the most likely encoding of DBF text: UTF-8 if it decodes, else GB18030 if it does."""
    text = raw.replace(b"\x00", b" ")
    if all(b < 0x80 for b in text):
        return "utf-8"
    try:
        text.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        # GB18030 is a superset of GBK and GB2312: the encoding of nearly every Chinese DBF.
        text.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError:
        best = charset_normalizer.from_bytes(text).best()
        if best is None:
            raise InvalidInput(
                "could not tell the attribute encoding of this shapefile; pass --encoding "
                "(for example gb18030 or utf-8)"
            ) from None
        return best.encoding


def shapefile_encoding(path: Path, given: str | None, member: str | None = None) -> str | None:
    """Return the encoding to read a shapefile with: .cpg, else `given`, else detected."""
    found = _dbf_bytes(path, member)
    if found is None:
        return given
    raw, cpg = found
    if cpg:
        return None  # GDAL honours the .cpg itself
    return given or detect_encoding(raw)


def parse_crs(text: str) -> CRS:
    """Return the CRS named by `text` (EPSG:4490, 4326, a WKT…), or a clear error."""
    try:
        return CRS.from_user_input(int(text) if text.isdigit() else text)
    except CRSError as exc:
        raise InvalidInput(f"unknown CRS {text!r}: give it as EPSG:4490, EPSG:4326, …") from exc


def read_file(
    path: Path,
    layer: str | None = None,
    crs: str | None = None,
    encoding: str | None = None,
) -> FileRead:
    """Return the features of `path` reprojected to EPSG:4326, refusing a file with no CRS."""
    if not path.exists():
        raise InvalidInput(f"no such file: {path}")
    if path.suffix.lower() not in SUPPORTED:
        raise InvalidInput(
            f"unsupported file type {path.suffix!r}: use GeoJSON, GeoPackage, Shapefile "
            "(.shp or zipped), or FlatGeobuf"
        )
    source: str | Path = path
    if path.suffix.lower() == ".zip":
        member = _zip_shapefile(path, layer)
        encoding = shapefile_encoding(path, encoding, member)
        source, layer = f"/vsizip/{path.resolve()}/{member}", None
    elif path.suffix.lower() == ".shp":
        encoding = shapefile_encoding(path, encoding)
    if layer is None and path.suffix.lower() == ".gpkg":
        layers = [name for name, _ in pyogrio.list_layers(path)]
        if len(layers) > 1:
            raise InvalidInput(f"{path.name} has several layers {layers}: choose one with --layer")
    try:
        frame = pyogrio.read_dataframe(source, layer=layer, encoding=encoding, on_invalid="fix")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InvalidInput(f"could not read {path.name}: {exc}") from exc
    if crs is not None:
        given = parse_crs(crs)
        if frame.crs is not None and not CRS(frame.crs).equals(given):
            raise InvalidInput(
                f"{path.name} declares {CRS(frame.crs).to_string()} but --crs says "
                f"{given.to_string()}; drop --crs or fix the file"
            )
        frame = frame.set_crs(given, allow_override=True)
    if frame.crs is None:
        raise InvalidInput(
            f"{path.name} has no coordinate reference system; say which it uses with --crs "
            "(EPSG:4490 for CGCS2000, EPSG:4326 for WGS-84)"
        )
    source = CRS(frame.crs)
    source_name = source.to_string()
    if not source.equals(CRS.from_epsg(4326)):
        # EPSG:4490 (CGCS2000) and WGS-84 agree to centimetres; pyproj applies the null shift.
        frame = frame.to_crs(4326)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    return FileRead(
        frame=frame, source_crs=source_name, encoding=encoding, layer=layer, columns=columns
    )


def load_mapping(path: Path) -> dict[str, str]:
    """Return a column mapping {role: column} from a small JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"could not read mapping file {path}: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InvalidInput('a mapping file is a JSON object like {"code": "WGBM", "name": "WGMC"}')
    unknown = set(data) - set(CANDIDATES)
    if unknown:
        raise InvalidInput(
            f"unknown roles in mapping file: {sorted(unknown)}; known: {sorted(CANDIDATES)}"
        )
    return data


def resolve_columns(columns: list[str], layer: str, given: dict[str, str]) -> dict[str, str]:
    """Return {role: column} for the file, from `given` first, then the usual names."""
    lower = {c.lower(): c for c in columns}
    found: dict[str, str] = {}
    for role, column in given.items():
        if column not in columns:
            raise InvalidInput(
                f"column {column!r} (given for {role}) is not in the file; columns found: {columns}"
            )
        found[role] = column
    for role, names in CANDIDATES.items():
        if role in found:
            continue
        hit = next((lower[n.lower()] for n in names if n.lower() in lower), None)
        if hit is not None:
            found[role] = hit
    missing = [r for r in REQUIRED[layer] if r not in found]
    if missing:
        flags = ", ".join(f"--{r.replace('_', '-')}-field" for r in missing)
        raise InvalidInput(
            f"no column for {', '.join(missing)}; columns found: {columns}. Say which with {flags}"
            " or a --mapping file"
        )
    return found
