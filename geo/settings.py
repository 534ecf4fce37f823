"""The one configuration object: `RISKGRID_*` variables (nested with `__`) and `DATABASE_URL`."""

from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo.vocabulary import OPEN_STATUSES
from geo.worktime import Limit, parse_hours, parse_zone


class DatabaseSettings(BaseModel):
    """Connection pool and statement limits for the service's engine."""

    # Also the request threads per worker: more threads only fight over the GIL (measured at
    # concurrency 32: 5 threads p99 63 ms, 10 threads p99 154 ms, same throughput).
    pool_size: int = Field(5, ge=1, le=200)
    max_overflow: int = Field(10, ge=0, le=200)
    pool_timeout_s: float = Field(10.0, gt=0)
    statement_timeout_ms: int = Field(30_000, ge=1000, description="every statement's limit")

    @model_validator(mode="after")
    def _room_for_every_admitted_request(self) -> DatabaseSettings:
        # A server process runs pool_size requests at once (api.admission), each holding at
        # most two connections, plus /health's two: the pool must never make one wait.
        if self.max_overflow < self.pool_size + 2:
            raise ValueError(
                f"db.max_overflow must be at least db.pool_size + 2 ({self.pool_size + 2}): "
                "each running request may hold two connections"
            )
        return self


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


