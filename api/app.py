"""The FastAPI application: built by a factory, one engine per process opened in the lifespan."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.responses import Response
from starlette.types import Scope

from api import admission, errors
from api.admission import Admission
from api.body_limit import BodyLimit
from api.deps import get_page_principal, get_principal
from api.rate_limit import RateLimit
from api.request_id import RequestId
from api.routers import (
    areas,
    audit,
    auth,
    campaign_pages,
    campaigns,
    console,
    departments,
    docs,
    evaluation,
    grids,
    health,
    hotspots,
    households,
    inbox,
    letters,
    login_pages,
    maps,
    notifications,
    pages,
    photos,
    reports,
    risk,
    visits,
)
from api.security_headers import SecurityHeaders
from geo.analytics import stats_process
from geo.db.engine import make_engine
from geo.letters import notices as letter_notices
from geo.reports.escalation import Sweeper
from geo.reports.webhook import Deliverer
from geo.settings import Settings, get_settings
from web import assets as web_assets
from web import maps as web_maps

# What the overdue sweep runs after the reports' own (geo.reports.escalation): the layers above
# it; `riskgrid sweep` runs the same once.
LAYER_SWEEPS = (("letter reply", letter_notices.sweep),)


class StaticAssets(StaticFiles):
    """`/static`: an address that carries its content's hash (`?v=`, `web.assets.static_url`)
    never changes meaning, so browsers keep it a year; other addresses revalidate."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if response.status_code == 200 and query.get("v"):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def _warm_up(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            web_maps.warm_up(conn)
    except Exception:
        logging.getLogger("riskgrid.api").info("warm-up skipped", exc_info=True)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Return the riskgrid app; pass `engine` to share one (tests), else it is made at startup."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A thread for every request admitted at once (api.admission), no more: more threads
        # only fight over the GIL (measured: 40 threads 360 req/s, 10: 450).
        anyio.to_thread.current_default_thread_limiter().total_tokens = admission.thread_tokens(
            settings
        )
        stats_process.set_budget(settings.server.request_budget_s)
        own = engine is None
        app.state.engine = engine or make_engine(settings)
        # Statistics libraries take ~2 s to import and the grid weights a moment to build:
        # do both in the background now, not in the first planner's request.
        if settings.warm_up:
            threading.Thread(target=_warm_up, args=(app.state.engine,), daemon=True).start()
        # Events go out to the webhook from every server process (they share the outbox).
        deliverer = None
        if settings.webhook.url is not None:
            deliverer = Deliverer(app.state.engine, settings.webhook).start()
        # Overdue notices and escalation, from every process (each report is claimed once),
        # and the letters' overdue replies (each told once).
        sweeper = None
        if settings.reports.sweep_overdue:
            sweeper = Sweeper(app.state.engine, settings.reports, LAYER_SWEEPS).start()
        try:
            yield
        finally:
            if sweeper is not None:
                await anyio.to_thread.run_sync(sweeper.stop)
            if deliverer is not None:
                await anyio.to_thread.run_sync(deliverer.stop)
            if own:
                app.state.engine.dispose()

    app = FastAPI(
        title="riskgrid",
        version="0.1.0",
        description="Geospatial risk mapping for grid-based public-safety work (网格化管理).",
        lifespan=lifespan,
        # /docs and /redoc come from api.routers.docs: scripts served by riskgrid, not a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    errors.install(app)
    # Outermost first: every answer (a 413, 429 or 503 too) has a request id and the headers;
    # a request is measured at the door, then counted against its rate, then given a slot.
    app.add_middleware(Admission, settings=settings)
    app.add_middleware(RateLimit, settings=settings)
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(RequestId)
    # /health and the login route answer anyone; every other API route needs a login, and
    # every page sends the browser to /login without one.
    # Every error each group of routes can answer is documented with the ErrorBody schema
    # (tests/api/test_contract.py holds the document to the answers).
    errors.document(app)
    app.include_router(health.router, responses=errors.OPEN_ROUTE)
    app.include_router(auth.router, responses=errors.LOGGED_IN_ROUTE)
    for router in (
        grids.router,
        areas.router,
        campaigns.router,
        visits.router,
        reports.router,
        hotspots.router,
        risk.router,
        households.router,
        audit.router,
        notifications.router,
        departments.router,
        letters.router,
        evaluation.router,
    ):
        app.include_router(
            router, dependencies=[Depends(get_principal)], responses=errors.LOGGED_IN_ROUTE
        )
    app.include_router(
        photos.router, dependencies=[Depends(get_principal)], responses=errors.LOGGED_IN_ROUTE
    )
    for router in (maps.router, pages.router):
        app.include_router(
            router, dependencies=[Depends(get_page_principal)], responses=errors.PAGE_ROUTE
        )
    app.include_router(
        inbox.router, dependencies=[Depends(get_page_principal)], responses=errors.PAGE_ROUTE
    )
    app.include_router(
        console.router, dependencies=[Depends(get_page_principal)], responses=errors.PAGE_ROUTE
    )
    app.include_router(
        campaign_pages.router,
        dependencies=[Depends(get_page_principal)],
        responses=errors.PAGE_ROUTE,
    )
    app.include_router(
        evaluation.page_router,
        dependencies=[Depends(get_page_principal)],
        responses=errors.PAGE_ROUTE,
    )
    app.include_router(login_pages.router, responses=errors.OPEN_ROUTE)
    # The API docs and /openapi.json answer anyone (the document says which routes need a login).
    app.include_router(docs.router)
    docs.document_login(app)
    # Leaflet and friends come from the service itself: offline intranets have no CDN.
    web_assets.STATIC.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticAssets(directory=web_assets.STATIC), name="static")
    return app


app = create_app()
