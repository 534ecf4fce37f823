"""Notifications about risk letters (风险提示函): `notifications.letter_id`, the five letter kinds
(issued, acknowledged, replied, closed, reply overdue) in the notifications' and the outbox's
kind checks, and a check that each notification tells about one report or one letter, as its
kind says.

Until now every notification named a report: `geo.reports.notify.emit` refuses a report it
cannot find, and a report's removal takes its notifications with it (ON DELETE CASCADE), so a
row about nothing was never written by riskgrid; one written by hand links nowhere and is
removed here. Downgrading removes the letters' notifications and outbox events (with their
delivery log): the older schema has no word for them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import logging

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# geo.vocabulary.NotificationKind as of this revision (and LETTER_KINDS, the letters' share).
REPORT_KINDS = (
    "'dispatched', 'assigned', 'returned', 'check_task', 'overdue', 'supervised', 'resolved', "
    "'escalated'"
)
LETTER_KINDS = (
    "'letter_issued', 'letter_acknowledged', 'letter_replied', 'letter_closed', 'letter_overdue'"
)
OLD_KINDS = f"({REPORT_KINDS})"
KINDS = f"({REPORT_KINDS}, {LETTER_KINDS})"
# A letter's kind names its letter, any other kind its report; never both, never neither.
ABOUT = (
    f"(letter_id IS NOT NULL) = (kind IN ({LETTER_KINDS})) "
    "AND num_nonnulls(report_id, letter_id) = 1"
)


def _kinds(allowed: str) -> None:
    for table in ("notifications", "outbox"):
        op.drop_constraint(op.f(f"ck_{table}_kind"), table, type_="check")
        op.create_check_constraint(op.f(f"ck_{table}_kind"), table, f"kind IN {allowed}")


def upgrade() -> None:
    op.add_column("notifications", sa.Column("letter_id", UUID(as_uuid=True)))
    op.create_foreign_key(
        op.f("fk_notifications_letter_id_letters"),
        "notifications",
        "letters",
        ["letter_id"],
        ["id"],
        ondelete="CASCADE",
    )
    # A letter's removal finds its notifications here, not by reading every notification.
    op.create_index(
        "ix_notifications_letter_id",
        "notifications",
        ["letter_id"],
        postgresql_where=sa.text("letter_id IS NOT NULL"),
    )
    gone = op.get_bind().execute(sa.text("DELETE FROM notifications WHERE report_id IS NULL"))
    if gone.rowcount:
        logging.getLogger("alembic").warning(
            "removed %d notifications that named no report", gone.rowcount
        )
    _kinds(KINDS)
    op.create_check_constraint(op.f("ck_notifications_about"), "notifications", ABOUT)


def downgrade() -> None:
    op.drop_constraint(op.f("ck_notifications_about"), "notifications", type_="check")
    op.execute(f"DELETE FROM outbox WHERE kind IN ({LETTER_KINDS})")
    op.execute("DELETE FROM notifications WHERE letter_id IS NOT NULL")
    _kinds(OLD_KINDS)
    op.drop_index("ix_notifications_letter_id", "notifications")
    op.drop_column("notifications", "letter_id")