class ReportSettings(BaseModel):
    """Rules for grid workers' reports: assignment, intake checks, duplicates, deadlines."""

    snap_tolerance_m: float = Field(150.0, ge=0, le=5000, description="nearest-grid snap")
    service_area_margin_m: float = Field(
        10_000.0, gt=0, description="refuse points farther than this from every grid"
    )
    duplicate_radius_m: float = Field(30.0, ge=0, le=1000)
    duplicate_window_h: float = Field(72.0, ge=0, le=24 * 60)
    clock_skew_s: float = Field(300.0, ge=0, le=86_400, description="future reported_at allowed")
    max_age_days: float = Field(400.0, gt=0, description="oldest reported_at accepted")
    naive_timezone: str = Field("Asia/Shanghai", description="zone of timestamps with no offset")
    max_batch: int = Field(1000, ge=1, le=10_000)
    escalate_after_h: float = Field(
        24.0, gt=0, le=24 * 60, description="overdue this long: escalated to the district"
    )
    overdue_check_s: float = Field(
        60.0, gt=0, le=3600, description="how often a server looks for overdue reports"
    )
    sweep_overdue: bool = Field(True, description="server processes notice and escalate")
    departments: dict[str, str] = Field(default_factory=dict, description="category → department")
    time_limits: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="category → {stage: limit}, e.g. {'gas_leak': {'in_progress': '2h'}}: "
        "'4wh' working hours, '1wd' working days, '2h' calendar hours, '3d' calendar days; "
        "stages not named keep the taxonomy's limit",
    )

    @field_validator("time_limits")
    @classmethod
    def _limits_per_open_stage(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        stages = [str(s) for s in OPEN_STATUSES]
        out: dict[str, dict[str, str]] = {}
        for code, limits in value.items():
            unknown = sorted(set(limits) - set(stages))
            if unknown:
                raise ValueError(
                    f"reports.time_limits[{code!r}] names {', '.join(unknown)}: "
                    f"limits are set for the open stages {', '.join(stages)}"
                )
            try:
                out[code] = {s: str(Limit.parse(text)) for s, text in limits.items()}
            except ValueError as exc:
                raise ValueError(f"reports.time_limits[{code!r}]: {exc}") from None
        return out

    @field_validator("naive_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class MapSettings(BaseModel):
    """The basemap under the theme maps (`none` needs no network at all: intranets), and the
    thresholds of their "quiet: check" layer."""

    basemap: str = Field("none", pattern="^(none|url|osm|tianditu|gaode)$")
    tile_url: str | None = Field(None, description="tile URL template for basemap=url")
    tile_attribution: str = "riskgrid"
    tianditu_key: str | None = None
    # 核查漏报: grids sending fewer reports than their residents would (geo.analytics.quiet).
    quiet_max_q: float = Field(0.05, gt=0, lt=1, description="'quiet: check' below this FDR q")
    quiet_min_expected: float = Field(
        3.0, gt=0, le=1000, description="grids expecting fewer reports are not tested"
    )
    quiet_by_stratum: bool = Field(True, description="a rate per 街道 / 乡镇 stratum, not one")
    quiet_household_size: float | None = Field(
        None, gt=0, le=20, description="residents per household; None: the register's mean"
    )

    @model_validator(mode="after")
    def _complete(self) -> MapSettings:
        if self.basemap == "url" and not self.tile_url:
            raise ValueError(
                "maps.basemap=url needs maps.tile_url, e.g. http://tiles.local/{z}/{x}/{y}.png"
            )
        if self.basemap == "tianditu" and not self.tianditu_key:
            raise ValueError("maps.basemap=tianditu needs maps.tianditu_key")
        return self


class RiskSettings(BaseModel):
    """The flood ranking's weights and the limits of ad-hoc area queries.

    Score = 100 x (exposure x flood zones + low_lying x low-lying share + proximity x
    nearness to rivers and reservoirs + hazards x open flood hazards + vulnerable x vulnerable
    residents); each part is 0..1 (see geo.risk). The weights must add up to 1.
    """

    exposure: float = Field(0.35, ge=0, le=1)
    low_lying: float = Field(0.10, ge=0, le=1)
    proximity: float = Field(0.15, ge=0, le=1)
    hazards: float = Field(0.20, ge=0, le=1)
    vulnerable: float = Field(0.20, ge=0, le=1)
    buffer_m: float = Field(3000.0, gt=0, le=50_000, description="proximity fades to 0 here")
    hazards_half: float = Field(5.0, gt=0, description="open hazards that score half")
    vulnerable_half: float = Field(50.0, gt=0, description="vulnerable residents scoring half")
    max_query_km2: float = Field(2000.0, gt=0, description="largest area query")
    max_query_vertices: int = Field(20_000, ge=4)
    max_feature_distance_m: float = Field(20_000.0, gt=0)

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> RiskSettings:
        total = self.exposure + self.low_lying + self.proximity + self.hazards + self.vulnerable
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"risk weights must add up to 1 (they add up to {total:g})")
        return self


class AuthSettings(BaseModel):
    """Logins, tokens, lockout, and how much personal data roles without the right to it see."""

    session_ttl_s: int = Field(8 * 3600, ge=60, description="a login's token lives this long")
    integration_ttl_days: int = Field(90, ge=1, le=3650, description="riskgrid tokens create")
    min_password_length: int = Field(10, ge=8, le=128)
    max_failures_per_user: int = Field(5, ge=1, description="failed logins before 429")
    max_failures_per_client: int = Field(20, ge=1, description="same, per client address")
    failure_window_s: int = Field(900, ge=10, description="failures counted over this window")
    token_cache_s: float = Field(
        2.0, ge=0, le=60, description="a checked token is trusted this long per process"
    )
    cookie_secure: bool | None = Field(
        None, description="Secure flag on the session cookie; None: when served over https"
    )
    k_anonymity: int = Field(
        5, ge=1, description="household and people counts below this are withheld"
    )
    sensitive_themes: tuple[str, ...] = Field(
        ("elderly", "dispute", "stability"),
        description="reports of these themes show no description, reporter or exact point",
    )


class ServerSettings(BaseModel):
    """The HTTP server's door: body and header limits, slow clients, proxies, saturation."""

    max_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body")
    max_batch_body_bytes: int = Field(
        8_000_000, ge=1024, description="largest body of a report or household batch"
    )
    max_upload_bytes: int = Field(20_000_000, ge=1024, description="largest photo upload body")
    max_header_bytes: int = Field(
        16_384, ge=1024, le=1_048_576, description="request line and headers together (431)"
    )
    max_headers: int = Field(100, ge=10, le=1000, description="header lines per request")
    header_timeout_s: float = Field(
        10.0, gt=0, le=300, description="a client must send its request headers within this (408)"
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        le=600,
        description="a request body must arrive whole this long after it is first read (408)",
    )
    keep_alive_s: float = Field(5.0, gt=0, le=300, description="idle keep-alive connections")
    trusted_proxies: tuple[str, ...] = Field(
        (), description="addresses whose X-Forwarded-For is believed (serve --proxy-headers)"
    )
    max_queue: int = Field(
        20, ge=0, le=10_000, description="requests that may wait for a free slot; more get 503"
    )
    queue_timeout_s: float = Field(
        2.0, gt=0, le=60, description="longest wait for a free slot before 503"
    )
    request_budget_s: float = Field(
        10.0, gt=0, le=600, description="longest computation one request may start (statistics)"
    )


class RateSettings(BaseModel):
    """Rate limits in the notation of the `limits` library ("600/minute", "10/second;...").

    Counted in each server process's memory: with N processes a client may get up to N times.
    """

    enabled: bool = True
    per_user: str = Field("600/minute", description="requests per logged-in user")
    per_client: str = Field("3000/minute", description="requests per client address")
    login: str = Field(
        "10/minute;100/hour", description="login attempts per client address, right or wrong"
    )

    @field_validator("per_user", "per_client", "login")
    @classmethod
    def _limits_notation(cls, value: str) -> str:
        from limits import parse_many  # ~100 ms to import: only when a limit is set

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit: write e.g. '600/minute' or '10/minute;100/hour'"
            ) from None
        return value


