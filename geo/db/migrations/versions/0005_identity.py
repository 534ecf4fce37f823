"""Identity: users with roles and scopes, tokens of users (sessions and integrations), the
reporter of a report as a user, and the append-only audit log.

The api_tokens of 0004 become integration tokens of one user each ("legacy-<id>", no password,
so nobody can log in as it), expiring 90 days after this migration.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import INET, JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
ROLES = "('admin', 'dispatcher', 'department', 'coordinator', 'planner', 'worker')"
OLD_ROLES = "('admin', 'coordinator', 'planner', 'worker')"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("department", sa.String(100)),
        # argon2id (argon2-cffi); NULL: no password login (an integration's user).
        sa.Column("password_hash", sa.Text),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("password_changed_at", TZ),
        sa.Column("disabled_at", TZ),
        sa.CheckConstraint(f"role IN {ROLES}", name=op.f("ck_users_role")),
        sa.CheckConstraint(
            "(role = 'department') = (department IS NOT NULL)", name=op.f("ck_users_department")
        ),
        sa.CheckConstraint("username ~ '^[a-z0-9][a-z0-9._-]*$'", name=op.f("ck_users_username")),
    )
    for scope, column in (("grids", "grid_code"), ("districts", "district_code")):
        op.create_table(
            f"user_{scope}",
            sa.Column(
                "user_id",
                sa.Integer,
                sa.ForeignKey("users.id", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column(column, sa.String(32), primary_key=True),
        )
    op.create_table(
        "auth_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100)),
        # Only a SHA-256 of the token is kept: a leaked table gives no working token.
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ),
        sa.CheckConstraint("kind IN ('session', 'integration')", name=op.f("ck_auth_tokens_kind")),
    )
    op.create_index("ix_auth_tokens_user_id", "auth_tokens", ["user_id"])
    _move_api_tokens()
    op.add_column("reports", sa.Column("reporter_id", sa.Integer, sa.ForeignKey("users.id")))
    op.create_index("ix_reports_reporter_id", "reports", ["reporter_id"])
    _audit_log()


def _move_api_tokens() -> None:
    op.execute(
        f"""
        INSERT INTO users (username, name, role)
        SELECT 'legacy-' || id, name, CASE WHEN role IN {OLD_ROLES} THEN role ELSE 'planner' END
        FROM api_tokens
        """
    )
    op.execute(
        """
        INSERT INTO auth_tokens (user_id, kind, name, token_sha256, created_at, expires_at,
                                 revoked_at)
        SELECT u.id, 'integration', t.name, t.token_sha256, t.created_at,
               now() + interval '90 days', t.revoked_at
        FROM api_tokens t JOIN users u ON u.username = 'legacy-' || t.id
        """
    )
    op.drop_table("api_tokens")


def _audit_log() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.String(64)),
        sa.Column("role", sa.String(16)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(32)),
        sa.Column("object_id", sa.String(64)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("client", INET),
        sa.Column("changes", JSONB),
        sa.Column("people", sa.Integer),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor", "at"])
    op.create_index("ix_audit_log_action_at", "audit_log", ["action", "at"])
    # Append-only: the database itself refuses to change, remove or truncate rows. (A
    # superuser can still switch triggers off, as the tests do to empty it between cases.)
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
    op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_table("audit_log")
    op.drop_index("ix_reports_reporter_id", "reports")
    op.drop_column("reports", "reporter_id")
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("revoked_at", TZ),
        sa.CheckConstraint(f"role IN {OLD_ROLES}", name=op.f("ck_api_tokens_role")),
    )
    op.drop_table("auth_tokens")
    op.drop_table("user_districts")
    op.drop_table("user_grids")
    op.drop_table("users")
