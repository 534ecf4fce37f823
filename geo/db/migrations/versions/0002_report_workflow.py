"""Report workflow: stage deadlines, duplicates, near-boundary hints, manual assignment.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
METHODS_OLD = "('exclusive', 'inside', 'nearest', 'unassigned')"
METHODS_NEW = "('exclusive', 'inside', 'nearest', 'unassigned', 'manual')"
OPEN = "status IN ('reported', 'dispatched', 'in_progress', 'resolved')"


def upgrade() -> None:
    op.add_column("reports", sa.Column("status_changed_at", TZ))
    op.add_column("reports", sa.Column("due_at", TZ))
    op.add_column("reports", sa.Column("possible_duplicate_of", UUID(as_uuid=True)))
    op.add_column("reports", sa.Column("near_boundary_code", sa.String(32)))
    op.add_column("reports", sa.Column("near_boundary_m", sa.Float))
    op.add_column("reports", sa.Column("source_lon", sa.Float))
    op.add_column("reports", sa.Column("source_lat", sa.Float))
    # The county a report belongs to, kept on the row: the key a Citus rollout distributes by.
    op.add_column("reports", sa.Column("district_code", sa.String(32)))
    op.execute("UPDATE reports SET status_changed_at = created_at WHERE status_changed_at IS NULL")
    op.alter_column("reports", "status_changed_at", nullable=False, server_default=sa.func.now())
    op.drop_constraint(op.f("ck_reports_assignment_method"), "reports")
    op.create_check_constraint(
        op.f("ck_reports_assignment_method"), "reports", f"assignment_method IN {METHODS_NEW}"
    )
    op.create_check_constraint(
        op.f("ck_reports_resolved_level"),
        "reports",
        "status NOT IN ('resolved', 'verified') OR resolution_level IS NOT NULL",
    )
    # The queues people work from: open reports by deadline, by grid, by theme and time.
    op.create_index("ix_reports_open_due_at", "reports", ["due_at"], postgresql_where=sa.text(OPEN))
    op.create_index("ix_reports_reported_at_id", "reports", ["reported_at", "id"])
    # Partial indexes for the two small queues; every index costs each insert (bulk loads).
    op.create_index(
        "ix_reports_unassigned",
        "reports",
        ["reported_at"],
        postgresql_where=sa.text("assignment_method = 'unassigned'"),
    )
    op.drop_index("ix_reports_status", "reports")
    op.create_index("ix_reports_district_code", "reports", ["district_code"])


def downgrade() -> None:
    op.drop_index("ix_reports_district_code", "reports")
    op.create_index("ix_reports_status", "reports", ["status"])
    op.drop_index("ix_reports_unassigned", "reports")
    op.drop_index("ix_reports_reported_at_id", "reports")
    op.drop_index("ix_reports_open_due_at", "reports")
    op.drop_constraint(op.f("ck_reports_resolved_level"), "reports")
    op.drop_constraint(op.f("ck_reports_assignment_method"), "reports")
    op.execute("UPDATE reports SET assignment_method = 'inside' WHERE assignment_method = 'manual'")
    op.create_check_constraint(
        op.f("ck_reports_assignment_method"), "reports", f"assignment_method IN {METHODS_OLD}"
    )
    for col in (
        "district_code",
        "source_lat",
        "source_lon",
        "near_boundary_m",
        "near_boundary_code",
        "possible_duplicate_of",
        "due_at",
        "status_changed_at",
    ):
        op.drop_column("reports", col)
