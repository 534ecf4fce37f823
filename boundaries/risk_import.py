"""`riskgrid layers import`: read a risk layer file (same formats and CRS rules as boundaries),
check it, and store it as one kind of risk feature.

Levels: 1 (low), 2 (medium), 3 (high), from a level column (1-3, 低/中/高, low/medium/high),
else from a return period in years (a zone flooded every 10 years or more often is high, up to
every 50 years medium, rarer low), else `--level` for the whole file.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Engine

from boundaries.importer import file_sha256
from boundaries.reader import read_file
from boundaries.validation import Finding
from geo.errors import ImportRefused, InvalidInput
from geo.geometry import repair_polygonal
from geo.identity import audit
from geo.identity.principal import SYSTEM, Principal
from geo.risk import layers as risk_layers

COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "id", "编码", "代码", "bm", "dm", "fid_code"),
    "name": ("name", "名称", "mc", "river_name", "zone_name"),
    "level": ("level", "risk_level", "风险等级", "等级", "fxdj", "dj"),
    "return_period": ("return_period", "return_per", "重现期", "cxq", "rp"),
}
LEVEL_WORDS = {
    "1": 1, "2": 2, "3": 3, "low": 1, "medium": 2, "high": 3,
    "低": 1, "中": 2, "高": 3, "低风险": 1, "中风险": 2, "高风险": 3,
    "一般": 1, "较高": 2, "严重": 3,
}  # fmt: skip
KIND_NAMES = {
    "flood_zone": "洪水风险区",
    "river": "河流",
    "reservoir": "水库",
    "low_lying": "低洼易涝区",
}


@dataclass
class LayerOptions:
    """How to read a risk layer file."""

    kind: str
    file_layer: str | None = None
    crs: str | None = None
    encoding: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    level: int | None = None  # for the whole file, when it has no level column
    strict: bool = False
    prune: bool = False


@dataclass
class LayerOutcome:
    """Findings, and what the import stored."""

    source: str
    kind: str
    features: int
    importable: int
    source_crs: str
    findings: list[Finding]
    stored: risk_layers.StoreResult | None = None

    def as_dict(self) -> dict:
        """Return the outcome as JSON-ready data."""
        out: dict[str, Any] = {
            "source": self.source,
            "kind": self.kind,
            "features": self.features,
            "importable": self.importable,
            "source_crs": self.source_crs,
            "findings": [f.__dict__ for f in self.findings],
        }
        if self.stored is not None:
            out["import"] = self.stored.__dict__
        return out


def level_from(value: object, period: object) -> int | None:
    """Return a level 1-3 from a level value or, failing that, a return period in years."""
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        text = str(value).strip().lower()
        if text.endswith(".0"):
            text = text[:-2]
        if text in LEVEL_WORDS:
            return LEVEL_WORDS[text]
        return None
    try:
        years = float(str(period).strip())
    except ValueError:
        return None
    if not math.isfinite(years) or years <= 0:
        return None
    return 3 if years <= 10 else 2 if years <= 50 else 1


def _column(columns: list[str], role: str, given: dict[str, str]) -> str | None:
    if role in given:
        if given[role] not in columns:
            raise InvalidInput(
                f"column {given[role]!r} (given for {role}) is not in the file; columns found: "
                f"{columns}"
            )
        return given[role]
    lower = {c.lower(): c for c in columns}
    return next((lower[n.lower()] for n in COLUMNS[role] if n.lower() in lower), None)


def _geometry(kind: str, g: shapely.Geometry | None) -> tuple[shapely.Geometry | None, str | None]:
    """Return (the geometry to store, a repair note) or (None, why it cannot be stored)."""
    if g is None or g.is_empty:
        return None, "feature has no geometry"
    repair = repair_polygonal(g)
    note = None if repair.reason is None else f"invalid ({repair.reason}); repaired"
    g = repair.valid
    if kind == "river":
        # A river may be drawn as its centre line or as its water surface.
        lines = [
            p for p in shapely.get_parts(g) if p.geom_type in ("LineString", "MultiLineString")
        ]
        if repair.polygons is not None:
            return repair.polygons, note
        if lines:
            return shapely.line_merge(shapely.multilinestrings(lines)), note
        return None, f"{g.geom_type} is neither a line nor a polygon"
    if repair.polygons is None:
        return None, f"{g.geom_type} has no area; a {kind} must be a polygon"
    return repair.polygons, note


def _code(geom: shapely.Geometry) -> str:
    # Stable across re-imports of the same shape, for files that number nothing.
    return "g" + hashlib.sha1(shapely.to_wkb(geom, output_dimension=2)).hexdigest()[:12]  # noqa: S324 - an id, not security


def read_layer(path: Path, opts: LayerOptions) -> tuple[list[tuple], LayerOutcome]:
    """Return the rows fit to store and the outcome with every finding."""
    _check_options(opts)
    read = read_file(path, layer=opts.file_layer, crs=opts.crs, encoding=opts.encoding)
    frame = read.frame
    if frame.empty:
        raise InvalidInput(f"{path.name} holds no features")
    cols = {r: _column(read.columns, r, opts.fields) for r in COLUMNS}
    extra = [c for c in read.columns if c not in cols.values()]
    rows = _Rows(opts, cols, extra)
    for i in range(len(frame)):
        rows.add(i, frame.iloc[i], frame.geometry.iat[i])
    outcome = LayerOutcome(
        str(path), opts.kind, len(frame), len(rows.rows), read.source_crs, rows.findings
    )
    return rows.rows, outcome


def _check_options(opts: LayerOptions) -> None:
    if opts.kind not in risk_layers.KINDS:
        raise InvalidInput(f"--kind must be one of {', '.join(risk_layers.KINDS)}")
    if opts.level is not None and opts.level not in (1, 2, 3):
        raise InvalidInput("--level must be 1 (low), 2 (medium) or 3 (high)")


@dataclass
class _Rows:
    """The rows to store from one file's features, and the findings on the way."""

    opts: LayerOptions
    cols: dict[str, str | None]  # role → the file's column, when it has one
    extra: list[str]  # the other columns, kept as attributes
    rows: list[tuple] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def value(self, src: pd.Series, role: str) -> Any:
        """Return the feature's value for `role`, or None when the file has no such column."""
        column = self.cols[role]
        return src[column] if column else None

    def add(self, i: int, src: pd.Series, g: shapely.Geometry | None) -> None:
        """Add feature `i` as a row, or a finding that says why it is left out."""
        code = _source_code(self.value(src, "code"))
        geom, note = _geometry(self.opts.kind, g)
        if geom is None:
            self.findings.append(
                Finding("invalid_geometry", "error", [code or f"#{i + 1}"], note or "")
            )
            return
        if note:
            self.findings.append(
                Finding("repaired_geometry", "warning", [code or f"#{i + 1}"], note)
            )
        code = code or _code(geom)
        if code in self.seen:
            self.findings.append(
                Finding("duplicate_code", "error", [code], "code appears more than once")
            )
            return
        self.seen.add(code)
        name = _name(self.value(src, "name"), self.opts.kind, code)
        period_raw = self.value(src, "return_period")
        period = _period(period_raw)
        level = None
        if self.opts.kind in risk_layers.LEVELLED:
            level = self.level(src, period_raw, period, code)
            if level is None:
                return
        attrs = _attributes(src, self.extra)
        self.rows.append((code, name[:200], level, period, attrs, shapely.to_wkb(geom)))

    def level(self, src: pd.Series, period_raw: Any, period: int | None, code: str) -> int | None:
        """Return the feature's level from its level or return period, else the file's
        `--level`; None, with a finding, when there is none."""
        raw = self.value(src, "level")
        level = level_from(raw, period_raw) if (raw is not None or period) else None
        if level is None:
            level = self.opts.level
        if level is None:
            self.findings.append(
                Finding(
                    "unknown_level",
                    "error",
                    [code],
                    f"no level 1-3 (got {raw!r}, return period {period_raw!r}); give a "
                    "--level-field, a --return-period-field or --level for the whole file",
                )
            )
        return level


