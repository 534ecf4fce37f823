"""Campaigns (创安行动): defined, launched, paused and closed by dispatchers and admins; their
target lists, coverage per grid and progress day by day, read by every logged-in role (the
households of a household register only by the roles that see households)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator

from api.deps import (
    CODE_PATTERN,
    CodePath,
    ConnDep,
    EngineDep,
    OptionalCode,
    PrincipalDep,
    SettingsDep,
)
from api.errors import error_response, error_responses
from api.schemas import FEATURE_COLLECTION, Code, GeoJSONResponse, PlainText, Text2000, answers
from geo.campaigns import coverage, progress, store, targets
from geo.campaigns.checklist import AnswerKind, Tally
from geo.campaigns.lifecycle import MOVE_BY_NAME, CampaignStatus, check_manager
from geo.coords import SourceCRS
from geo.errors import InvalidInput
from geo.reports import taxonomy

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])
NO_STORE = {"Cache-Control": "no-store"}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_day(value: object) -> object:
    # pydantic reads a number as a Unix time: a day is sent as YYYY-MM-DD, or refused.
    if isinstance(value, date) or (isinstance(value, str) and _DAY.match(value)):
        return value
    raise ValueError("must be a date written YYYY-MM-DD, e.g. 2024-08-22")


Day = Annotated[date, BeforeValidator(_iso_day)]
CampaignCode = Annotated[str, Field(min_length=1, max_length=32, pattern=CODE_PATTERN)]
ItemCode = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
Label = Annotated[str, Field(min_length=1, max_length=200), PlainText]
Department = Annotated[str, Field(min_length=1, max_length=100), PlainText]
StrictBool = Annotated[bool, Strict()]
Age = Annotated[int, Strict(), Field(ge=0, le=150)]


class ChecklistItem(BaseModel):
    """One item of the screening checklist (排查清单)."""

    model_config = ConfigDict(extra="forbid")
    code: ItemCode
    label: Label
    answer: AnswerKind = Field(description="yes_no (true/false), number (≥ 0) or text")
    required: StrictBool = False
    tally: Tally | None = Field(
        None,
        description="a number item whose answers progress sums: relocations (people moved) "
        "or relocated_households",
    )


class HouseholdFilter(BaseModel):
    """Which households of the register are targets (all conditions hold)."""

    model_config = ConfigDict(extra="forbid")
    living_alone_over: Age | None = Field(None, description="living alone and older than this")
    oldest_over: Age | None = None
    over_60: StrictBool | None = None
    living_alone: StrictBool | None = None
    mobility_needs: StrictBool | None = None
    vulnerable: StrictBool | None = None


class HouseholdTargets(BaseModel):
    """Targets from the household register, taken at launch."""

    model_config = ConfigDict(extra="forbid")
    # Not `register`: that name is a BaseModel attribute.
    register_: Literal["households"] = Field(alias="register")
    filter: HouseholdFilter = Field(default_factory=HouseholdFilter)


class PointTargets(BaseModel):
    """Targets imported as points (POST /api/v1/campaigns/{code}/targets)."""

    model_config = ConfigDict(extra="forbid")
    register_: Literal["workshops", "venues"] = Field(alias="register")


Targets = Annotated[HouseholdTargets | PointTargets, Field(discriminator="register_")]


def _targets(t: HouseholdTargets | PointTargets | None) -> dict | None:
    return None if t is None else t.model_dump(mode="json", exclude_none=True, by_alias=True)


class CampaignFields(BaseModel):
    """What defines a campaign besides its code (an edit sends any of these)."""

    model_config = ConfigDict(extra="forbid")
    name: Label | None = None
    theme: Code | None = None
    categories: Annotated[list[Code], Field(max_length=50)] | None = Field(
        None, description="categories of the theme screened for (none: all of them)"
    )
    starts_on: Day | None = None
    ends_on: Day | None = None
    districts: Annotated[list[CampaignCode], Field(min_length=1, max_length=50)] | None = None
    departments: Annotated[list[Department], Field(max_length=30)] | None = Field(
        None, description="partner departments, from the routing table"
    )
    checklist: Annotated[list[ChecklistItem], Field(min_length=1, max_length=100)] | None = None
    targets: Targets | None = None
    description: Text2000 | None = None

    def as_patch(self) -> dict[str, Any]:
        """Return the fields sent, as geo.campaigns.store takes them."""
        sent = self.model_dump(mode="python", exclude_unset=True)
        if "checklist" in sent:
            sent["checklist"] = [
                i.model_dump(mode="json", exclude_none=True) for i in self.checklist or []
            ]
        if "targets" in sent:
            sent["targets"] = _targets(self.targets)
        return sent


class CampaignCreate(CampaignFields):
    """A new campaign (a draft until launched)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "CA11",
                    "name": "创安十一号",
                    "theme": "flood",
                    "categories": ["waterlogging", "relocation_needed"],
                    "starts_on": "2025-07-20",
                    "ends_on": "2025-07-24",
                    "districts": ["230603"],
                    "departments": ["水务局", "应急管理局"],
                    "checklist": [
                        {"code": "low_lying", "label": "低洼易涝", "answer": "yes_no"},
                        {
                            "code": "to_relocate",
                            "label": "需转移人数",
                            "answer": "number",
                            "tally": "relocations",
                        },
                    ],
                    "targets": {"register": "households", "filter": {"living_alone_over": 60}},
                }
            ]
        },
    )
    code: CampaignCode
    name: Label
    theme: Code
    categories: Annotated[list[Code], Field(max_length=50)] = Field(default_factory=list)
    starts_on: Day
    ends_on: Day
    districts: Annotated[list[CampaignCode], Field(min_length=1, max_length=50)]
    departments: Annotated[list[Department], Field(max_length=30)] = Field(default_factory=list)
    checklist: Annotated[list[ChecklistItem], Field(min_length=1, max_length=100)]

    @model_validator(mode="after")
    def _period(self) -> CampaignCreate:
        if self.ends_on < self.starts_on:
            raise ValueError(f"ends_on {self.ends_on} is before starts_on {self.starts_on}")
        return self

    def definition(self) -> dict[str, Any]:
        """Return the whole definition, as geo.campaigns.store takes it."""
        d = self.model_dump(mode="python")
        d["checklist"] = [i.model_dump(mode="json", exclude_none=True) for i in self.checklist]
        d["targets"] = _targets(self.targets)
        return d


