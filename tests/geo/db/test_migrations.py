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
    }
    assert {
        "ix_grids_geom",
        "ix_areas_geom",
        "ix_reports_geom",
        "ix_risk_layers_geom",
        "ix_risk_parts_geom",
        "ix_households_geom",
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
