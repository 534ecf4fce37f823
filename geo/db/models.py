"""Table definitions (SQLAlchemy 2 + GeoAlchemy2). Schema changes go through Alembic migrations."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from geo.vocabulary import (
    LETTER_KINDS,
    OPEN_STATUSES,
    AreaLevel,
    AssignmentMethod,
    GridKind,
    NotificationKind,
    PhotoKind,
    ReportStatus,
    ResolutionLevel,
    RiskKind,
    Role,
    TokenKind,
    sql_list,
)

_naming = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: Iterable[StrEnum]) -> str:
    return f"{column} IN {sql_list(values)}"


class Base(DeclarativeBase):
    """Declarative base carrying the constraint naming convention the migrations use."""

    metadata = MetaData(naming_convention=_naming)


class BoundaryVersion(Base):
    """One import that changed the boundaries: what file, when, and what it changed."""

    __tablename__ = "boundary_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    summary: Mapped[dict] = mapped_column(JSONB, default=dict)


class Area(Base):
    """Administrative areas: city → district/county → street/township → community/village."""

    __tablename__ = "areas"
    __table_args__ = (CheckConstraint(_in("level", AreaLevel), name="level"),)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_code: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("areas.code", deferrable=True, initially="DEFERRED"), index=True
    )
    population: Mapped[int | None] = mapped_column(Integer)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)
    boundary_version: Mapped[int] = mapped_column(ForeignKey("boundary_versions.id"))


class Grid(Base):
    """A grid (网格): comprehensive grids tile the city, exclusive (专属) grids sit on top."""

    __tablename__ = "grids"
    __table_args__ = (CheckConstraint(_in("kind", GridKind), name="kind"),)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), index=True)
    category: Mapped[str | None] = mapped_column(String(32))
    community_code: Mapped[str | None] = mapped_column(String(32), index=True)
    district_code: Mapped[str | None] = mapped_column(String(32), index=True)
    population: Mapped[int | None] = mapped_column(Integer)
    attributes: Mapped[dict] = mapped_column(JSONB, default=dict)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)
    area_m2: Mapped[float] = mapped_column(Float)
    boundary_version: Mapped[int] = mapped_column(ForeignKey("boundary_versions.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Campaign(Base):
    """A 创安 campaign: a theme over a date window, its districts, partner departments,
    screening checklist (排查清单) and target register; draft → launched ⇄ paused → closed."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("ends_on >= starts_on", name="dates"),
        # geo.campaigns.lifecycle.CampaignStatus (geo/db sits below geo/campaigns).
        CheckConstraint("status IN ('draft', 'launched', 'paused', 'closed')", name="status"),
    )
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    theme: Mapped[str] = mapped_column(String(32))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    categories: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    districts: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    departments: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    checklist: Mapped[list] = mapped_column(JSONB, default=list)
    targets: Mapped[dict | None] = mapped_column(JSONB)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    launched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CampaignTarget(Base):
    """One entry of a campaign's target list (走访对象): an imported point (a small workshop,
    a venue) or a household of the register, kept by its id only (its personal data stays in
    `households`)."""

    __tablename__ = "campaign_targets"
    __table_args__ = (
        UniqueConstraint("campaign_code", "ref", name="uq_campaign_targets_ref"),
        CheckConstraint("register IN ('households', 'workshops', 'venues')", name="register"),
        CheckConstraint("(register = 'households') = (household_id IS NOT NULL)", name="household"),
        Index("ix_campaign_targets_campaign_grid", "campaign_code", "grid_code"),
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    campaign_code: Mapped[str] = mapped_column(ForeignKey("campaigns.code", ondelete="CASCADE"))
    register: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE")
    )
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True))
    grid_code: Mapped[str | None] = mapped_column(ForeignKey("grids.code", ondelete="SET NULL"))
    district_code: Mapped[str | None] = mapped_column(String(32))
    attributes: Mapped[dict] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Visit(Base):
    """A grid worker's visit (走访排查) for a campaign: where, which grid (by the report rules),
    which target, the checklist's answers and the outreach handed out."""

    __tablename__ = "visits"
    __table_args__ = (
        CheckConstraint("leaflets >= 0 AND stickers >= 0", name="outreach"),
        Index("ix_visits_campaign_grid", "campaign_code", "grid_code"),
        Index("ix_visits_campaign_visited_at", "campaign_code", "visited_at"),
        Index(
            "ix_visits_campaign_target",
            "campaign_code",
            "target_id",
            postgresql_where=text("target_id IS NOT NULL"),
        ),
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    campaign_code: Mapped[str] = mapped_column(ForeignKey("campaigns.code"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    visitor: Mapped[str | None] = mapped_column(String(100))
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    source_crs: Mapped[str] = mapped_column(String(16), default="wgs84")
    source_lon: Mapped[float | None] = mapped_column(Float)
    source_lat: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    grid_code: Mapped[str | None] = mapped_column(ForeignKey("grids.code", ondelete="SET NULL"))
    assignment_method: Mapped[str] = mapped_column(String(16))
    assignment_distance_m: Mapped[float | None] = mapped_column(Float)
    district_code: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaign_targets.id", ondelete="SET NULL")
    )
    answers: Mapped[dict] = mapped_column(JSONB, default=dict)
    leaflets: Mapped[int] = mapped_column(Integer, default=0)
    stickers: Mapped[int] = mapped_column(Integer, default=0)
    visited_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    request_hash: Mapped[str] = mapped_column(String(64))


def _band_index(name: str) -> Index:
    """The perceptual hash's eight 8-bit bands (geo.reports.photos: the reuse look-up)."""
    bands = ", ".join(f"'{i}' || substr(phash, {2 * i + 1}, 2)" for i in range(8))
    return Index(name, text(f"(ARRAY[{bands}])"), postgresql_using="gin")


class StoredPhoto:
    """The columns of a stored photo, a report's or a visit's: its files by content hash and
    what its EXIF said against its subject."""

    sha256: Mapped[str] = mapped_column(String(64))
    upload_sha256: Mapped[str] = mapped_column(String(64))
    thumb_sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    exif_lon: Mapped[float | None] = mapped_column(Float)
    exif_lat: Mapped[float | None] = mapped_column(Float)
    exif_distance_m: Mapped[float | None] = mapped_column(Float)
    exif_time_diff_h: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    reused_from: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class VisitPhoto(StoredPhoto, Base):
    """A photo of a visit, stored EXIF-free by content hash, with what its EXIF said
    (geo.campaigns.visit_photos; the same columns as a report's photo, without a kind)."""

    __tablename__ = "visit_photos"
    __table_args__ = (
        UniqueConstraint("visit_id", "upload_sha256", name="uq_visit_photos_upload"),
        _band_index("ix_visit_photos_phash_bands"),
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"))
    phash: Mapped[str] = mapped_column(String(16))


class VisitCount(Base):
    """Visits counted per campaign, quarter hour (UTC) and district ('' for none), kept by a
    trigger on `visits` (migration 0008) for the campaigns' progress."""

    __tablename__ = "visit_counts"
    campaign_code: Mapped[str] = mapped_column(
        ForeignKey("campaigns.code", ondelete="CASCADE"), primary_key=True
    )
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    district_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    visits: Mapped[int] = mapped_column(BigInteger)
    leaflets: Mapped[int] = mapped_column(BigInteger)
    stickers: Mapped[int] = mapped_column(BigInteger)
    relocations: Mapped[int] = mapped_column(BigInteger)
    relocated_households: Mapped[int] = mapped_column(BigInteger)


class Report(Base):
    """A grid worker's report of a hazard, event or dispute."""

    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint(_in("status", ReportStatus), name="status"),
        CheckConstraint(_in("assignment_method", AssignmentMethod), name="assignment_method"),
        CheckConstraint(
            f"resolution_level IS NULL OR {_in('resolution_level', ResolutionLevel)}",
            name="resolution_level",
        ),
        Index("ix_reports_theme_reported_at", "theme", "reported_at"),
        # The 超期 queue and the escalation sweep read open reports past their deadline.
        Index(
            "ix_reports_open_due",
            "due_at",
            postgresql_where=text(f"status IN {sql_list(OPEN_STATUSES)}"),
        ),
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    theme: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(64))
    severity: Mapped[int] = mapped_column(Integer, default=2)
    status: Mapped[str] = mapped_column(String(16), default="reported")
    status_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    description: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    source_crs: Mapped[str] = mapped_column(String(16), default="wgs84")
    source_lon: Mapped[float | None] = mapped_column(Float)
    source_lat: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    district_code: Mapped[str | None] = mapped_column(String(32), index=True)
    near_boundary_code: Mapped[str | None] = mapped_column(String(32))
    near_boundary_m: Mapped[float | None] = mapped_column(Float)
    possible_duplicate_of: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    grid_code: Mapped[str | None] = mapped_column(
        ForeignKey("grids.code", ondelete="SET NULL"), index=True
    )
    assignment_method: Mapped[str] = mapped_column(String(16))
    assignment_distance_m: Mapped[float | None] = mapped_column(Float)
    department: Mapped[str | None] = mapped_column(String(100))
    resolution_level: Mapped[str | None] = mapped_column(String(16))
    campaign_code: Mapped[str | None] = mapped_column(ForeignKey("campaigns.code"), index=True)
    # The visit (走访) that found it, if any (geo.campaigns.visits).
    visit_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("visits.id", ondelete="SET NULL"), index=True
    )
    reporter: Mapped[str | None] = mapped_column(String(100))
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    supervised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # 督办
    supervised_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    supervision_note: Mapped[str | None] = mapped_column(Text)
    on_site: Mapped[bool] = mapped_column(Boolean, default=False)  # 自行处置
    overdue_noticed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rework_count: Mapped[int] = mapped_column(Integer, default=0)  # 返工
    return_count: Mapped[int] = mapped_column(Integer, default=0)  # 回退


class ReportEvent(Base):
    """One step in a report's history: a transition, a reassignment, a note."""

    __tablename__ = "report_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    from_grid: Mapped[str | None] = mapped_column(String(32))
    to_grid: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    level: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(String(100))
    handler_id: Mapped[int | None] = mapped_column(Integer)
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReportLoop(Base):
    """Each report's loop in one row, kept by a trigger on `report_events` (migration 0010)
    for the evaluation: the first or last time of each kind of transition, and counts."""

    __tablename__ = "report_loops"
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    last_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # first
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # first
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last
    returned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last
    first_resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last
    reworked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last
    first_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_checker: Mapped[int | None] = mapped_column(Integer)
    returns: Mapped[int] = mapped_column(Integer)
    checks: Mapped[int] = mapped_column(Integer)
    low: Mapped[bool | None] = mapped_column(Boolean)  # every resolution at street or below


class ReportPhoto(StoredPhoto, Base):
    """A photo of a report, stored EXIF-free by content hash, with what its EXIF said."""

    __tablename__ = "report_photos"
    __table_args__ = (
        CheckConstraint(_in("kind", PhotoKind), name="kind"),
        UniqueConstraint("report_id", "upload_sha256", name="uq_report_photos_upload"),
        _band_index("ix_report_photos_phash_bands"),
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    report_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))
    phash: Mapped[str] = mapped_column(String(16), index=True)


