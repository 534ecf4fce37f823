"""Campaigns as objects (创安行动): status and its moves, the categories, districts and partner
departments in scope, the screening checklist (排查清单) and the target register; visits
(走访排查) with their grid and answers; campaign targets; reports linked to the visit that
found them.

Existing campaigns cover every district and have an empty checklist; their status follows
their dates on the day of the upgrade (past: closed, running: launched, future: draft).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
STATUSES = "('draft', 'launched', 'paused', 'closed')"
TODAY = "(now() AT TIME ZONE 'Asia/Shanghai')::date"


# The tallies are the answers of the checklist items marked `tally` (geo.campaigns.checklist):
# their codes are read from each campaign once per statement.
COUNT_VISITS = """
CREATE FUNCTION count_visits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO visit_counts AS vc (campaign_code, bucket, district_code, visits, leaflets,
                                  stickers, relocations, relocated_households)
  SELECT n.campaign_code,
         date_bin('15 minutes', n.visited_at, timestamptz '2000-01-01 00:00+00'),
         COALESCE(n.district_code, ''), count(*), sum(n.leaflets), sum(n.stickers),
         COALESCE(sum((n.answers ->> t.relocations)::numeric), 0),
         COALESCE(sum((n.answers ->> t.households)::numeric), 0)
  FROM new_visits n
  JOIN (SELECT c.code,
               max(i ->> 'code') FILTER (WHERE i ->> 'tally' = 'relocations') AS relocations,
               max(i ->> 'code') FILTER (WHERE i ->> 'tally' = 'relocated_households')
                 AS households
        FROM campaigns c LEFT JOIN LATERAL jsonb_array_elements(c.checklist) i ON TRUE
        WHERE c.code IN (SELECT DISTINCT campaign_code FROM new_visits)
        GROUP BY c.code) t ON t.code = n.campaign_code
  GROUP BY 1, 2, 3
  ON CONFLICT (campaign_code, bucket, district_code) DO UPDATE SET
    visits = vc.visits + EXCLUDED.visits, leaflets = vc.leaflets + EXCLUDED.leaflets,
    stickers = vc.stickers + EXCLUDED.stickers,
    relocations = vc.relocations + EXCLUDED.relocations,
    relocated_households = vc.relocated_households + EXCLUDED.relocated_households;
  RETURN NULL;
END $$;
CREATE FUNCTION refuse_visit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'visits are kept as made (their counts are kept with them): % refused',
    TG_OP;
