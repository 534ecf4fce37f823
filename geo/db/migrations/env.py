"""Alembic environment: runs migrations on the connection `geo.migrate` hands over."""

from __future__ import annotations

from alembic import context

from geo.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `riskgrid db upgrade`, which supplies a connection")

context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
