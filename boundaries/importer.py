"""`riskgrid boundaries import|check`: read, validate and (for import) store a boundary file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine

from boundaries.reader import read_file, resolve_columns
from boundaries.validation import ValidationReport, normalise, validate
from geo.errors import ImportRefused, InvalidInput
from geo.grids import areas
from geo.grids.store import LAYER_COLUMNS, ApplyResult, apply_layer
from geo.identity import audit
from geo.identity.principal import SYSTEM, Principal
from geo.reports.loop import reassign_open
from geo.settings import ImportSettings, ReportSettings

LAYERS = ("grids", "areas")


@dataclass
class ImportOptions:
    """How to read a boundary file: which layer, CRS, encoding and columns."""

    layer: str = "grids"  # what the features are: grids or areas
    file_layer: str | None = None  # the layer inside a multi-layer file (GeoPackage)
    crs: str | None = None
    encoding: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    strict: bool = False
    prune: bool = False  # the file is the whole layer: delete stored features it lacks


@dataclass
class ImportOutcome:
    """The validation report and, for an import, what changed."""

    report: ValidationReport
    applied: ApplyResult | None = None

    def as_dict(self) -> dict:
        """Return the outcome as JSON-ready data."""
        out = {"report": self.report.as_dict()}
        if self.applied is not None:
            a = self.applied
            out["import"] = {
                "version": a.version,
                "added": a.added,
                "changed": a.changed,
                "unchanged": a.unchanged,
                "absent_from_file": a.absent,
                "removed": a.removed,
                "reports_reassigned": a.reassigned,
            }
        return out


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check(
    conn: Connection | None, path: Path, opts: ImportOptions, tolerances: ImportSettings
) -> tuple[gpd.GeoDataFrame, ValidationReport]:
    if opts.layer not in LAYERS:
        raise InvalidInput(f"layer must be one of {LAYERS}, not {opts.layer!r}")
    read = read_file(path, layer=opts.file_layer, crs=opts.crs, encoding=opts.encoding)
    columns = resolve_columns(read.columns, opts.layer, opts.fields)
    frame = normalise(read.frame, columns, opts.layer)
    districts = communities = None
    if conn is not None and opts.layer == "grids":
        districts = areas.outlines(conn, "district")
        communities = areas.outlines(conn, "community")
    ok, findings = validate(frame, opts.layer, tolerances, districts, communities)
    report = ValidationReport(
        source=str(path),
        layer=opts.layer,
        features=len(frame),
        importable=len(ok),
        source_crs=read.source_crs,
        encoding=read.encoding,
        findings=findings,
    )
    return ok, report


def check_file(
    engine: Engine | None, path: Path, opts: ImportOptions, tolerances: ImportSettings
) -> ImportOutcome:
    """Return the validation report for `path` without storing anything."""
    if engine is None:
        return ImportOutcome(_check(None, path, opts, tolerances)[1])
    with engine.connect() as conn:
        return ImportOutcome(_check(conn, path, opts, tolerances)[1])


def _rows(frame: gpd.GeoDataFrame, layer: str) -> Iterator[list[Any]]:
    cols = [name for name, _ in LAYER_COLUMNS[layer]]
    wkb = shapely.to_wkb(frame.geometry.values)
    for i in range(len(frame)):
        row: list[Any] = []
        for c in cols:
            if c == "attributes":
                row.append(json.dumps({}))
                continue
            v = frame[c].iat[i] if c in frame else None
            row.append(None if pd.isna(v) else (int(v) if c == "population" else v))
        row.append(wkb[i])
        yield row


def import_file(
    engine: Engine,
    path: Path,
    opts: ImportOptions,
    tolerances: ImportSettings,
    progress: Callable[[int], None] | None = None,
    reports: ReportSettings | None = None,
    who: Principal = SYSTEM,
) -> ImportOutcome:
    """Validate and store `path` in one transaction; ImportRefused when nothing may be stored.

    A new grid version re-assigns every open report in the same transaction, and the import
    is audited (`import.boundaries`, as `who`) in it too.
    """
    with engine.begin() as conn:
        ok, report = _check(conn, path, opts, tolerances)
        if opts.strict and report.findings:
            raise ImportRefused(
                f"{path.name}: {len(report.findings)} finding(s) and --strict: nothing imported",
                report,
            )
        if ok.empty:
            raise ImportRefused(f"{path.name}: no feature is fit to import", report)
        applied = apply_layer(
            conn,
            opts.layer,
            _rows(ok, opts.layer),
            str(path),
            file_sha256(path),
            progress,
            prune=opts.prune,
        )
        if opts.layer == "grids" and applied.version is not None:
            snap = (reports or ReportSettings()).snap_tolerance_m
            note = f"boundary version {applied.version}"
            applied.reassigned = reassign_open(conn, snap, note, who)
        audit.record(conn, who, "import.boundaries", "file", path.name, _counts(report, applied))
        return ImportOutcome(report, applied)


def _counts(report: ValidationReport, a: ApplyResult) -> dict[str, object]:
    return {
        "layer": report.layer,
        "version": a.version,
        "added": a.added,
        "changed": a.changed,
        "unchanged": a.unchanged,
        "removed": a.removed,
        "refused": report.features - report.importable,
        "findings": len(report.findings),
        "reports_reassigned": a.reassigned,
    }


def format_report(outcome: ImportOutcome) -> str:
    """Return the human-readable report printed by the CLI."""
    r = outcome.report
    lines = [
        f"{r.source}: {r.features} {r.layer} feature(s), {r.importable} fit to import "
        f"(CRS {r.source_crs}{', encoding ' + r.encoding if r.encoding else ''})",
    ]
    if r.clean:
        lines.append("validation: no findings")
    else:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(r.counts().items()))
        lines.append(f"validation: {len(r.findings)} finding(s): {counts}")
        for f in r.findings[:200]:
            lines.append(f"  [{f.severity}] {f.check}: {', '.join(f.codes[:5])}: {f.message}")
        if len(r.findings) > 200:
            lines.append(f"  … and {len(r.findings) - 200} more (use --json for all)")
    a = outcome.applied
    if a is not None:
        if a.version is None:
            lines.append(f"import: unchanged ({a.unchanged} feature(s) already stored as is)")
        else:
            lines.append(
                f"import: boundary version {a.version}: {a.added} added, {a.changed} changed, "
                f"{a.unchanged} unchanged"
                + (f", {a.removed} removed" if a.removed else "")
                + (
                    f", {a.absent} stored but not in this file (kept; --prune removes them)"
                    if a.absent and not a.removed
                    else ""
                )
            )
            if a.reassigned:
                lines.append(f"reports: {a.reassigned} open report(s) moved to another grid")
    return "\n".join(lines)
