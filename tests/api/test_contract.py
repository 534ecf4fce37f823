"""The OpenAPI document is true: schemathesis sends every /api/v1 operation (and /health) a few
generated requests, valid and invalid, as each role, and finds no server error, no undocumented
status or content type and no body off its documented schema.

Reads run on the demo database; the operations that change state (reports in, moves, logins,
logouts) on the emptied test database with a few grids, so the demo stays as other tests expect
it. The pages and /login are HTML for browsers, tested in tests/web, and left out.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, text

from api.app import create_app
from boundaries.importer import ImportOptions, import_file
from geo.settings import ImportSettings, Settings
from tests.conftest import TABLES
from tests.factories import grid_frame, login_as, tiled, truncate, write

# The roles whose answers differ in shape: all of it (admin), scoped to a department, masked
# (planner), households shown (coordinator), scoped to grids (worker). A dispatcher's answers
# are shaped as an admin's (tests/api/test_rights.py holds what each may do).
ROLES = ("admin", "department", "planner", "coordinator", "worker")
# A role's scope as the demo's users have them; a worker gets the demo's first grid.
SCOPES = {"department": {"department": "燃气公司"}, "coordinator": {"districts": ("230602",)}}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
API = r"^/(api/v1/|health$)"
WRITES = (
    r"^/api/v1/(reports(:batch|:transitions|/\{report_id\}(/transitions|/supervision|/photos)?)?"
    r"|notifications/read|auth/(token|logout)"
    r"|campaigns(/\{code\}(/launch|/pause|/close|/targets)?)?|visits"
    r"|letters(/\{letter_id\}(/issue|/acknowledge|/reply|/close)?)?)$"
)
# Bounded: the document's examples and 4 generated cases (valid and invalid) per operation and
# role: ~600 requests, 35 s (55 s on a loaded machine). The coverage phase adds hundreds per
# operation (measured: admin alone, with it and 30 examples, 90 s; it found nothing more).
BOUNDED = settings(
    max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
CONFIG = schemathesis.Config.from_dict(
    {
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "generation": {"mode": "all", "with-security-parameters": False},
    }
)
# The document the app serves, read here so pytest can name an item per operation;
# test_the_document_tested_is_the_one_served holds it to /openapi.json.
DOCUMENT = create_app(Settings(warm_up=False)).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
WRITE_METHODS = ["POST", "PATCH", "PUT", "DELETE"]
reads = schema.include(path_regex=API).exclude(method=WRITE_METHODS, path_regex=WRITES)
writes = schema.include(path_regex=WRITES, method=WRITE_METHODS)


def _unlimited(base: Settings) -> Settings:
    # Hundreds of requests a minute from one user are this test, not an attack: without
    # this, the rate limit would answer 429 for most of them (documented, but checking little).
    return base.model_copy(update={"rates": base.rates.model_copy(update={"enabled": False})})


@pytest.fixture(scope="module", params=ROLES)
def role(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def demo_app(demo_database):
    settings_, engine, _ = demo_database
    return create_app(_unlimited(settings_), engine=engine)


@pytest.fixture(scope="module")
def demo_token(demo_engine, role) -> str:
    with demo_engine.connect() as conn:
        grid = conn.execute(
            text("SELECT code FROM grids WHERE kind = 'comprehensive' ORDER BY code LIMIT 1")
        ).scalar_one()
    scope = {**SCOPES, "worker": {"grids": (grid,)}}
    return login_as(demo_engine, role, username=f"contract-{role}", **scope.get(role, {}))


@pytest.fixture(scope="module")
def town(test_database, tmp_path_factory) -> Engine:
    """The test database, emptied once for this module's writes, with 3 x 3 grids of 500 m
    where the report example of the document lies."""
    _, engine = test_database
    with engine.begin() as conn:
        truncate(conn, TABLES)
    path = write(grid_frame(tiled(3)), tmp_path_factory.mktemp("town") / "grids.geojson")
    import_file(engine, path, ImportOptions(), ImportSettings())
    return engine


@pytest.fixture(scope="module")
def town_app(town, test_database):
    return create_app(_unlimited(test_database[0]), engine=town)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@reads.parametrize()
@BOUNDED
def test_reads_answer_as_documented(case, demo_app, demo_token):
    case.call_and_validate(app=demo_app, headers=_bearer(demo_token), checks=CHECKS)


@writes.parametrize()
@BOUNDED
def test_writes_answer_as_documented(case, town_app, town, role):
    # A token per case: a logout revokes the one it carries.
    token = login_as(town, role, username=f"contract-{role}", **SCOPES.get(role, {}))
    case.call_and_validate(app=town_app, headers=_bearer(token), checks=CHECKS)


def test_the_document_tested_is_the_one_served(demo_client):
    assert demo_client.get("/openapi.json").json() == DOCUMENT


def test_error_answers_have_the_one_documented_schema(client):
    doc = client.get("/openapi.json").json()
    error_body = doc["components"]["schemas"]["ErrorBody"]
    assert error_body["required"] == ["detail"] and "HTTPValidationError" not in doc["components"]
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and "application/json" in answer.get("content", {}):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
    # Parsing, the domain and the login each answer that schema.
    parsed = client.get("/api/v1/grids/lookup", params={"lon": "x", "lat": 46.6}).json()
    assert parsed["detail"].startswith("lon:") and parsed["errors"][0]["loc"] == ["query", "lon"]
    assert set(client.get("/api/v1/grids/nowhere").json()) == {"detail"}
    assert set(client.get("/api/v1/themes", headers={"Authorization": "Bearer x"}).json()) == {
        "detail"
    }


def test_geojson_and_file_routes_do_not_claim_json(anonymous):
    paths = anonymous.get("/openapi.json").json()["paths"]
    ok = {p: paths[p]["get"]["responses"]["200"]["content"] for p in paths if "get" in paths[p]}
    assert set(ok["/api/v1/grids"]) == {"application/geo+json"}
    assert set(ok["/api/v1/reports"]) == {"application/geo+json", "text/csv"}
    assert set(ok["/api/v1/risk/grids"]) == {
        "application/geo+json",
        "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    assert set(ok["/"]) == {"text/html"}


@pytest.mark.parametrize("value", ["0.5", "1724284800", "yesterday"])
def test_a_time_is_iso_8601_not_seconds_since_1970(client, value):
    # pydantic reads "0.5" as 1970-01-01T00:00:00.5Z; the document promises a date-time.
    r = client.get("/api/v1/reports", params={"until": value})
    assert r.status_code == 422 and r.json()["detail"].startswith("until: ")
    assert client.get("/api/v1/audit", params={"since": value}).status_code == 422
    assert client.get("/api/v1/risk/grids", params={"since": value}).status_code == 422
    good = client.get("/api/v1/reports", params={"until": "2024-08-22T00:00:00+08:00"})
    assert good.status_code == 200


@pytest.mark.parametrize("value", [0.5, 1724284800, "1724284800"], ids=["float", "int", "str"])
def test_a_report_time_is_iso_8601(client, value):
    body = {"lon": 125.01, "lat": 46.605, "theme": "fire", "category": "electrical"}
    r = client.post("/api/v1/reports", json={**body, "reported_at": value})
    assert r.status_code == 422 and r.json()["detail"].startswith("reported_at: ")
