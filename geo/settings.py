"""The one configuration object: `RISKGRID_*` variables (nested with `__`) and `DATABASE_URL`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseModel):
    """Connection pool and statement limits for the service's engine."""

    pool_size: int = Field(10, ge=1, le=200)
    max_overflow: int = Field(10, ge=0, le=200)
    pool_timeout_s: float = Field(10.0, gt=0)
    statement_timeout_ms: int = Field(30_000, ge=0)


class ClusterSettings(BaseModel):
    """The project-managed PostgreSQL cluster used when DATABASE_URL is not set."""

    home: Path = Path(".riskgrid")
    database: str = "riskgrid"
    port: int | None = Field(None, ge=1024, le=65535, description="fixed port; default: a free one")
    bin_dir: Path | None = Field(None, description="PostgreSQL binaries; default: newest found")


class LimitSettings(BaseModel):
    """Request limits that protect the service from oversized queries."""

    max_page_size: int = Field(1000, ge=1, le=100_000)
    default_page_size: int = Field(100, ge=1)
    max_bbox_deg2: float = Field(25.0, gt=0, description="largest bbox area, square degrees")

    @model_validator(mode="after")
    def _default_within_max(self) -> LimitSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("limits.default_page_size must not exceed limits.max_page_size")
        return self


class ImportSettings(BaseModel):
    """Tolerances the boundary validation applies."""

    overlap_tolerance_m2: float = Field(1.0, ge=0)
    gap_tolerance_m2: float = Field(1.0, ge=0)
    outside_tolerance_m2: float = Field(1.0, ge=0)


class Settings(BaseSettings):
    """All of riskgrid's configuration, read once from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="RISKGRID_", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str | None = Field(
        None,
        validation_alias="DATABASE_URL",
        description="postgresql+psycopg://… ; unset means the project-managed cluster",
    )
    db: DatabaseSettings = DatabaseSettings()
    cluster: ClusterSettings = ClusterSettings()
    limits: LimitSettings = LimitSettings()
    imports: ImportSettings = ImportSettings()
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, url: str | None) -> str | None:
        if url is None or url == "":
            return None
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            # Plain libpq URLs name no driver; riskgrid speaks psycopg 3.
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        if not url.startswith("postgresql+psycopg://"):
            raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql+psycopg://…)")
        return url


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read from the environment once."""
    return Settings()
