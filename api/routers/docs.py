"""The API docs, /docs (Swagger UI) and /redoc, with their scripts served by riskgrid itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN and are blank on an intranet; these
load `web/static/vendor` (npm packages pinned in web/package-lock.json, built by web.assets).
They and /openapi.json answer without a login. The OpenAPI document gets an OAuth2 password
scheme on every /api/v1 operation, so Swagger's Authorize button logs in against POST
/api/v1/auth/token; the check itself stays api.deps.get_principal.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.security import OAuth2PasswordBearer
from starlette.responses import HTMLResponse

from api.security_headers import csp_nonce, page_policy
from web.assets import static_url

API_PREFIX = "/api/v1/"
TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 (an address, not a password)
SCHEME = "OAuth2PasswordBearer"

router = APIRouter(include_in_schema=False)
NonceDep = Annotated[str, Depends(csp_nonce)]


def _openapi_url(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/") + (request.app.openapi_url or "")


def _with_nonce(page: HTMLResponse, nonce: str) -> HTMLResponse:
    """Return FastAPI's Swagger UI page with its inline script allowed by `nonce` (the page is
    FastAPI's markup around riskgrid's own addresses and title: no request data in it)."""
    text = bytes(page.body).decode().replace("<script>", f'<script nonce="{nonce}">')
    return HTMLResponse(text)


@router.get("/docs")
def swagger_ui(request: Request, nonce: NonceDep) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} API",
        swagger_js_url=static_url("vendor/swagger-ui/swagger-ui-bundle.js"),
        swagger_css_url=static_url("vendor/swagger-ui/swagger-ui.css"),
        swagger_favicon_url=static_url("vendor/swagger-ui/favicon-32x32.png"),
        # Keep the token over a reload of the page; never ask an online validator.
        swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
    )
    return _with_nonce(page, nonce)


@router.get("/redoc")
def redoc(request: Request, nonce: NonceDep) -> HTMLResponse:
    page = get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} API",
        redoc_js_url=static_url("vendor/redoc/redoc.standalone.js"),
        redoc_favicon_url=static_url("vendor/swagger-ui/favicon-32x32.png"),
        with_google_fonts=False,
    )
    # ReDoc adds <style> elements before it can be given a nonce, and searches in a worker
    # made from a blob: styles are let in on this page (it shows no data of a request), and
    # scripts stay held to the nonce.
    policy = page_policy(nonce, style=("'self'", "'unsafe-inline'"), worker=("'self'", "blob:"))
    return HTMLResponse(page.body, headers={"Content-Security-Policy": policy})


def document_login(app: FastAPI) -> None:
    """Describe the bearer login in `app`'s OpenAPI document: every /api/v1 operation but the
    token route needs one (tests/web/test_docs.py holds the document to the answers). This is
    documentation only: api.deps.get_principal checks requests. Wraps the current `app.openapi`.
    """
    build = app.openapi
    scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL).model.model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    scheme["description"] = f"a username and password, sent to POST {TOKEN_URL}"

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI's, cached until the routes change
        components = schema.setdefault("components", {})
        if SCHEME not in components.get("securitySchemes", {}):
            components.setdefault("securitySchemes", {})[SCHEME] = scheme
            for path, operations in schema.get("paths", {}).items():
                if path.startswith(API_PREFIX) and path != TOKEN_URL:
                    for operation in operations.values():
                        operation.setdefault("security", [{SCHEME: []}])
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
