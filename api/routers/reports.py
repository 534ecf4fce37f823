"""Grid workers' reports: intake (single and batch), the closed loop, queries and export.

Who acts is always the logged-in user; what they may see and do is checked in geo/."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Header, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from api.deps import ConnDep, EngineDep, FilterDep, PlainQuery, PrincipalDep, SettingsDep
from api.errors import describe_validation, error_response, error_responses
from api.schemas import (
    CSV,
    FEATURE_COLLECTION,
    BulkTransitionCreate,
    GeoJSONResponse,
    ReassignCreate,
    ReportCreate,
    SupervisionCreate,
    TransitionCreate,
    answers,
)
from geo.errors import Conflict, Forbidden, InvalidInput, NotFound
from geo.identity.scope import report_scope
from geo.reports import deadlines, intake, loop, queries, reads, record, taxonomy

router = APIRouter(prefix="/api/v1", tags=["reports"])
# A read of a sensitive report shown unmasked is audited: none is answered from a cache.
NO_STORE = {"Cache-Control": "no-store"}
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="resending with the same key stores nothing new",
    ),
]


def _json(body: object, status: int = 200) -> Response:
    # orjson straight to bytes: FastAPI's generic serializer cost ~10% of an intake request.
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@router.post(
    "/reports",
    status_code=201,
    summary="Send a report; it is assigned to its grid",
    responses={
        200: {
            "description": "a replay: the report stored earlier, unchanged",
            "content": {"application/json": {"schema": {}}},
        },
        409: error_response(409, "the id or Idempotency-Key was used for another report"),
    },
)
def create_report(
    body: ReportCreate,
    engine: EngineDep,
    settings: SettingsDep,
    who: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    new = body.to_new(settings.reports.naive_timezone)
    with engine.begin() as conn:
        report, created = intake.create(
            conn,
            new,
            settings.reports,
            settings.worktime,
            who,
            settings.auth.sensitive_themes,
            idempotency_key,
        )
    return _json(report, 201 if created else 200)


@router.post("/reports:batch", summary="Send up to 1,000 reports (offline sync); answers per item")
def create_batch(
    engine: EngineDep,
    settings: SettingsDep,
    who: PrincipalDep,
    body: Annotated[dict[str, list[Any]], Body(examples=[{"reports": [{"lon": 125.03}]}])],
    idempotency_key: IdempotencyKey = None,
) -> dict:
    items = body.get("reports")
    if not isinstance(items, list) or set(body) != {"reports"}:
        raise InvalidInput('send {"reports": [ … ]}')
    if len(items) > settings.reports.max_batch:
        raise InvalidInput(
            f"a batch holds at most {settings.reports.max_batch} reports (got {len(items)}); "
            "split it"
        )
    intake.check_sender(who)  # a role that sends no reports is refused once, not per item
    results = []
    counts = {"created": 0, "replayed": 0, "failed": 0}
    for i, raw in enumerate(items):
        key = f"{idempotency_key}:{i}" if idempotency_key else None
        try:
            new = ReportCreate.model_validate(raw).to_new(settings.reports.naive_timezone)
            # Each item commits on its own: a bad one does not undo or stop the others.
            with engine.begin() as conn:
                report, created = intake.create(
                    conn,
                    new,
                    settings.reports,
                    settings.worktime,
                    who,
                    settings.auth.sensitive_themes,
                    key,
                )
            counts["created" if created else "replayed"] += 1
            results.append({"index": i, "status": 201 if created else 200, "report": report})
        except ValidationError as exc:
            counts["failed"] += 1
            results.append(
                {
                    "index": i,
                    "status": 422,
                    "detail": describe_validation(exc.errors(include_url=False)),
                }
            )
        except (InvalidInput, Conflict) as exc:
            counts["failed"] += 1
            results.append(
                {
                    "index": i,
                    "status": 409 if isinstance(exc, Conflict) else 422,
                    "detail": str(exc),
                }
            )
    return {**counts, "results": results}


@router.get(
    "/reports",
    summary="Reports as GeoJSON (newest first, cursor paging) or CSV",
    description=(
        "A page or an export that shows a report of a sensitive theme unmasked (to the roles "
        "with the right) is audited as one `personal_data.read` entry listing those reports, "
        "and answered with `Cache-Control: no-store`."
    ),
    response_class=GeoJSONResponse,
    responses=answers(FEATURE_COLLECTION, CSV),
)
def list_reports(
    conn: ConnDep,
    engine: EngineDep,
    settings: SettingsDep,
    who: PrincipalDep,
    f: FilterDep,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    cursor: Annotated[str | None, Query(max_length=200), PlainQuery] = None,
    format: Literal["geojson", "csv"] = "geojson",
) -> Response:
    sensitive = settings.auth.sensitive_themes
    if format == "csv":
        # COPY streams on a connection of its own: the sensitive rows of the same filter are
        # counted and audited first, committed before the first byte leaves.
        audited = reads.record_export(conn, who, f, sensitive)
        conn.commit()
        return StreamingResponse(
            queries.export_csv(engine, f),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="reports.csv"',
                **(NO_STORE if audited else {}),
            },
        )
    lim = settings.limits
    limit = limit or lim.default_page_size
    if limit > lim.max_page_size:
        raise InvalidInput(f"limit must be at most {lim.max_page_size}; page with cursor")
    body, shown = queries.shown_page(conn, f, limit, cursor)
    if reads.record_reports(conn, who, f.scope, sensitive, shown):
        conn.commit()  # the audit entry of the read, written in the same transaction
        return GeoJSONResponse(body, headers=NO_STORE)
    return GeoJSONResponse(body)


@router.get(
    "/reports/{report_id}",
    summary="One report with its history",
    description=(
        "A report of a sensitive theme shown unmasked is audited as `personal_data.read` and "
        "answered with `Cache-Control: no-store`."
    ),
    responses=error_responses(404),
)
def get_report(
    conn: ConnDep,
    settings: SettingsDep,
    who: PrincipalDep,
    response: Response,
    report_id: uuid.UUID,
) -> dict:
    sensitive = settings.auth.sensitive_themes
    scope = report_scope(who, sensitive)
    report = record.get(conn, report_id, scope)
    # What this user may do with it now: screens offer only these.
    report["moves"] = loop.moves_for(who, report)
    if reads.record_report(conn, who, scope, sensitive, report):
        conn.commit()  # the audit entry of the read, written in the same transaction
        response.headers.update(NO_STORE)
    return report


@router.patch(
    "/reports/{report_id}",
    summary="Reassign a report to another grid by hand",
    responses=error_responses(404),
)
def reassign_report(
    engine: EngineDep,
    settings: SettingsDep,
    who: PrincipalDep,
    report_id: uuid.UUID,
    body: ReassignCreate,
) -> dict:
    with engine.begin() as conn:
        return loop.reassign(
            conn, report_id, body.grid, who, body.note, settings.auth.sensitive_themes
        )


@router.post(
    "/reports/{report_id}/transitions",
    summary="Move a report along the closed loop",
    responses={
        **error_responses(404),
        409: error_response(409, "the report's status does not allow this move"),
    },
)
def transition_report(
    engine: EngineDep,
    settings: SettingsDep,
    who: PrincipalDep,
    report_id: uuid.UUID,
    body: TransitionCreate,
) -> dict:
    with engine.begin() as conn:
        return loop.transition(conn, report_id, _move(body), who, settings)


def _move(body: TransitionCreate) -> loop.MoveRequest:
    return loop.MoveRequest(
        to=body.to,
        note=body.note,
        reason=body.reason,
        level=body.level,
        department=body.department,
        handler=body.handler,
        duplicate_of=body.duplicate_of,
    )


_STATUS_OF = {NotFound: 404, Forbidden: 403, Conflict: 409, InvalidInput: 422}


@router.post(
    "/reports:transitions",
    summary="The same move for many reports (bulk accept, bulk dispatch); answers per report",
)
def transition_many(
    engine: EngineDep, settings: SettingsDep, who: PrincipalDep, body: BulkTransitionCreate
) -> dict:
    move = _move(body)
    results = []
    counts = {"moved": 0, "failed": 0}
    for report_id in dict.fromkeys(body.ids):  # each once, in the order sent
        try:
            # Each report moves (and is audited) on its own: a refused one stops no other.
            with engine.begin() as conn:
                report = loop.transition(conn, report_id, move, who, settings)
            counts["moved"] += 1
            results.append({"id": str(report_id), "status": 200, "report": report})
        except (NotFound, Forbidden, Conflict, InvalidInput) as exc:
            counts["failed"] += 1
            status = next(v for k, v in _STATUS_OF.items() if isinstance(exc, k))
            results.append({"id": str(report_id), "status": status, "detail": str(exc)})
    return {**counts, "results": results}


@router.put(
    "/reports/{report_id}/supervision",
    summary="督办: flag a report for supervision, with a note (dispatchers)",
    responses={**error_responses(404), 409: error_response(409, "the report is closed")},
)
def supervise_report(
    engine: EngineDep,
    settings: SettingsDep,
    who: PrincipalDep,
    report_id: uuid.UUID,
    body: SupervisionCreate,
) -> dict:
    with engine.begin() as conn:
        return loop.supervise(conn, report_id, body.note, True, who, settings.auth.sensitive_themes)


@router.delete(
    "/reports/{report_id}/supervision",
    summary="Lift the 督办 flag (dispatchers)",
    responses=error_responses(404),
)
def lift_supervision(
    engine: EngineDep, settings: SettingsDep, who: PrincipalDep, report_id: uuid.UUID
) -> dict:
    with engine.begin() as conn:
        return loop.supervise(conn, report_id, None, False, who, settings.auth.sensitive_themes)


@router.get("/themes", summary="The report taxonomy: themes, categories, departments, limits")
def themes(settings: SettingsDep) -> dict:
    rules = settings.reports
    return {
        "themes": taxonomy.as_dict(rules.departments, deadlines.limits_as_dict(rules)),
        "worktime": deadlines.worktime_as_dict(settings.worktime),
        "statuses": {k: list(v) for k, v in taxonomy.TRANSITIONS.items()},
        "moves": taxonomy.moves_as_dict(),
        "levels": {k: {"zh": zh, "en": en} for k, (zh, en) in taxonomy.LEVELS.items()},
        # What POST /reports:batch takes at once: the phone's outbox sends no more a request.
        "max_batch": rules.max_batch,
    }


@router.get("/stats", summary="Counts by status and theme, resolution rate, overdue items")
def report_stats(conn: ConnDep, f: FilterDep) -> dict:
    return queries.stats(conn, f)
