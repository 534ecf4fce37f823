"""风险提示函 (risk letters): a letter to one department drafted from the analysis of its remit,
issued with the year's next number (gap-free: one counter row per year, taken under its row
lock), acknowledged and replied to by the department (with attachments), closed by the sender.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
# geo.letters.status.LetterStatus (geo/db sits below geo/letters).
STATUSES = "('draft', 'issued', 'acknowledged', 'replied', 'closed')"
WAITING = "('issued', 'acknowledged')"


def _by(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer, sa.ForeignKey("users.id"))


def upgrade() -> None:
    op.create_table(
        "letter_numbers",
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
        sa.CheckConstraint("last > 0", name=op.f("ck_letter_numbers_last")),
    )
    op.create_table(
        "letters",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("districts", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("scope", JSONB, nullable=False),
        sa.Column("content", JSONB, nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("opening", sa.Text, nullable=False, server_default=""),
        sa.Column("recommendations", sa.Text, nullable=False, server_default=""),
        sa.Column("closing", sa.Text, nullable=False, server_default=""),
        sa.Column("year", sa.Integer),
        sa.Column("number", sa.Integer),
        _by("created_by"),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("issued_at", TZ),
        _by("issued_by"),
        sa.Column("reply_due", TZ),
        sa.Column("acknowledged_at", TZ),
        _by("acknowledged_by"),
        sa.Column("replied_at", TZ),
        _by("replied_by"),
        sa.Column("reply", sa.Text),
        sa.Column("closed_at", TZ),
        _by("closed_by"),
        sa.UniqueConstraint("year", "number", name="uq_letters_number"),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_letters_status")),
        # Numbered exactly when issued: a draft has no number, every issued letter one.
        sa.CheckConstraint(
            "(status = 'draft') = (number IS NULL) AND (number IS NULL) = (year IS NULL) "
            "AND (number IS NULL) = (reply_due IS NULL)",
            name=op.f("ck_letters_numbered"),
        ),
    )
    op.create_index("ix_letters_department_status", "letters", ["department", "status"])
    op.create_index(
        "ix_letters_waiting_due",
        "letters",
        ["reply_due"],
        postgresql_where=sa.text(f"status IN {WAITING}"),
    )
    op.create_table(
        "letter_attachments",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "letter_id",
            UUID(as_uuid=True),
            sa.ForeignKey("letters.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        _by("uploaded_by"),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_letter_attachments_letter_id", "letter_attachments", ["letter_id"])


def downgrade() -> None:
    op.drop_table("letter_attachments")
    op.drop_index("ix_letters_waiting_due", "letters")
    op.drop_index("ix_letters_department_status", "letters")
    op.drop_table("letters")
    op.drop_table("letter_numbers")