class CampaignPatch(CampaignFields):
    """An edit: the fields sent replace the stored ones (the code stays)."""

    @model_validator(mode="after")
    def _something(self) -> CampaignPatch:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        for f in ("name", "theme", "starts_on", "ends_on", "districts", "categories"):
            if f in self.model_fields_set and getattr(self, f) is None:
                raise ValueError(f"{f} cannot be null")
        if "checklist" in self.model_fields_set and self.checklist is None:
            raise ValueError("checklist cannot be null")
        return self


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _departments(settings: Any) -> frozenset[str]:
    return taxonomy.departments(settings.reports.departments)


@router.get("", summary="Every campaign with its status, scope, checklist and target register")
def campaigns(
    conn: ConnDep,
    status: CampaignStatus | None = None,
    theme: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$")] = None,
) -> list[dict]:
    return store.list_campaigns(conn, status, theme)


@router.post(
    "",
    status_code=201,
    summary="Create a campaign (dispatchers, admins); a draft until launched",
    responses={
        200: {
            "description": "the same campaign sent again: the stored one",
            "content": {"application/json": {"schema": {}}},
        },
        409: error_response(409, "the code is taken by another campaign"),
    },
)
def create_campaign(
    body: CampaignCreate, engine: EngineDep, settings: SettingsDep, who: PrincipalDep
) -> Response:
    with engine.begin() as conn:
        found, created = store.create(conn, who, body.definition(), _departments(settings))
    return _json(found, 201 if created else 200)


@router.get("/{code}", summary="One campaign", responses=error_responses(404))
def campaign(conn: ConnDep, code: CodePath) -> dict:
    return store.get(conn, code)


@router.patch(
    "/{code}",
    summary="Edit a campaign (dispatchers, admins); audited with the fields changed",
    responses=error_responses(404, 409),
)
def edit_campaign(
    code: CodePath, body: CampaignPatch, engine: EngineDep, settings: SettingsDep, who: PrincipalDep
) -> dict:
    with engine.begin() as conn:
        return store.update(conn, who, code, body.as_patch(), _departments(settings))


