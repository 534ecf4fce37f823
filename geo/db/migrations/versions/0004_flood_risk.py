"""Flood risk: risk layers (zones, rivers, reservoirs, low-lying land), vulnerable households,
and API tokens with roles (households' personal data is for coordinators and admins only).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
KINDS = "('flood_zone', 'river', 'reservoir', 'low_lying')"
ROLES = "('admin', 'coordinator', 'planner', 'worker')"


def _version_sequence(table: str) -> None:
    """A sequence bumped by every write to `table`: cached answers know when they are stale."""
    op.execute(f"CREATE SEQUENCE {table}_data_version")
    op.execute(
        f"""
        CREATE FUNCTION bump_{table}_data_version() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM nextval('{table}_data_version');
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"CREATE TRIGGER {table}_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_{table}_data_version()"
    )


def upgrade() -> None:
    op.create_table(
        "risk_layers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        # 1 (low) .. 3 (high) for flood zones and low-lying land; NULL for rivers, reservoirs.
        sa.Column("level", sa.SmallInteger),
        sa.Column("return_period_years", sa.Integer),
        sa.Column("attributes", JSONB, nullable=False, server_default="{}"),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("sha256", sa.String(64)),
        sa.Column("imported_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"kind IN {KINDS}", name=op.f("ck_risk_layers_kind")),
        sa.CheckConstraint(
            "level IS NULL OR level BETWEEN 1 AND 3", name=op.f("ck_risk_layers_level")
        ),
        sa.UniqueConstraint("kind", "code", name=op.f("uq_risk_layers_kind")),
    )
    op.create_index("ix_risk_layers_geom", "risk_layers", ["geom"], postgresql_using="gist")
    # What the analysis reads: per kind, the union of the features at or above each level,
    # cut into small pieces (ST_Subdivide) so that index lookups and overlays stay cheap.
    # Pieces of one (kind, level) never overlap, so their areas add up.
    op.create_table(
        "risk_parts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("min_level", sa.SmallInteger, nullable=False),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    )
    op.create_index("ix_risk_parts_geom", "risk_parts", ["geom"], postgresql_using="gist")
    op.create_index("ix_risk_parts_kind", "risk_parts", ["kind", "min_level"])
    _version_sequence("risk_layers")

    op.create_table(
        "households",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("head_name", sa.String(100)),
        sa.Column("phone", sa.String(32)),
        sa.Column("address", sa.String(300)),
        sa.Column("members", sa.SmallInteger, nullable=False),
        sa.Column("over_60", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("oldest_age", sa.SmallInteger),
        sa.Column("living_alone", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("mobility_needs", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("contact_worker", sa.String(100)),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("grid_code", sa.String(32), sa.ForeignKey("grids.code", ondelete="SET NULL")),
        sa.Column("district_code", sa.String(32)),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("members BETWEEN 1 AND 50", name=op.f("ck_households_members")),
        sa.CheckConstraint("over_60 BETWEEN 0 AND members", name=op.f("ck_households_over_60")),
        sa.CheckConstraint(
            "oldest_age IS NULL OR oldest_age BETWEEN 0 AND 130", name=op.f("ck_households_age")
        ),
    )
    op.create_index("ix_households_geom", "households", ["geom"], postgresql_using="gist")
    op.create_index("ix_households_grid_code", "households", ["grid_code"])
    _version_sequence("households")

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        # Only a SHA-256 of the token is kept: a leaked table gives no working token.
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("revoked_at", TZ),
        sa.CheckConstraint(f"role IN {ROLES}", name=op.f("ck_api_tokens_role")),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    for table in ("households", "risk_layers"):
        op.execute(f"DROP TRIGGER {table}_data_version ON {table}")
        op.execute(f"DROP FUNCTION bump_{table}_data_version()")
        op.execute(f"DROP SEQUENCE {table}_data_version")
    op.drop_table("households")
    op.drop_table("risk_parts")
    op.drop_table("risk_layers")
