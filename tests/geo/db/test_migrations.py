from sqlalchemy import text

from geo.db import migrate


def test_schema_is_at_head_with_srid_4326_and_gist_indexes(db):
    assert migrate.current(db) == migrate.head()
    with db.connect() as conn:
        cols = dict(
            conn.execute(
                text(
                    "SELECT f_table_name || '.' || f_geometry_column, type || ':' || srid "
                    "FROM geometry_columns"
                )
            ).all()
        )
        indexes = {
            r[0]
            for r in conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gist%'")
            )
        }
    assert cols == {
        "areas.geom": "MULTIPOLYGON:4326",
        "grids.geom": "MULTIPOLYGON:4326",
        "reports.geom": "POINT:4326",
        "risk_layers.geom": "GEOMETRY:4326",
        "risk_parts.geom": "GEOMETRY:4326",
        "households.geom": "POINT:4326",
        "visits.geom": "POINT:4326",
        "campaign_targets.geom": "POINT:4326",
    }
    assert {
        "ix_grids_geom",
        "ix_areas_geom",
        "ix_reports_geom",
        "ix_risk_layers_geom",
        "ix_risk_parts_geom",
        "ix_households_geom",
        "ix_visits_geom",
        "ix_campaign_targets_geom",
    } <= indexes


def test_upgrade_twice_is_harmless(db):
    assert migrate.upgrade(db) == migrate.head()


def test_downgrade_and_upgrade_round_trip(db):
    from alembic import command

    cfg = migrate.alembic_config()
    with db.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert migrate.current(db) == "0001"
    assert migrate.upgrade(db) == migrate.head()
    with db.connect() as conn:
        cols = {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'reports'"
                )
            )
        }
    assert {"due_at", "district_code", "near_boundary_code"} <= cols


def test_case_handling_keeps_an_old_dispatch_as_it_was(db):
    """0006: a report dispatched straight from reported (the old loop) keeps its status and
    its history; nothing is invented for the accepted step it skipped."""
    from alembic import command

    cfg = migrate.alembic_config()
    with db.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    rid = "5b0c3a52-0d55-4a57-9c1d-3a0f8c1e0a01"
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO reports (id, theme, category, severity, status, geom, source_crs, "
                "assignment_method, reported_at) VALUES (:id, 'gas', 'gas_leak', 2, 'dispatched', "
                "ST_SetSRID(ST_MakePoint(125, 46.6), 4326), 'wgs84', 'unassigned', now())"
            ),
            {"id": rid},
        )
        conn.execute(
            text(
                "INSERT INTO report_events (report_id, kind, from_status, to_status, actor) "
                "VALUES (:id, 'transition', 'reported', 'dispatched', 'old-desk')"
            ),
            {"id": rid},
        )
    assert migrate.upgrade(db) == migrate.head()
    with db.begin() as conn:
        row = conn.execute(
            text("SELECT status, rework_count, return_count FROM reports WHERE id = :id"),
            {"id": rid},
        ).one()
        steps = conn.execute(
            text("SELECT from_status, to_status FROM report_events WHERE report_id = :id"),
            {"id": rid},
        ).all()
        assert tuple(row) == ("dispatched", 0, 0)
        assert [tuple(s) for s in steps] == [("reported", "dispatched")]
        conn.execute(text("DELETE FROM reports WHERE id = :id"), {"id": rid})
