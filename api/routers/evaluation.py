"""The evaluation (综合评价): per department, district, street or grid worker, the standard's
rates with 95 % intervals and a rank fair to small units; the monthly trend; and the page
`/evaluation` with the ranking table and the trend."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, create_model

from api.deps import (
    ConnDep,
    EngineDep,
    OptionalCode,
    PagePrincipalDep,
    PlainQuery,
    PrincipalDep,
    QueryTime,
    SettingsDep,
)
from api.routers.pages import PageDep, html
from api.schemas import CSV, XLSX, files
from geo import exports
from geo.campaigns import store as campaigns_store
from geo.errors import Forbidden, InvalidInput
from geo.evaluation import periods, scorecard
from geo.evaluation.indicators import COUNTS
from geo.evaluation.query import By
from geo.evaluation.query import Query as EvaluationQuery
from geo.reports import taxonomy
from geo.settings import Settings
from geo.windows import check_window
from web import evaluation as web_evaluation

router = APIRouter(prefix="/api/v1", tags=["evaluation"])
page_router = APIRouter(tags=["pages"])
RankBy = Literal[tuple(scorecard.RATES)]  # type: ignore[valid-type]
Format = Literal["json", "csv", "xlsx"]
Period = Annotated[
    str | None,
    Query(
        max_length=16,
        description="a year, month or quarter in local time: 2024, 2024-06, 2024-Q2 "
        "(instead of since and until)",
    ),
    PlainQuery,
]
Theme = Annotated[str | None, Query(max_length=32), PlainQuery]

_Interval = Annotated[list[float] | None, Field(description="95 % Wilson interval [low, high]")]
EvaluationUnit = create_model(  # type: ignore[call-overload]
    "EvaluationUnit",
    unit=(str, ...),
    unit_name=(str | None, None),
    rank=(int | None, None),
    **{c: (int | None, None) for c in COUNTS},
    **{r: (float | None, None) for r in scorecard.RATES},
    **{f"{r}_ci": (_Interval, None) for r in scorecard.RATES},
    **{f"{r}_shrunk": (float | None, None) for r in scorecard.RATES},
)


class EvaluationPeriod(BaseModel):
    since: str | None
    until: str
    label: str | None


class EvaluationPublic(BaseModel):
    by: By
    period: EvaluationPeriod
    theme: str | None
    campaign: str | None
    rank_by: str
    pooled: dict[str, float | None]
    priors: dict[str, dict[str, float] | None]
    units: list[EvaluationUnit]  # type: ignore[valid-type]


class TrendMonth(BaseModel):
    month: str
    due_to_close: int
    closed: int
    closed_on_time: int
    closure_rate: float | None
    closure_rate_ci: list[float] | None
    on_time_closure_rate: float | None
    on_time_closure_rate_ci: list[float] | None


class TrendPublic(BaseModel):
    by: By
    months: list[TrendMonth]


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _file(body: bytes, media: str, name: str) -> Response:
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def evaluation_query(
    settings: Settings,
    by: By,
    period: str | None,
    since: datetime | None,
    until: datetime | None,
    theme: str | None,
    campaign: str | None,
) -> EvaluationQuery:
    """Return the checked query of an evaluation: a period shorthand or since/until, a known
    theme; InvalidInput (422) saying what to change otherwise."""
    if period is not None:
        if since is not None or until is not None:
            raise InvalidInput("give either period or since/until, not both")
        since, until = periods.parse(period, settings.worktime.timezone)
    check_window(since, until)
    if theme is not None and theme not in taxonomy.THEME_BY_CODE:
        raise InvalidInput(f"unknown theme {theme!r}; one of: {', '.join(taxonomy.THEME_BY_CODE)}")
    return EvaluationQuery(by, since, until, theme, campaign)


def checked_query(
    conn: ConnDep,
    settings: SettingsDep,
    by: By = By.DEPARTMENT,
    period: Period = None,
    since: QueryTime = None,
    until: QueryTime = None,
    theme: Theme = None,
    campaign: OptionalCode = None,
) -> EvaluationQuery:
    """The query parameters the evaluation and its trend share, checked (a campaign that
    does not exist is a typo, not a campaign without reports)."""
    if campaign is not None and not campaigns_store.exists(conn, campaign):
        raise InvalidInput(f"campaign {campaign!r}: no such campaign (see GET /api/v1/campaigns)")
    return evaluation_query(settings, by, period, since, until, theme, campaign)


QueryDep = Annotated[EvaluationQuery, Depends(checked_query)]


@router.get(
    "/evaluation",
    summary="综合评价: per unit the standard's rates, 95 % intervals, a rank fair to small units",
    description=(
        "Units: departments (the department of a report's last dispatch before the period's "
        "end), districts, streets or grid workers. Every count and rate is defined in "
        "docs/evaluation.md. Each rate comes with its 95 % Wilson interval (`<rate>_ci`) and "
        "its empirical Bayes estimate (`<rate>_shrunk`, a beta-binomial prior fitted to all "
        "units); `rank` (1 the best) orders the units by their posterior expected rank in "
        "`rank_by`. A rate without a denominator is null. Planners and admins see "
        "every unit; dispatchers the units of their districts; a department user its own "
        "row (by=department), a grid worker theirs (by=worker), audited."
    ),
    response_model=EvaluationPublic,
    responses=files(CSV, XLSX),
)
def evaluation(
    conn: ConnDep,
    engine: EngineDep,
    settings: SettingsDep,
    who: PrincipalDep,
    q: QueryDep,
    period: Period = None,
    rank_by: RankBy = scorecard.DEFAULT_RANK_BY,
    format: Format = "json",
) -> Response:
    # Half of the reports counted on a second connection, at once: a request may hold two.
    answer = scorecard.evaluate(conn, q, who, settings, rank_by, period, engine.connect)
    conn.commit()  # the audit entry of a read of grid workers' rows
    if format == "json":
        return _json(answer)
    frame = scorecard.table(answer)
    name = f"evaluation_{q.by}"
    if format == "csv":
        return _file(exports.to_csv(frame), "text/csv; charset=utf-8", f"{name}.csv")
    sheets = {"units": frame, "definitions": scorecard.definitions()}
    return _file(exports.to_xlsx(sheets), XLSX, f"{name}.xlsx")


@router.get(
    "/evaluation/trend",
    summary="The closure rates (结案率, 按期结案率) per local month, each month on its own",
    description="Over the units the caller sees (a department or a grid worker: its own); "
    "without a period, the 12 months up to the latest report.",
    response_model=TrendPublic,
)
def evaluation_trend(
    conn: ConnDep, engine: EngineDep, settings: SettingsDep, who: PrincipalDep, q: QueryDep
) -> Response:
    months = scorecard.trend(conn, q, who, settings, engine.connect)
    return _json({"by": str(q.by), "months": months})


@page_router.get(
    "/evaluation",
    response_class=HTMLResponse,
    summary="The evaluation page: the ranking with intervals, and the monthly trend (HTML)",
)
def evaluation_page(
    conn: ConnDep,
    engine: EngineDep,
    settings: SettingsDep,
    who: PagePrincipalDep,
    page: PageDep,
    by: By | None = None,
    period: Period = None,
    theme: Theme = None,
    rank_by: RankBy = scorecard.DEFAULT_RANK_BY,
) -> HTMLResponse:
    chosen = by or web_evaluation.default_by(who)
    try:
        q = evaluation_query(settings, chosen, period, None, None, theme, None)
        answer = scorecard.evaluate(conn, q, who, settings, rank_by, period, engine.connect)
        months = scorecard.trend(conn, q, who, settings, engine.connect)
    except Forbidden as exc:
        return html(web_evaluation.forbidden(page, str(exc)), 403)
    except InvalidInput as exc:
        return html(web_evaluation.forbidden(page, str(exc), invalid=True), 422)
    conn.commit()
    return html(web_evaluation.page(page, who, answer, months))