def _source_code(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    code = str(value)
    if code.endswith(".0") and code[:-2].isdigit():
        code = code[:-2]  # shapefiles keep numeric codes as floats
    return code


def _name(value: Any, kind: str, code: str) -> str:
    if value is not None and not pd.isna(value):
        return str(value).strip()
    return f"{KIND_NAMES[kind]} {code}"


def _period(value: Any) -> int | None:
    if value is None or pd.isna(value):
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def _attributes(src: pd.Series, columns: list[str]) -> dict[str, Any]:
    """Return the feature's other plain values (text, numbers, flags), NaN left out."""
    return {
        c: (v.item() if isinstance(v, np.generic) else v)
        for c in columns
        if c in src.index
        and (v := src[c]) is not None
        and not (isinstance(v, float) and math.isnan(v))
        and isinstance(v, str | int | float | bool | np.generic)
    }


def import_layer(
    engine: Engine, path: Path, opts: LayerOptions, who: Principal = SYSTEM
) -> LayerOutcome:
    """Check and store a risk layer file in one transaction, audited (`import.layers`, as
    `who`) in it; ImportRefused if nothing may be stored."""
    rows, outcome = read_layer(path, opts)
    if opts.strict and outcome.findings:
        raise ImportRefused(
            f"{path.name}: {len(outcome.findings)} finding(s) and --strict: nothing imported",
            outcome,
        )
    if not rows:
        raise ImportRefused(f"{path.name}: no feature is fit to import", outcome)
    with engine.begin() as conn:
        s = risk_layers.store(conn, opts.kind, rows, str(path), file_sha256(path), prune=opts.prune)
        counts = {
            "kind": s.kind,
            "added": s.added,
            "changed": s.changed,
            "unchanged": s.unchanged,
            "removed": s.removed,
            "refused": outcome.features - outcome.importable,
            "findings": len(outcome.findings),
        }
        audit.record(conn, who, "import.layers", "file", path.name, counts)
    outcome.stored = s
    return outcome


def format_outcome(outcome: LayerOutcome) -> str:
    """Return the human-readable report printed by the CLI."""
    lines = [
        f"{outcome.source}: {outcome.features} {outcome.kind} feature(s), "
        f"{outcome.importable} fit to import (CRS {outcome.source_crs})"
    ]
    for f in outcome.findings[:200]:
        lines.append(f"  [{f.severity}] {f.check}: {', '.join(f.codes[:5])}: {f.message}")
    s = outcome.stored
    if s is not None:
        lines.append(
            f"import: {s.added} added, {s.changed} changed, {s.unchanged} unchanged"
            + (f", {s.removed} removed" if s.removed else "")
            + f"; {s.parts} analysis piece(s) for {s.kind}"
        )
    return "\n".join(lines)
