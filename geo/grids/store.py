"""Write validated boundary features to PostGIS: COPY to a staging table, then one set-based upsert.

Importing the same features again changes nothing and records no version; any added or changed
feature records a new boundary version, stamped on the rows it touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from geo.db.copy import copy_rows
from geo.db.privileges import refresh_statistics

# Per layer: the attribute columns copied and compared (geometry comes on top).
LAYER_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "grids": (
        ("code", "text"),
        ("name", "text"),
        ("kind", "text"),
        ("category", "text"),
        ("community_code", "text"),
        ("district_code", "text"),
        ("population", "integer"),
        ("attributes", "jsonb"),
    ),
    "areas": (
        ("code", "text"),
        ("name", "text"),
        ("level", "text"),
        ("parent_code", "text"),
        ("population", "integer"),
    ),
}


@dataclass
class ApplyResult:
    """What an import changed."""

    version: int | None
    added: int
    changed: int
    unchanged: int
    absent: int
    removed: int = 0
    reassigned: int = 0  # open reports moved to another grid by this version
    added_codes: list[str] = field(default_factory=list)
    changed_codes: list[str] = field(default_factory=list)


def _stage(
    conn: Connection,
    layer: str,
    rows: Iterable[Sequence[Any]],
    progress: Callable[[int], None] | None,
) -> None:
    """COPY `rows` into the temporary table `stage`, geometries as MultiPolygons, indexed."""
    cols = LAYER_COLUMNS[layer]
    ddl = ", ".join(f"{name} {typ}" for name, typ in cols)
    conn.execute(text(f"CREATE TEMP TABLE stage_raw ({ddl}, wkb bytea) ON COMMIT DROP"))
    names = [name for name, _ in cols]
    copy_rows(conn, "stage_raw", [*names, "wkb"], rows, progress)
    conn.execute(
        text(
            f"CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT {', '.join(names)}, "
            "ST_Multi(ST_GeomFromWKB(wkb, 4326))::geometry(MultiPolygon, 4326) AS geom "
            "FROM stage_raw"
        )
    )
    conn.execute(text("CREATE UNIQUE INDEX ON stage (code)"))
    conn.execute(text("ANALYZE stage"))


def _differs(layer: str) -> str:
    attrs = [name for name, _ in LAYER_COLUMNS[layer] if name != "code"]
    parts = [f"t.{a} IS DISTINCT FROM s.{a}" for a in attrs]
    return "(NOT ST_OrderingEquals(t.geom, s.geom) OR " + " OR ".join(parts) + ")"


def apply_layer(
    conn: Connection,
    layer: str,
    rows: Iterable[Sequence[Any]],
    source: str,
    sha256: str,
    progress: Callable[[int], None] | None = None,
    prune: bool = False,
) -> ApplyResult:
    """Upsert `rows` (attribute values in LAYER_COLUMNS order, then WKB) into the layer's table.

    With `prune`, stored features whose code is not in `rows` are deleted (the file is the
    whole layer); otherwise they are kept and counted as absent. Runs inside the caller's
    transaction, so a failure leaves the stored boundaries untouched.
    """
    _stage(conn, layer, rows, progress)
    result = _compare(conn, layer)
    removing = result.absent if prune else 0
    if not result.added and not result.changed and not removing:
        return result
    version = _record_version(conn, layer, source, sha256, result, removing)
    _upsert(conn, layer, version)
    if removing:
        result.removed = conn.execute(
            text(
                f"DELETE FROM {layer} t "
                "WHERE NOT EXISTS (SELECT 1 FROM stage s WHERE s.code = t.code)"
            )
        ).rowcount
    result.version = version
    # Fresh statistics now, not when autovacuum gets to it: the set-based assignment that
    # follows (reports, households) is planned from them, and a fresh table's guesses made
    # it quadratic (an anti join by nested loop over 40,000 rows).
    refresh_statistics(conn, layer)
    return result


def _compare(conn: Connection, layer: str) -> ApplyResult:
    """Return how the staged features compare with the stored ones (no version yet)."""
    differs = _differs(layer)
    diff = conn.execute(
        text(
            f"""
            SELECT
              array_agg(s.code ORDER BY s.code) FILTER (WHERE t.code IS NULL) AS added,
              array_agg(s.code ORDER BY s.code) FILTER (WHERE t.code IS NOT NULL AND {differs})
                AS changed,
              count(*) FILTER (WHERE t.code IS NOT NULL AND NOT {differs}) AS unchanged,
              (SELECT count(*) FROM {layer} x WHERE NOT EXISTS
                 (SELECT 1 FROM stage y WHERE y.code = x.code)) AS absent
            FROM stage s LEFT JOIN {layer} t ON t.code = s.code
            """
        )
    ).one()
    added, changed = list(diff.added or []), list(diff.changed or [])
    return ApplyResult(
        None,
        len(added),
        len(changed),
        int(diff.unchanged),
        int(diff.absent),
        added_codes=added[:100],
        changed_codes=changed[:100],
    )


def _record_version(
    conn: Connection, layer: str, source: str, sha256: str, result: ApplyResult, removing: int
) -> int:
    """Return the id of a new boundary version of `layer` with what it changes."""
    summary = {
        "added": result.added,
        "changed": result.changed,
        "unchanged": result.unchanged,
        "absent": result.absent,
        "removed": removing,
    }
    version = conn.execute(
        text(
            "INSERT INTO boundary_versions (layer, source, sha256, summary) "
            "VALUES (:layer, :source, :sha, CAST(:summary AS jsonb)) RETURNING id"
        ),
        {"layer": layer, "source": source, "sha": sha256, "summary": json.dumps(summary)},
    ).scalar_one()
    return int(version)


def _upsert(conn: Connection, layer: str, version: int) -> None:
    """Insert the added and update the changed staged features, stamped with `version`."""
    cols = [name for name, _ in LAYER_COLUMNS[layer]]
    insert_cols = ", ".join([*cols, "geom", "boundary_version"])
    select_cols = ", ".join([f"s.{c}" for c in cols] + ["s.geom", ":version"])
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in [*cols[1:], "geom", "boundary_version"])
    extra_cols, extra_vals, extra_upd = "", "", ""
    if layer == "grids":
        # Geodesic area: correct in m² anywhere, no projection to choose.
        extra_cols = ", area_m2, updated_at"
        extra_vals = ", ST_Area(s.geom::geography), now()"
        extra_upd = ", area_m2 = EXCLUDED.area_m2, updated_at = now()"
    conn.execute(
        text(
            f"""
            INSERT INTO {layer} ({insert_cols}{extra_cols})
            SELECT {select_cols}{extra_vals}
            FROM stage s LEFT JOIN {layer} t ON t.code = s.code
            WHERE t.code IS NULL OR {_differs(layer)}
            ON CONFLICT (code) DO UPDATE SET {updates}{extra_upd}
            """
        ),
        {"version": version},
    )
