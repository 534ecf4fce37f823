"""Engine creation: DATABASE_URL when set, else the project-managed cluster."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from psycopg.rows import dict_row
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url

from geo.db.local_cluster import Cluster
from geo.settings import Settings


def project_cluster(settings: Settings) -> Cluster:
    """Return the project-managed cluster described by the settings."""
    c = settings.cluster
    return Cluster(c.home, database=c.database, port=c.port, bin_dir=c.bin_dir)


def database_url(settings: Settings) -> str:
    """Return the URL the service and the everyday commands use: DATABASE_URL, or the project
    cluster's login riskgrid_web (a member of riskgrid_app, with its password)."""
    if settings.database_url:
        return settings.database_url
    return project_cluster(settings).app_url()


def owner_url(settings: Settings) -> str:
    """Return the URL migrations, backups and restores use: RISKGRID_MIGRATION_URL, else
    DATABASE_URL, or the project cluster's superuser (with its password)."""
    if settings.database_url:
        return settings.migration_url or settings.database_url
    return project_cluster(settings).url()


def masked_url(url: str) -> str:
    """Return the URL with its password shown as `***`, for printing."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(settings: Settings, url: str | None = None) -> Engine:
    """Return a pooled engine with JIT off and a statement timeout.

    PostGIS functions declare high costs that switch JIT on: +65 ms a query for nothing.
    """
    db = settings.db
    options = f"-c jit=off -c statement_timeout={db.statement_timeout_ms} -c timezone=UTC"
    return create_engine(
        url or database_url(settings),
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        pool_timeout=db.pool_timeout_s,
        pool_pre_ping=False,
        # Bound values are personal data (descriptions, names, phones): never in an error's text.
        hide_parameters=True,
        connect_args={"options": options, "application_name": "riskgrid"},
    )


_NAMED = re.compile(r"(?<![:\w]):([a-z_]\w*)")


def driver_sql(sql: str) -> str:
    """Return `sql` with SQLAlchemy-style `:name` binds as psycopg's `%(name)s`."""
    return _NAMED.sub(r"%(\1)s", sql)


def fetch(conn: Connection, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run a driver-style statement as a server-side prepared statement; return dict rows.

    For the few statements on the intake hot path: psycopg's prepared statements skip
    SQLAlchemy's per-call compile and result bookkeeping (about 0.1 ms a statement here).
    Runs in the caller's transaction.
    """
    raw = conn.connection.driver_connection
    with raw.cursor(row_factory=dict_row) as cur:  # type: ignore[union-attr]
        cur.execute(sql, params, prepare=True)
        return cur.fetchall() if cur.description else []
