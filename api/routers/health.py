"""Liveness and readiness: database reachable, PostGIS version, schema revision, counts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from api.deps import OptionalPrincipalDep
from api.errors import error_response
from geo.db import migrate
from geo.grids import queries as grid_queries

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    summary="Up or not; logged in: database, PostGIS version, schema revision and row counts",
    responses={503: error_response(503, "the database cannot be reached (or the server is full)")},
)
def health(request: Request, who: OptionalPrincipalDep) -> JSONResponse:
    engine = request.app.state.engine
    try:
        with engine.connect() as conn:
            if who is None:  # an anonymous caller learns that it is up, nothing more
                conn.exec_driver_sql("SELECT 1")
                return JSONResponse({"status": "ok"})
            body = {
                "status": "ok",
                "database": "reachable",
                "postgis": grid_queries.postgis_version(conn),
                "counts": grid_queries.counts(conn),
            }
        body["schema"] = migrate.current(engine)
        body["schema_head"] = migrate.head()
        if body["schema"] != body["schema_head"]:
            body["status"] = "degraded"
            body["detail"] = "database schema is behind: run `riskgrid db upgrade`"
        return JSONResponse(body)
    except SQLAlchemyError as exc:
        return JSONResponse(
            {
                "status": "error",
                "database": "unreachable",
                "detail": f"cannot reach the database ({type(exc).__name__}); "
                "is it running? `riskgrid db status` tells",
            },
            status_code=503,
        )