class LogSettings(BaseModel):
    """Log lines: plain text or JSON lines, each with the request id."""

    format: str = Field("text", pattern="^(text|json)$")
    level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


class WorkTimeSettings(BaseModel):
    """Working time for deadlines: office hours and local changes to the national calendar."""

    timezone: str = Field("Asia/Shanghai", description="zone of the office hours")
    hours: list[tuple[str, str]] = Field(
        [("08:30", "12:00"), ("13:30", "17:30")],
        description="office hours of every working day, in order, e.g. [['08:30', '12:00']]",
    )
    extra_holidays: list[date] = Field(
        default_factory=list, description="local days off, over the national calendar"
    )
    extra_workdays: list[date] = Field(
        default_factory=list, description="local working days, over the national calendar"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        parse_zone(value)
        return value

    @field_validator("hours")
    @classmethod
    def _office_hours_in_order(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        try:
            parse_hours(value)
        except ValueError as exc:
            raise ValueError(f"worktime.hours: {exc}") from None
        return value

    @model_validator(mode="after")
    def _day_off_or_working(self) -> WorkTimeSettings:
        both = sorted(set(self.extra_holidays) & set(self.extra_workdays))
        if both:
            raise ValueError(
                "worktime.extra_holidays and extra_workdays both list "
                + ", ".join(d.isoformat() for d in both)
            )
        return self


class PhotoSettings(BaseModel):
    """Photo evidence: where files live, limits, and the checks against the report."""

    folder: Path | None = Field(
        None, description="photo store (files named by content hash); default: cluster.home/photos"
    )
    max_bytes: int = Field(20_000_000, ge=10_000, description="largest photo file")
    max_per_report: int = Field(30, ge=1, le=1000)
    max_per_visit: int = Field(10, ge=1, le=1000, description="photos a campaign visit takes")
    max_pixels: int = Field(50_000_000, ge=10_000, description="larger images are refused")
    thumb_px: int = Field(320, ge=64, le=2048, description="longest side of a thumbnail")
    flag_distance_m: float = Field(200.0, gt=0, description="EXIF position this far: flagged")
    flag_time_h: float = Field(48.0, gt=0, description="EXIF time this far from the report")
    after_not_required: tuple[str, ...] = Field(
        ("dispute",), description="themes whose reports resolve without an `after` photo"
    )


class LetterSettings(BaseModel):
    """Risk letters (风险提示函): who sends them, the reply's time, what a draft shows, and the
    limits on a reply's attachments."""

    sender: str = Field("综治中心", min_length=1, max_length=100, description="signs the letters")
    reply_days: float = Field(
        10.0, gt=0, le=366, description="working days from issue to the reply's due time"
    )
    default_days: int = Field(
        90, ge=1, le=3660, description="period analysed when a draft names none (until now)"
    )
    open_listed: int = Field(
        50, ge=1, le=1000, description="open reports listed in a letter, overdue first"
    )
    hotspots_listed: int = Field(20, ge=1, le=500, description="hot-spot grids listed")
    folder: Path | None = Field(
        None, description="where reply attachments live; default: cluster.home/letters"
    )
    max_attachment_bytes: int = Field(10_000_000, ge=1000, description="largest attachment")
    max_attachments: int = Field(10, ge=1, le=100, description="attachments of one reply")


class WebhookSettings(BaseModel):
    """Where events go out (an SMS or WeChat gateway), signed with HMAC-SHA256."""

    url: str | None = Field(None, description="POST each event here; unset: no webhook")
    secret: SecretStr | None = Field(None, description="HMAC-SHA256 key of the signature")
    timeout_s: float = Field(5.0, gt=0, le=60)
    max_attempts: int = Field(12, ge=1, le=100)
    backoff_s: float = Field(2.0, gt=0, description="first retry after this, doubling")
    max_backoff_s: float = Field(900.0, gt=0)
    poll_s: float = Field(2.0, gt=0, le=300, description="how often a server looks for events")
    # A gateway configured (or back) after a long pause would otherwise text people about
    # events of last week: older ones are given up, not sent.
    max_age_s: float = Field(86_400.0, gt=0, description="events older than this are not sent")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        from urllib.parse import urlsplit

        if url is None or url == "":
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook.url must be an http:// or https:// URL with a host")
        return url

    @model_validator(mode="after")
    def _signed(self) -> WebhookSettings:
        if self.url is not None and (self.secret is None or not self.secret.get_secret_value()):
            raise ValueError(
                "webhook.url needs webhook.secret (RISKGRID_WEBHOOK__SECRET): the gateway checks "
                "each event's HMAC-SHA256 signature with it"
            )
        if self.max_backoff_s < self.backoff_s:
            raise ValueError("webhook.max_backoff_s must not be less than webhook.backoff_s")
        return self


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
    migration_url: str | None = Field(
        None,
        description="DATABASE_URL's server only: the owner's URL for migrations, backups and "
        "restores, when DATABASE_URL logs in as a member of riskgrid_app",
    )
    db: DatabaseSettings = DatabaseSettings()
    cluster: ClusterSettings = ClusterSettings()
    limits: LimitSettings = LimitSettings()
    imports: ImportSettings = ImportSettings()
    reports: ReportSettings = ReportSettings()
    maps: MapSettings = MapSettings()
    risk: RiskSettings = RiskSettings()
    auth: AuthSettings = AuthSettings()
    server: ServerSettings = ServerSettings()
    rates: RateSettings = RateSettings()
    log: LogSettings = LogSettings()
    worktime: WorkTimeSettings = WorkTimeSettings()
    photos: PhotoSettings = PhotoSettings()
    webhook: WebhookSettings = WebhookSettings()
    letters: LetterSettings = LetterSettings()
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    warm_up: bool = Field(True, description="load statistics and grid weights at start-up")
    workers: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1),
        ge=1,
        le=64,
        description="server processes; one per core",
    )

    @field_validator("database_url", "migration_url")
    @classmethod
    def _postgres_only(cls, url: str | None, info: ValidationInfo) -> str | None:
        if url is None or url == "":
            return None
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            # Plain libpq URLs name no driver; riskgrid speaks psycopg 3.
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        if not url.startswith("postgresql+psycopg://"):
            name = "DATABASE_URL" if info.field_name == "database_url" else "RISKGRID_MIGRATION_URL"
            raise ValueError(f"{name} must be a PostgreSQL URL (postgresql+psycopg://…)")
        return url

    @model_validator(mode="after")
    def _migration_url_with_database_url(self) -> Settings:
        if self.migration_url and not self.database_url:
            raise ValueError(
                "RISKGRID_MIGRATION_URL is for a DATABASE_URL server: the project's own cluster "
                "migrates as its superuser; unset it, or set DATABASE_URL too"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read from the environment once."""
    return Settings()
