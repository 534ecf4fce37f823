"""Engine creation: DATABASE_URL when set, else the project-managed cluster."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from geo.cluster import Cluster
from geo.settings import Settings


def project_cluster(settings: Settings) -> Cluster:
    """Return the project-managed cluster described by the settings."""
    c = settings.cluster
    return Cluster(c.home, database=c.database, port=c.port, bin_dir=c.bin_dir)


def database_url(settings: Settings) -> str:
    """Return the URL to use: DATABASE_URL, or the project cluster's (which must be up)."""
    if settings.database_url:
        return settings.database_url
    return project_cluster(settings).url()


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
        connect_args={"options": options, "application_name": "riskgrid"},
    )
