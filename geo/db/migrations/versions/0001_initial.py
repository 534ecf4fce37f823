"""Initial schema: boundary versions, areas, grids, campaigns, reports and their history.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _gist(table: str) -> None:
    op.create_index(f"ix_{table}_geom", table, ["geom"], postgresql_using="gist")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "boundary_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("imported_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("summary", JSONB, nullable=False, server_default="{}"),
    )
    op.create_table(
        "areas",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column(
            "parent_code",
            sa.String(32),
            sa.ForeignKey("areas.code", deferrable=True, initially="DEFERRED"),
        ),
        sa.Column("population", sa.Integer),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
        sa.Column(
            "boundary_version", sa.Integer, sa.ForeignKey("boundary_versions.id"), nullable=False
        ),
        sa.CheckConstraint(
            "level IN ('city', 'district', 'street', 'community')", name=op.f("ck_areas_level")
        ),
    )
    op.create_index("ix_areas_level", "areas", ["level"])
    op.create_index("ix_areas_parent_code", "areas", ["parent_code"])
    _gist("areas")

    op.create_table(
        "grids",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32)),
        sa.Column("community_code", sa.String(32)),
        sa.Column("district_code", sa.String(32)),
        sa.Column("population", sa.Integer),
        sa.Column("attributes", JSONB, nullable=False, server_default="{}"),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
        sa.Column("area_m2", sa.Float, nullable=False),
        sa.Column(
            "boundary_version", sa.Integer, sa.ForeignKey("boundary_versions.id"), nullable=False
        ),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('comprehensive', 'exclusive')", name=op.f("ck_grids_kind")),
        sa.CheckConstraint(
            "ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name=op.f("ck_grids_geom_valid")
        ),
    )
    op.create_index("ix_grids_kind", "grids", ["kind"])
    op.create_index("ix_grids_community_code", "grids", ["community_code"])
    op.create_index("ix_grids_district_code", "grids", ["district_code"])
    op.create_index("ix_grids_boundary_version", "grids", ["boundary_version"])
    _gist("grids")

    op.create_table(
        "campaigns",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("theme", sa.String(32), nullable=False),
        sa.Column("starts_on", sa.Date, nullable=False),
        sa.Column("ends_on", sa.Date, nullable=False),
        sa.Column("description", sa.Text),
        sa.CheckConstraint("ends_on >= starts_on", name=op.f("ck_campaigns_dates")),
    )

    op.create_table(
        "reports",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("theme", sa.String(32), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("severity", sa.Integer, nullable=False, server_default="2"),
        sa.Column("status", sa.String(16), nullable=False, server_default="reported"),
        sa.Column("description", sa.Text),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("source_crs", sa.String(16), nullable=False, server_default="wgs84"),
        sa.Column("accuracy_m", sa.Float),
        sa.Column("grid_code", sa.String(32), sa.ForeignKey("grids.code", ondelete="SET NULL")),
        sa.Column("assignment_method", sa.String(16), nullable=False),
        sa.Column("assignment_distance_m", sa.Float),
        sa.Column("department", sa.String(100)),
        sa.Column("resolution_level", sa.String(16)),
        sa.Column("campaign_code", sa.String(32), sa.ForeignKey("campaigns.code")),
        sa.Column("reporter", sa.String(100)),
        sa.Column("reported_at", TZ, nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('reported', 'dispatched', 'in_progress', 'resolved', 'verified', "
            "'rejected', 'duplicate')",
            name=op.f("ck_reports_status"),
        ),
        sa.CheckConstraint(
            "assignment_method IN ('exclusive', 'inside', 'nearest', 'unassigned')",
            name=op.f("ck_reports_assignment_method"),
        ),
        sa.CheckConstraint(
            "resolution_level IS NULL OR resolution_level IN "
            "('grid', 'community', 'street', 'district', 'city')",
            name=op.f("ck_reports_resolution_level"),
        ),
    )
    op.create_index("ix_reports_status", "reports", ["status"])
    op.create_index("ix_reports_grid_code", "reports", ["grid_code"])
    op.create_index("ix_reports_campaign_code", "reports", ["campaign_code"])
    op.create_index("ix_reports_theme_reported_at", "reports", ["theme", "reported_at"])
    _gist("reports")

    op.create_table(
        "report_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "report_id",
            UUID(as_uuid=True),
            sa.ForeignKey("reports.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("from_grid", sa.String(32)),
        sa.Column("to_grid", sa.String(32)),
        sa.Column("actor", sa.String(100)),
        sa.Column("note", sa.Text),
        sa.Column("level", sa.String(16)),
        sa.Column("at", TZ, server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_report_events_report_id", "report_events", ["report_id"])


def downgrade() -> None:
    for table in ("report_events", "reports", "campaigns", "grids", "areas", "boundary_versions"):
        op.drop_table(table)
