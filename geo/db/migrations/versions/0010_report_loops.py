"""Each report's loop in one row (`report_loops`): when it was first accepted, last dispatched,
first and last resolved, checked, verified, returned and reworked, kept by a trigger in the
statement that records the transitions. The evaluation read these from every transition of
every report (1.26 million at 250,000 reports: half a second of its second); now it reads one
row a report, and aggregates the transitions only of reports whose loop moved on after the
period it asks about (geo.evaluation.per_report).

Every column is a minimum, a maximum, a count or a conjunction of the transitions, so rows
are merged whatever order the transitions arrive in (the demo writes whole histories at once).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
# The resolution levels at or below a street (geo.vocabulary.AT_OR_BELOW_STREET).
LOW = "('grid', 'community', 'street')"

# One row of aggregates per report from the transitions in `source` (a table named e).
AGGREGATE = f"""
SELECT e.report_id,
  max(e.at) AS last_at,
  min(e.at) FILTER (WHERE e.to_status = 'accepted'
    OR (e.from_status = 'reported' AND e.to_status = 'dispatched')) AS accepted_at,
  min(e.at) FILTER (WHERE e.to_status = 'verified') AS verified_at,
  max(e.at) FILTER (WHERE e.to_status = 'dispatched') AS dispatched_at,
  max(e.at) FILTER (WHERE e.to_status = 'returned') AS returned_at,
  count(*) FILTER (WHERE e.to_status = 'returned') AS returns,
  max(e.at) FILTER (WHERE e.from_status = 'dispatched' AND e.to_status = 'in_progress')
    AS taken_at,
  min(e.at) FILTER (WHERE e.to_status = 'resolved') AS first_resolved_at,
  max(e.at) FILTER (WHERE e.to_status = 'resolved') AS resolved_at,
  max(e.at) FILTER (WHERE e.from_status = 'resolved' AND e.to_status = 'in_progress')
    AS reworked_at,
  min(e.at) FILTER (WHERE e.from_status = 'resolved') AS first_checked_at,
  max(e.at) FILTER (WHERE e.from_status = 'resolved') AS last_checked_at,
  count(*) FILTER (WHERE e.from_status = 'resolved') AS checks,
  (array_agg(e.actor_id ORDER BY e.at, e.id) FILTER (WHERE e.from_status = 'resolved'))[1]
    AS first_checker,
  bool_and(e.level IN {LOW}) FILTER (WHERE e.to_status = 'resolved') AS low
FROM {{source}} e WHERE e.kind = 'transition'
GROUP BY e.report_id"""

COLUMNS = ("last_at", "accepted_at", "verified_at", "dispatched_at", "returned_at", "returns",
           "taken_at", "first_resolved_at", "resolved_at", "reworked_at", "first_checked_at",
           "last_checked_at", "checks", "first_checker", "low")  # fmt: skip
FIRST = ("accepted_at", "verified_at", "first_resolved_at", "first_checked_at")
LAST = ("last_at", "dispatched_at", "returned_at", "taken_at", "resolved_at", "reworked_at",
        "last_checked_at")  # fmt: skip


def _merge(column: str) -> str:
    """How a row already stored (l) takes in the aggregates of new transitions (EXCLUDED);
    LEAST and GREATEST pass over NULLs."""
    if column in FIRST:
        return f"{column} = LEAST(l.{column}, EXCLUDED.{column})"
    if column in LAST:
        return f"{column} = GREATEST(l.{column}, EXCLUDED.{column})"
    if column in ("returns", "checks"):
        return f"{column} = l.{column} + EXCLUDED.{column}"
    if column == "first_checker":  # the actor of whichever first check came first
        return (
            "first_checker = CASE WHEN l.first_checked_at IS NULL OR EXCLUDED.first_checked_at "
            "< l.first_checked_at THEN EXCLUDED.first_checker ELSE l.first_checker END"
        )
    # Every resolution at street level or below, over both sets (NULL: none yet).
    return "low = COALESCE(l.low AND EXCLUDED.low, l.low, EXCLUDED.low)"


KEEP_LOOPS = f"""
CREATE FUNCTION keep_report_loops() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO report_loops AS l (report_id, {", ".join(COLUMNS)})
  {AGGREGATE.format(source="added")}
  ON CONFLICT (report_id) DO UPDATE SET {", ".join(_merge(c) for c in COLUMNS)};
  RETURN NULL;
END $$"""


def upgrade() -> None:
    op.create_table(
        "report_loops",
        sa.Column(
            "report_id",
            UUID(as_uuid=True),
            sa.ForeignKey("reports.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        *(
            sa.Column(c, sa.Integer if c == "first_checker" else TZ)
            for c in COLUMNS
            if c not in ("returns", "checks", "low")
        ),
        sa.Column("returns", sa.Integer, nullable=False),
        sa.Column("checks", sa.Integer, nullable=False),
        sa.Column("low", sa.Boolean),
    )
    op.execute(KEEP_LOOPS)
    op.execute(
        "CREATE TRIGGER report_loops_kept AFTER INSERT ON report_events REFERENCING NEW TABLE "
        "AS added FOR EACH STATEMENT EXECUTE FUNCTION keep_report_loops()"
    )
    op.execute(
        f"INSERT INTO report_loops (report_id, {', '.join(COLUMNS)}) "
        f"{AGGREGATE.format(source='report_events')}"
    )
    # Transitions are a history: a change or removal of one would leave its loop row behind
    # (a report's removal takes both with it).
    op.execute(
        """
CREATE FUNCTION refuse_transition_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'report_events: a transition is kept as recorded (report %)', OLD.report_id
    USING ERRCODE = 'integrity_constraint_violation';
END $$"""
    )
    op.execute(
        "CREATE TRIGGER report_transitions_kept BEFORE UPDATE OF kind, from_status, to_status, "
        "level, at, actor_id ON report_events FOR EACH ROW WHEN (OLD.kind = 'transition' OR "
        "NEW.kind = 'transition') EXECUTE FUNCTION refuse_transition_change()"
    )
    op.execute("ANALYZE report_loops")


def downgrade() -> None:
    op.execute("DROP TRIGGER report_transitions_kept ON report_events")
    op.execute("DROP FUNCTION refuse_transition_change()")
    op.execute("DROP TRIGGER report_loops_kept ON report_events")
    op.execute("DROP FUNCTION keep_report_loops()")
    op.drop_table("report_loops")
