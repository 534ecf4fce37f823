"""A partial index on the deadlines of open reports: the console's 超期 queue and the
escalation sweep read only open reports past their due time, a small share of all reports.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OPEN = "('reported', 'accepted', 'dispatched', 'in_progress', 'returned', 'resolved')"


def upgrade() -> None:
    op.execute(f"CREATE INDEX ix_reports_open_due ON reports (due_at) WHERE status IN {OPEN}")


def downgrade() -> None:
    op.drop_index("ix_reports_open_due", "reports")
