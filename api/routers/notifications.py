"""The caller's own notifications: list, unread count, mark read. Nobody reads another's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from api.deps import ConnDep, EngineDep, PrincipalDep
from geo.reports import notify
from geo.vocabulary import NotificationKind

router = APIRouter(prefix="/api/v1", tags=["notifications"])
NotificationId = Annotated[int, Strict(), Field(ge=1, le=2**63 - 1)]


class NotificationPublic(BaseModel):
    """One notification: what happened to which report or risk letter, when, and whether it
    was read."""

    id: int
    kind: NotificationKind
    report_id: str | None = Field(description="the report it tells about (a report's kinds)")
    letter_id: str | None = Field(
        description="the risk letter it tells about (the `letter_` kinds); read it at `data.url`"
    )
    event_id: str
    data: dict[str, Any] = Field(
        description="a report's codes then and the move's reason; a letter's number, department, "
        "status, reply due, issue time, subject and `url` (with a reply, `on_time`)"
    )
    created_at: str
    read_at: str | None


class NotificationsPublic(BaseModel):
    """A page of notifications, newest first."""

    notifications: list[NotificationPublic]
    unread: int
    next_before: int | None = Field(description="pass as `before` for the next page")


class UnreadCount(BaseModel):
    """How many notifications the caller has not read."""

    unread: int


class NotificationsRead(BaseModel):
    """Which of the caller's notifications to mark read: some ids, or all."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"ids": [1, 2]}, {"all": True}]}
    )

    ids: list[NotificationId] | None = Field(None, min_length=1, max_length=1000)
    all: Annotated[bool, Strict()] = False

    @model_validator(mode="after")
    def _one_of(self) -> NotificationsRead:
        if (self.ids is not None) == self.all:
            raise ValueError('send either {"ids": [...]} or {"all": true}')
        return self


class MarkedRead(BaseModel):
    """How many were marked read (ids of others' notifications count none), and what is left."""

    marked: int
    unread: int


@router.get(
    "/notifications",
    summary="The caller's notifications, newest first",
    response_model=NotificationsPublic,
)
def list_notifications(
    conn: ConnDep,
    who: PrincipalDep,
    response: Response,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> dict:
    response.headers["Cache-Control"] = "no-store"
    return notify.notifications(conn, who.user_id, unread, limit, before)


@router.get(
    "/notifications/count",
    summary="How many of the caller's notifications are unread",
    response_model=UnreadCount,
)
def count_notifications(conn: ConnDep, who: PrincipalDep, response: Response) -> dict:
    response.headers["Cache-Control"] = "no-store"
    return {"unread": notify.unread_count(conn, who.user_id)}


@router.post(
    "/notifications/read",
    summary="Mark the caller's notifications read (some ids, or all)",
    response_model=MarkedRead,
)
def read_notifications(engine: EngineDep, who: PrincipalDep, body: NotificationsRead) -> dict:
    with engine.begin() as conn:
        marked = notify.mark_read(conn, who.user_id, None if body.all else body.ids)
        return {"marked": marked, "unread": notify.unread_count(conn, who.user_id)}
