"""Who connects as what: the service's group role (migration 0012 says what it may do), the
project cluster's login in it, and the one owner's statement the service runs through a
function: ANALYZE after a bulk load."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

APP_ROLE = "riskgrid_app"  # NOLOGIN: holds the rights; logins are its members
WEB_LOGIN = "riskgrid_web"  # the project cluster's login for the service and the commands


def refresh_statistics(conn: Connection, *tables: str) -> None:
    """Refresh the planner's statistics of riskgrid's `tables`, in the caller's transaction.

    ANALYZE is the owner's: as a member of riskgrid_app it would only warn and skip, so it
    runs through `refresh_statistics()`, which runs it with the owner's rights (0012).
    """
    conn.execute(
        text("SELECT refresh_statistics(VARIADIC CAST(:t AS text[]))"), {"t": list(tables)}
    )


def ensure_app_role(conn: Connection) -> bool:
    """Create riskgrid_app (NOLOGIN) when it is missing and this user may; return whether it
    exists now. A backup's grants name it, and roles are the server's, not the database's."""
    exists = "SELECT 1 FROM pg_roles WHERE rolname = :r"
    if conn.execute(text(exists), {"r": APP_ROLE}).scalar():
        return True
    may = conn.execute(
        text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
    ).scalar()
    if may:
        # Another database of the server may be creating it at the same moment.
        conn.execute(
            text(
                f"DO $$ BEGIN CREATE ROLE {APP_ROLE} NOLOGIN; "
                "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            )
        )
    return bool(may)


@dataclass(frozen=True)
class Login:
    """What a connection's login is, for `riskgrid db status`."""

    name: str
    superuser: bool
    owns_tables: bool  # owns riskgrid's tables: may ALTER, TRUNCATE, switch triggers off
    in_app_role: bool  # a member of riskgrid_app, or that role itself

    @property
    def least_privilege(self) -> bool:
        """True when the login has riskgrid_app's rights and none of an owner's."""
        return self.in_app_role and not self.superuser and not self.owns_tables


def login_of(conn: Connection, user: str | None = None) -> Login | None:
    """Return what `user` (default: the connection's) is; None when there is no such role."""
    row = (
        conn.execute(
            text(
                "SELECT r.rolname AS name, r.rolsuper AS superuser, "
                "  EXISTS (SELECT 1 FROM pg_tables t WHERE t.schemaname = 'public' "
                "    AND t.tablename = 'audit_log' "
                "    AND pg_has_role(r.rolname, t.tableowner, 'USAGE')) AS owns_tables, "
                "  EXISTS (SELECT 1 FROM pg_roles a WHERE a.rolname = :app "
                "    AND pg_has_role(r.rolname, a.oid, 'USAGE')) AS in_app_role "
                "FROM pg_roles r WHERE r.rolname = COALESCE(:user, current_user)"
            ),
            {"app": APP_ROLE, "user": user},
        )
        .mappings()
        .one_or_none()
    )
    return Login(**row) if row else None