class Notification(Base):
    """Something a user should know about a report (dispatched to them, returned, overdue,
    督办, ...) or a risk letter (issued to their department, replied, overdue, ...)."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(_in("kind", NotificationKind), name="kind"),
        # A letter's kind names its letter, any other kind its report; one, never both.
        CheckConstraint(
            f"(letter_id IS NOT NULL) = ({_in('kind', LETTER_KINDS)}) "
            "AND num_nonnulls(report_id, letter_id) = 1",
            name="about",
        ),
        UniqueConstraint("user_id", "event_id", name="uq_notifications_event"),
        Index(
            "ix_notifications_letter_id",
            "letter_id",
            postgresql_where=text("letter_id IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    report_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE")
    )
    letter_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("letters.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    data: Mapped[dict] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxEvent(Base):
    """An event waiting to go out to the webhook (transactional outbox)."""

    __tablename__ = "outbox"
    __table_args__ = (CheckConstraint(_in("kind", NotificationKind), name="kind"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    gave_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookDelivery(Base):
    """One attempt to deliver an outbox event: the delivery log."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    url: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(Float)


class RiskLayer(Base):
    """A feature of a risk layer: a flood zone (level 1-3), river, reservoir or low-lying land."""

    __tablename__ = "risk_layers"
    __table_args__ = (
        CheckConstraint(_in("kind", RiskKind), name="kind"),
        CheckConstraint("level IS NULL OR level BETWEEN 1 AND 3", name="level"),
        UniqueConstraint("kind", "code", name="uq_risk_layers_kind"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[int | None] = mapped_column(SmallInteger)
    return_period_years: Mapped[int | None] = mapped_column(Integer)
    attributes: Mapped[dict] = mapped_column(JSONB, default=dict)
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False)
    source: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class RiskPart(Base):
    """Derived: per kind, the union of features at or above `min_level`, subdivided."""

    __tablename__ = "risk_parts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    min_level: Mapped[int] = mapped_column(SmallInteger)
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False)


