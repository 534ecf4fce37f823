"""A data version for reports: cached analytics know when they are stale.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A sequence, not a counter row: nextval never waits on another transaction, so
    # concurrent intake does not queue on it (a counter row would serialise every write).
    op.execute("CREATE SEQUENCE reports_data_version")
    op.execute(
        """
        CREATE FUNCTION bump_reports_data_version() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM nextval('reports_data_version');
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER reports_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        "ON reports FOR EACH STATEMENT EXECUTE FUNCTION bump_reports_data_version()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER reports_data_version ON reports")
    op.execute("DROP FUNCTION bump_reports_data_version()")
    op.execute("DROP SEQUENCE reports_data_version")
