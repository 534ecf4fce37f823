"""Case handling: the standard's loop (accepted, returned), handlers, supervision (督办),
rework and return counts, photo evidence, notifications, and the webhook outbox.

Existing reports keep their status and history: a reported → dispatched step stays as it was
(nothing is invented for the accepted state it skipped).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
STATUSES = (
    "('reported', 'accepted', 'dispatched', 'in_progress', 'returned', 'resolved', 'verified', "
    "'rejected', 'duplicate')"
)
OLD_STATUSES = (
    "('reported', 'dispatched', 'in_progress', 'resolved', 'verified', 'rejected', 'duplicate')"
)
PHOTO_KINDS = "('site', 'before', 'after', 'check')"
BANDS = "ARRAY[" + ", ".join(f"'{i}' || substr(phash, {2 * i + 1}, 2)" for i in range(8)) + "]"
NOTIFICATION_KINDS = (
    "('dispatched', 'assigned', 'returned', 'check_task', 'overdue', 'supervised', 'resolved', "
    "'escalated')"
)


def upgrade() -> None:
    op.drop_constraint(op.f("ck_reports_status"), "reports", type_="check")
    op.create_check_constraint(op.f("ck_reports_status"), "reports", f"status IN {STATUSES}")
    for column in (
        sa.Column("handler_id", sa.Integer, sa.ForeignKey("users.id"), index=True),
        sa.Column("duplicate_of", UUID(as_uuid=True)),
        sa.Column("supervised_at", TZ),
        sa.Column("supervised_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("supervision_note", sa.Text),
        # 自行处置: reported already fixed on the spot by its worker, for the desk to verify.
        sa.Column("on_site", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("overdue_noticed_at", TZ),
        sa.Column("escalated_at", TZ),
        sa.Column("rework_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("return_count", sa.Integer, nullable=False, server_default="0"),
    ):
        op.add_column("reports", column)
    for column in (
        sa.Column("reason", sa.Text),
        sa.Column("department", sa.String(100)),
        sa.Column("handler_id", sa.Integer),
        sa.Column("duplicate_of", UUID(as_uuid=True)),
        sa.Column("actor_id", sa.Integer),
    ):
        op.add_column("report_events", column)
    op.create_index("ix_reports_department_status", "reports", ["department", "status"])

    op.create_table(
        "report_photos",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "report_id",
            UUID(as_uuid=True),
            sa.ForeignKey("reports.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("kind", sa.String(8), nullable=False),
        # The stored (EXIF-free) file's SHA-256: its name in the photo store.
        sa.Column("sha256", sa.String(64), nullable=False),
        # The uploaded bytes' SHA-256: the same upload to the same report is stored once.
        sa.Column("upload_sha256", sa.String(64), nullable=False),
        sa.Column("thumb_sha256", sa.String(64), nullable=False),
        sa.Column("phash", sa.String(16), nullable=False, index=True),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("taken_at", TZ),
        sa.Column("exif_lon", sa.Float),
        sa.Column("exif_lat", sa.Float),
        sa.Column("exif_distance_m", sa.Float),
        sa.Column("exif_time_diff_h", sa.Float),
        sa.Column("flags", ARRAY(sa.String(32)), nullable=False, server_default="{}"),
        sa.Column("reused_from", UUID(as_uuid=True)),
        sa.Column("uploaded_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(f"kind IN {PHOTO_KINDS}", name=op.f("ck_report_photos_kind")),
        sa.UniqueConstraint("report_id", "upload_sha256", name="uq_report_photos_upload"),
    )
    # The perceptual hash as eight bands of 8 bits: two hashes at most 7 bits apart share a
    # band (pigeonhole), so the look-up of a reused photo reads its candidates from here.
    op.execute(f"CREATE INDEX ix_report_photos_phash_bands ON report_photos USING gin (({BANDS}))")

    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("report_id", UUID(as_uuid=True), sa.ForeignKey("reports.id", ondelete="CASCADE")),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("data", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("read_at", TZ),
        sa.CheckConstraint(f"kind IN {NOTIFICATION_KINDS}", name=op.f("ck_notifications_kind")),
        sa.UniqueConstraint("user_id", "event_id", name="uq_notifications_event"),
    )
    # A user's list newest first (ordered by id), and the unread count on every page.
    op.create_index("ix_notifications_user", "notifications", ["user_id", "id"])
    op.create_index(
        "ix_notifications_unread",
        "notifications",
        ["user_id", "id"],
        postgresql_where=sa.text("read_at IS NULL"),
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("next_attempt_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("delivered_at", TZ),
        sa.Column("gave_up_at", TZ),
        sa.Column("last_error", sa.Text),
        sa.CheckConstraint(f"kind IN {NOTIFICATION_KINDS}", name=op.f("ck_outbox_kind")),
    )
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at"],
        postgresql_where=sa.text("delivered_at IS NULL AND gave_up_at IS NULL"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "outbox_id",
            sa.BigInteger,
            sa.ForeignKey("outbox.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("duration_ms", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("outbox")
    op.drop_table("notifications")
    op.drop_table("report_photos")
    op.drop_index("ix_reports_department_status", "reports")
    for column in ("reason", "department", "handler_id", "duplicate_of", "actor_id"):
        op.drop_column("report_events", column)
    for column in (
        "handler_id",
        "duplicate_of",
        "supervised_at",
        "supervised_by",
        "supervision_note",
        "on_site",
        "overdue_noticed_at",
        "escalated_at",
        "rework_count",
        "return_count",
    ):
        op.drop_column("reports", column)
    # The two new states fold back to where the old loop had them.
    op.execute("UPDATE reports SET status = 'reported' WHERE status = 'accepted'")
    op.execute("UPDATE reports SET status = 'dispatched' WHERE status = 'returned'")
    op.drop_constraint(op.f("ck_reports_status"), "reports", type_="check")
    op.create_check_constraint(op.f("ck_reports_status"), "reports", f"status IN {OLD_STATUSES}")