class Household(Base):
    """A household the grid worker keeps track of; name, phone and location are personal data."""

    __tablename__ = "households"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    head_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(300))
    members: Mapped[int] = mapped_column(SmallInteger)
    over_60: Mapped[int] = mapped_column(SmallInteger, default=0)
    oldest_age: Mapped[int | None] = mapped_column(SmallInteger)
    living_alone: Mapped[bool] = mapped_column(Boolean, default=False)
    mobility_needs: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_worker: Mapped[str | None] = mapped_column(String(100))
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    grid_code: Mapped[str | None] = mapped_column(
        ForeignKey("grids.code", ondelete="SET NULL"), index=True
    )
    district_code: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    """A person (or an integration) with a role; the scope is in user_grids / user_districts."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("role", Role), name="role"),
        CheckConstraint(
            f"(role = '{Role.DEPARTMENT}') = (department IS NOT NULL)", name="department"
        ),
        CheckConstraint("username ~ '^[a-z0-9][a-z0-9._-]*$'", name="username"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserGrid(Base):
    """A grid a worker is bound to."""

    __tablename__ = "user_grids"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    grid_code: Mapped[str] = mapped_column(String(32), primary_key=True)


class UserDistrict(Base):
    """A district a dispatcher or coordinator is bound to (none: city-wide)."""

    __tablename__ = "user_districts"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    district_code: Mapped[str] = mapped_column(String(32), primary_key=True)


class AuthToken(Base):
    """A user's bearer token (a login's session or an integration's); only its SHA-256 kept."""

    __tablename__ = "auth_tokens"
    __table_args__ = (CheckConstraint(_in("kind", TokenKind), name="kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One row of the append-only audit log (a trigger refuses UPDATE and DELETE)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    actor: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(INET)
    changes: Mapped[dict | None] = mapped_column(JSONB)
    people: Mapped[int | None] = mapped_column(Integer)


class LetterNumber(Base):
    """The last number a year's risk letters (风险提示函) were given: taken under its row lock."""

    __tablename__ = "letter_numbers"
    __table_args__ = (CheckConstraint("last > 0", name="last"),)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class Letter(Base):
    """A risk letter (风险提示函) to one department, drafted from the analysis of its remit:
    draft → issued (numbered, a reply due) → acknowledged → replied → closed."""

    __tablename__ = "letters"
    __table_args__ = (
        UniqueConstraint("year", "number", name="uq_letters_number"),
        # geo.letters.status.LetterStatus (geo/db sits below geo/letters).
        CheckConstraint(
            "status IN ('draft', 'issued', 'acknowledged', 'replied', 'closed')", name="status"
        ),
        CheckConstraint(
            "(status = 'draft') = (number IS NULL) AND (number IS NULL) = (year IS NULL) "
            "AND (number IS NULL) = (reply_due IS NULL)",
            name="numbered",
        ),
        Index("ix_letters_department_status", "department", "status"),
        Index(
            "ix_letters_waiting_due",
            "reply_due",
            postgresql_where=text("status IN ('issued', 'acknowledged')"),
        ),
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    department: Mapped[str] = mapped_column(String(100))
    districts: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    scope: Mapped[dict] = mapped_column(JSONB)
    content: Mapped[dict] = mapped_column(JSONB)
    subject: Mapped[str] = mapped_column(String(200))
    opening: Mapped[str] = mapped_column(Text, default="")
    recommendations: Mapped[str] = mapped_column(Text, default="")
    closing: Mapped[str] = mapped_column(Text, default="")
    year: Mapped[int | None] = mapped_column(Integer)
    number: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reply_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    replied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replied_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reply: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class LetterAttachment(Base):
    """A file of a department's reply to a letter (PDF, JPEG, PNG), stored by its SHA-256."""

    __tablename__ = "letter_attachments"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    letter_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("letters.id", ondelete="CASCADE"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(200))
    bytes: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