END $$;
"""


def local_midnight(day: str) -> str:
    """SQL for the start of a local day (the campaigns' dates are Asia/Shanghai days)."""
    return f"(({day})::timestamp AT TIME ZONE 'Asia/Shanghai')"


def _text_array(name: str) -> sa.Column:
    return sa.Column(name, ARRAY(sa.Text), nullable=False, server_default="{}")


def upgrade() -> None:
    for column in (
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        _text_array("categories"),
        _text_array("districts"),
        _text_array("departments"),
        sa.Column("checklist", JSONB, nullable=False, server_default="[]"),
        sa.Column("targets", JSONB),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("launched_at", TZ),
        sa.Column("paused_at", TZ),
        sa.Column("closed_at", TZ),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
    ):
        op.add_column("campaigns", column)
    op.execute(
        f"""
        UPDATE campaigns SET
          districts = ARRAY(SELECT code FROM areas WHERE level = 'district' ORDER BY code),
          status = CASE WHEN ends_on < {TODAY} THEN 'closed'
                        WHEN starts_on <= {TODAY} THEN 'launched' ELSE 'draft' END,
          launched_at = CASE WHEN starts_on <= {TODAY} THEN {local_midnight("starts_on")} END,
          closed_at = CASE WHEN ends_on < {TODAY} THEN {local_midnight("ends_on + 1")} END
        """
    )
    op.create_check_constraint(op.f("ck_campaigns_status"), "campaigns", f"status IN {STATUSES}")

    # A campaign's target list (走访对象): imported points (small workshops, venues) or rows
    # of the household register taken when the campaign launches. A household target keeps
    # only its register id: name, phone and location stay in `households`, behind its rights.
    op.create_table(
        "campaign_targets",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "campaign_code",
            sa.String(32),
            sa.ForeignKey("campaigns.code", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("register", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column(
            "household_id", UUID(as_uuid=True), sa.ForeignKey("households.id", ondelete="CASCADE")
        ),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("grid_code", sa.String(32), sa.ForeignKey("grids.code", ondelete="SET NULL")),
        sa.Column("district_code", sa.String(32)),
        sa.Column("attributes", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("campaign_code", "ref", name="uq_campaign_targets_ref"),
        sa.CheckConstraint(
            "register IN ('households', 'workshops', 'venues')",
            name=op.f("ck_campaign_targets_register"),
        ),
        sa.CheckConstraint(
            "(register = 'households') = (household_id IS NOT NULL)",
            name=op.f("ck_campaign_targets_household"),
        ),
    )
    op.create_index(
        "ix_campaign_targets_geom", "campaign_targets", ["geom"], postgresql_using="gist"
    )
    op.create_index(
        "ix_campaign_targets_campaign_grid", "campaign_targets", ["campaign_code", "grid_code"]
    )

    op.create_table(
        "visits",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("campaign_code", sa.String(32), sa.ForeignKey("campaigns.code"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("visitor", sa.String(100)),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.Column("source_crs", sa.String(16), nullable=False, server_default="wgs84"),
        sa.Column("source_lon", sa.Float),
        sa.Column("source_lat", sa.Float),
        sa.Column("accuracy_m", sa.Float),
        sa.Column("grid_code", sa.String(32), sa.ForeignKey("grids.code", ondelete="SET NULL")),
        sa.Column("assignment_method", sa.String(16), nullable=False),
        sa.Column("assignment_distance_m", sa.Float),
        sa.Column("district_code", sa.String(32)),
        sa.Column(
            "target_id",
            UUID(as_uuid=True),
            sa.ForeignKey("campaign_targets.id", ondelete="SET NULL"),
        ),
        sa.Column("answers", JSONB, nullable=False, server_default="{}"),
        sa.Column("leaflets", sa.Integer, nullable=False, server_default="0"),
        sa.Column("stickers", sa.Integer, nullable=False, server_default="0"),
        sa.Column("visited_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.CheckConstraint("leaflets >= 0 AND stickers >= 0", name=op.f("ck_visits_outreach")),
    )
    op.create_index("ix_visits_geom", "visits", ["geom"], postgresql_using="gist")
    op.create_index("ix_visits_campaign_grid", "visits", ["campaign_code", "grid_code"])
    op.create_index("ix_visits_campaign_visited_at", "visits", ["campaign_code", "visited_at"])
    op.create_index("ix_visits_user_id", "visits", ["user_id"])
    op.create_index(
        "ix_visits_campaign_target",
        "visits",
        ["campaign_code", "target_id"],
        postgresql_where=sa.text("target_id IS NOT NULL"),
    )

    op.add_column(
        "reports",
        sa.Column("visit_id", UUID(as_uuid=True), sa.ForeignKey("visits.id", ondelete="SET NULL")),
    )
    op.create_index("ix_reports_visit_id", "reports", ["visit_id"])

    # Visit counts per campaign, quarter hour (UTC) and district, kept by a trigger in the
    # inserting statement: progress sums at most 96 rows a day and district instead of every
    # visit (300,000 visits: 310 ms → a few ms), in any zone whose offset is whole quarters.
    op.create_table(
        "visit_counts",
        sa.Column(
            "campaign_code",
            sa.String(32),
            sa.ForeignKey("campaigns.code", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("bucket", TZ, primary_key=True),
        sa.Column("district_code", sa.String(32), primary_key=True),  # '' for none
        sa.Column("visits", sa.BigInteger, nullable=False),
        sa.Column("leaflets", sa.BigInteger, nullable=False),
        sa.Column("stickers", sa.BigInteger, nullable=False),
        sa.Column("relocations", sa.BigInteger, nullable=False),
        sa.Column("relocated_households", sa.BigInteger, nullable=False),
    )
    op.execute(COUNT_VISITS)
    op.execute(
        "CREATE TRIGGER visits_counted AFTER INSERT ON visits REFERENCING NEW TABLE AS "
        "new_visits FOR EACH STATEMENT EXECUTE FUNCTION count_visits()"
    )
    # Visits are kept as made: a removal, or a change of what is counted, would leave the
    # counts behind (a grid or target removed still sets its column to NULL).
    op.execute(
        "CREATE TRIGGER visits_kept BEFORE DELETE ON visits "
        "FOR EACH ROW EXECUTE FUNCTION refuse_visit_change()"
    )
    op.execute(
        "CREATE TRIGGER visits_counts_kept BEFORE UPDATE ON visits FOR EACH ROW WHEN ("
        "(OLD.campaign_code, OLD.visited_at, OLD.district_code, OLD.leaflets, OLD.stickers, "
        "OLD.answers) IS DISTINCT FROM (NEW.campaign_code, NEW.visited_at, NEW.district_code, "
        "NEW.leaflets, NEW.stickers, NEW.answers)) EXECUTE FUNCTION refuse_visit_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER visits_counts_kept ON visits")
    op.execute("DROP TRIGGER visits_kept ON visits")
    op.execute("DROP TRIGGER visits_counted ON visits")
    op.execute("DROP FUNCTION refuse_visit_change()")
    op.execute("DROP FUNCTION count_visits()")
    op.drop_table("visit_counts")
    op.drop_index("ix_reports_visit_id", "reports")
    op.drop_column("reports", "visit_id")
    op.drop_table("visits")
    op.drop_table("campaign_targets")
    op.drop_constraint(op.f("ck_campaigns_status"), "campaigns", type_="check")
    for name in (
        "updated_at",
        "closed_at",
        "paused_at",
        "launched_at",
        "created_at",
        "created_by",
        "targets",
        "checklist",
        "departments",
        "districts",
        "categories",
        "status",
    ):
        op.drop_column("campaigns", name)
