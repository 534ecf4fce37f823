"""Photo evidence of a visit (走访排查): `visit_photos`, as `report_photos` is for reports, so
that a visit with no hazard (a household checked, a workshop found in order) carries its photo.

Visits are kept as made (0008's trigger refuses their removal); the cascade only says that a
photo belongs to its visit. Their photos are kept as sent too: the service's role
(riskgrid_app, 0012) gets the table by default privileges, and loses UPDATE and DELETE here, as
it has only SELECT and INSERT on visits.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
ROLE = "riskgrid_app"  # as of 0012
BANDS = "ARRAY[" + ", ".join(f"'{i}' || substr(phash, {2 * i + 1}, 2)" for i in range(8)) + "]"


def upgrade() -> None:
    op.create_table(
        "visit_photos",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "visit_id",
            UUID(as_uuid=True),
            sa.ForeignKey("visits.id", ondelete="CASCADE"),
            nullable=False,
        ),
        # The stored (EXIF-free) file's SHA-256: its name in the photo store.
        sa.Column("sha256", sa.String(64), nullable=False),
        # The uploaded bytes' SHA-256: the same upload to the same visit is stored once.
        sa.Column("upload_sha256", sa.String(64), nullable=False),
        sa.Column("thumb_sha256", sa.String(64), nullable=False),
        sa.Column("phash", sa.String(16), nullable=False),
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
        sa.Column("reused_from", UUID(as_uuid=True)),  # the visit the same picture is on
        sa.Column("uploaded_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        # Its leading column serves the look-ups by visit (a visit's photos, the count).
        sa.UniqueConstraint("visit_id", "upload_sha256", name="uq_visit_photos_upload"),
    )
    # As report_photos: a reused picture's candidates come from its hash's 8-bit bands.
    op.execute(f"CREATE INDEX ix_visit_photos_phash_bands ON visit_photos USING gin (({BANDS}))")
    op.execute(f"REVOKE UPDATE, DELETE ON TABLE visit_photos FROM {ROLE}")


def downgrade() -> None:
    op.drop_table("visit_photos")