def _move(name: str) -> Any:
    move = MOVE_BY_NAME[name]

    def make_move(code: CodePath, engine: EngineDep, who: PrincipalDep) -> dict:
        with engine.begin() as conn:
            return store.move(conn, who, code, name)

    make_move.__name__ = f"{name}_campaign"
    frm = " or ".join(move.frm)
    router.post(
        f"/{{code}}/{name}",
        summary=f"{name.capitalize()} a campaign ({frm} → {move.to}; dispatchers, admins)",
        responses={
            404: error_response(404),
            409: error_response(
                409, "not possible from the campaign's status: the moves are named"
            ),
        },
    )(make_move)
    return make_move


for _name in MOVE_BY_NAME:
    _move(_name)


@router.get(
    "/{code}/coverage",
    summary="Visits, targets and the last visit per grid of the campaign's districts",
    response_class=GeoJSONResponse,
    responses={**answers(FEATURE_COLLECTION), 404: error_response(404)},
)
def campaign_coverage(
    conn: ConnDep, settings: SettingsDep, who: PrincipalDep, code: CodePath
) -> GeoJSONResponse:
    found = store.get_row(conn, code)
    return GeoJSONResponse(coverage.coverage(conn, who, found, settings.auth.k_anonymity))


@router.get(
    "/{code}/progress",
    summary="Visits, hazards found and resolved, relocations and outreach per day and district",
    responses=error_responses(404),
)
def campaign_progress(
    conn: ConnDep, settings: SettingsDep, code: CodePath, district: OptionalCode = None
) -> dict:
    found = store.get_row(conn, code)
    zone = settings.worktime.timezone
    today = datetime.now(ZoneInfo(zone)).date()
    return progress.progress(conn, found, district, zone, today)


@router.get(
    "/{code}/targets",
    summary="The campaign's targets with their visits; todo=mine: a worker's still to visit",
    description=(
        "Imported targets (workshops, venues) are shown to every logged-in role. Household "
        "targets are personal data: admins, coordinators (their districts) and workers (their "
        "grids) get the households, each read audited as `personal_data.read`; other roles "
        "get the counts alone (`targets: null`), those from 1 to k-1 (auth.k_anonymity) "
        "null with `suppressed: true`."
    ),
    responses=error_responses(404),
)
def campaign_targets(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    response: Response,
    code: CodePath,
    todo: Literal["mine"] | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict:
    found = store.get_row(conn, code)
    k = settings.auth.k_anonymity
    listed = targets.listing(conn, who, found, todo == "mine", limit, offset, k)
    if listed["register"] == targets.HOUSEHOLDS and listed["targets"] is not None:
        conn.commit()  # the audit entry of the read
        response.headers.update(NO_STORE)
    return listed


@router.post(
    "/{code}/targets",
    summary="Import target points (GeoJSON, properties ref and name) into a campaign",
    description=(
        "For a campaign whose `targets` register is `workshops` or `venues` (dispatchers, "
        "admins). Upserts by `ref`; each point gets its grid by the report rules; a point "
        "outside the campaign's districts or every grid refuses the whole file (422)."
    ),
    responses=error_responses(404, 409),
)
def import_targets(
    code: CodePath,
    engine: EngineDep,
    settings: SettingsDep,
    who: PrincipalDep,
    body: Annotated[
        dict[str, Any],
        Body(examples=[{"type": "FeatureCollection", "features": []}]),
    ],
    crs: SourceCRS = SourceCRS.WGS84,
) -> dict:
    if body.get("type") != "FeatureCollection" or not isinstance(body.get("features"), list):
        raise InvalidInput(
            'send a GeoJSON FeatureCollection: {"type": "FeatureCollection", "features": [...]}'
        )
    with engine.begin() as conn:
        found = store.get_row(conn, code, lock=True)
        check_manager(who, found["districts"])
        return targets.import_points(
            conn, who, found, body["features"], crs.value, settings.reports.snap_tolerance_m
        )
