"""Visits loaded in bulk (the demo, or visits kept by another system): set-based, their grids
assigned by the report rules in one statement, as report imports are."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, text

from geo.db.copy import copy_frame
from geo.grids.assignment import assignment_ctes, snap_params, stage_points

# What a frame of visits holds: ids, campaign code, WGS-84 position, time, target id (or
# empty), the report found on it (or empty), answers as JSON text, outreach counts.
COLUMNS = (
    "id",
    "campaign",
    "lon",
    "lat",
    "visited_at",
    "target_id",
    "report_id",
    "answers",
    "leaflets",
    "stickers",
)
_STAGE = """
    CREATE TEMP TABLE stage_visits (id uuid, campaign text, lon float8, lat float8,
      visited_at timestamptz, target_id uuid, report_id uuid, answers text, leaflets int,
      stickers int) ON COMMIT DROP
"""
_STORE = f"""
    WITH {assignment_ctes("stage_visit_points", grids_outer=True)},
    put AS (
      INSERT INTO visits (id, campaign_code, visitor, geom, source_crs, grid_code,
                          assignment_method, assignment_distance_m, district_code, target_id,
                          answers, leaflets, stickers, visited_at, request_hash)
      SELECT s.id, s.campaign, '网格员' || COALESCE(right(a.grid_code, 6), ''), p.geom, 'wgs84',
             a.grid_code, a.method, a.distance_m, a.district_code, s.target_id,
             CAST(s.answers AS jsonb), s.leaflets, s.stickers, s.visited_at, 'bulk'
      FROM stage_visits s JOIN stage_visit_points p ON p.id = s.id
      JOIN assigned a ON a.id = s.id
      ON CONFLICT (id) DO NOTHING
      RETURNING id
    )
    SELECT count(*) FROM put
"""
# A report found on a visit points to it (and stays linked to that one), and belongs to its
# campaign as a report sent with the visit does.
_LINK = """
    UPDATE reports r SET visit_id = s.id, campaign_code = s.campaign FROM stage_visits s
    WHERE r.id = s.report_id AND r.visit_id IS NULL
"""


def store_visits(conn: Connection, frame: pd.DataFrame, snap_m: float) -> int:
    """Store the visits of `frame` (COLUMNS; those already stored are left alone), link the
    reports found on them, and return how many were added. The visitor is named after the
    grid (no user); campaign status and checklists are not checked: the rows are trusted."""
    conn.execute(text(_STAGE))
    copy_frame(conn, "stage_visits", frame, list(COLUMNS))
    stage_points(conn, "stage_visits", "stage_visit_points")
    added = int(conn.execute(text(_STORE), snap_params(snap_m)).scalar_one())
    conn.execute(text(_LINK))
    for temp in ("stage_visit_points", "stage_visits"):
        conn.execute(text(f"DROP TABLE {temp}"))
    return added
