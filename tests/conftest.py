"""Test databases on a real PostGIS.

Without DATABASE_URL the tests start their own cluster under `.riskgrid/test` with the same
machinery as `riskgrid db up` (fsync off: throwaway data). With DATABASE_URL they create two
uniquely named databases on that server and drop them afterwards, never touching its others.
Two databases: `db` is emptied before every test; `demo_engine` holds the Daqing demo, loaded
once and only read.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from api.app import create_app
from geo.db import migrate
from geo.db.engine import make_engine
from geo.db.local_cluster import Cluster
from geo.settings import RateSettings, ReportSettings, Settings

ROOT = Path(__file__).resolve().parent.parent
TABLES = (
    "letter_attachments",
    "letters",
    "letter_numbers",
    "webhook_deliveries",
    "outbox",
    "notifications",
    "report_photos",
    "visit_photos",
    "audit_log",
    "auth_tokens",
    "user_grids",
    "user_districts",
    "users",
    "households",
    "risk_parts",
    "risk_layers",
    "report_loops",
    "report_events",
    "reports",
    "visit_counts",
    "visits",
    "campaign_targets",
    "grids",
    "areas",
    "campaigns",
    "boundary_versions",
)


class Server:
    """Creates and drops databases on the test server."""

    def __init__(self) -> None:
        url = os.environ.get("DATABASE_URL")
        self.cluster: Cluster | None = None
        self.started = False
        if url:
            self.base = Settings(database_url=url).database_url or url
        else:
            self.cluster = Cluster(ROOT / ".riskgrid" / "test", fast_unsafe=True)
            self.cluster.check_postgis()
            self.cluster.init()
            self.started = not self.cluster.running()
            self.cluster.start()
            self.base = self.cluster.url("postgres")

    def create(self, name: str) -> str:
        if self.cluster is not None:
            self.cluster.drop_database(name)
            return self.cluster.ensure_database(name)
        admin = create_engine(self.base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = make_url(self.base).set(database=name).render_as_string(hide_password=False)
        eng = create_engine(url, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        eng.dispose()
        return url

    def drop(self, name: str) -> None:
        if self.cluster is not None:
            self.cluster.drop_database(name)
            return
        admin = create_engine(self.base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    def close(self) -> None:
        if self.cluster is not None and self.started:
            self.cluster.down()


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """argon2id at its cheapest for the tests: the cost that protects stored passwords is 0.16 s
    a hash here, and the demo's 39 users were hashed four times a run. Hashing and checking
    work the same (the parameters travel in each hash); tests/geo/test_passwords.py checks
    the shipped parameters."""
    from argon2 import PasswordHasher

    from geo.identity import passwords

    shipped = passwords._HASHER, passwords._DUMMY
    passwords._HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    passwords._DUMMY = passwords._HASHER.hash("riskgrid: no such user")
    yield
    passwords._HASHER, passwords._DUMMY = shipped


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


def _database(server: Server, stem: str) -> Iterator[tuple[Settings, Engine]]:
    name = f"{stem}_{uuid.uuid4().hex[:8]}"
    url = server.create(name)
    # The suite sends thousands of requests from one client (a fuzz of 1,120): rate limits
    # are off but in tests/api/test_rate_limits.py, which turns them on, small.
    # Nor does a server sweep for overdue reports behind the tests' backs (test_escalation
    # sweeps itself).
    settings = Settings(
        database_url=url,
        warm_up=False,
        rates=RateSettings(enabled=False),
        reports=ReportSettings(sweep_overdue=False),
    )
    engine = make_engine(settings)
    migrate.upgrade(engine)
    yield settings, engine
    engine.dispose()
    server.drop(name)


@pytest.fixture(scope="session")
def test_database(server: Server) -> Iterator[tuple[Settings, Engine]]:
    yield from _database(server, "riskgrid_test")


@pytest.fixture
def db(test_database: tuple[Settings, Engine]) -> Engine:
    """An engine on a migrated database emptied before this test."""
    _, engine = test_database
    from tests.factories import truncate

    with engine.begin() as conn:
        truncate(conn, TABLES)
    return engine


@pytest.fixture
def settings(test_database: tuple[Settings, Engine]) -> Settings:
    return test_database[0]


@pytest.fixture
def client(db: Engine, settings: Settings) -> Iterator[TestClient]:
    """A client logged in as an administrator (every right); `anonymous` has none."""
    from tests.factories import login_as

    with TestClient(create_app(settings, engine=db)) as c:
        c.headers["Authorization"] = f"Bearer {login_as(db, 'admin')}"
        yield c


@pytest.fixture
def anonymous(db: Engine, settings: Settings) -> Iterator[TestClient]:
    """A client with no credentials at all."""
    with TestClient(create_app(settings, engine=db)) as c:
        yield c


@pytest.fixture(scope="session")
def demo_database(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Engine, dict]]:
    from boundaries.demo import load_demo

    for settings, engine in _database(server, "riskgrid_demo"):
        out = tmp_path_factory.mktemp("demo")
        summary = load_demo(engine, out, settings.imports, echo=lambda _: None)
        yield settings, engine, {"summary": summary, "dir": out}


@pytest.fixture(scope="session")
def demo_engine(demo_database: tuple[Settings, Engine, dict]) -> Engine:
    return demo_database[1]


@pytest.fixture(scope="session")
def demo_client(demo_database: tuple[Settings, Engine, dict]) -> Iterator[TestClient]:
    from tests.factories import login_as

    settings, engine, _ = demo_database
    with TestClient(create_app(settings, engine=engine)) as c:
        c.headers["Authorization"] = f"Bearer {login_as(engine, 'admin', username='demo-admin')}"
        yield c


@pytest.fixture
def cli_env(db: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The `riskgrid` command pointed at the emptied test database."""
    from geo.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", settings.database_url or "")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def block(db: Engine, tmp_path: Path) -> Engine:
    """The emptied database with the hotspot block: 10 x 10 grids of 500 m and one school."""
    from boundaries.importer import ImportOptions, import_file
    from geo.settings import ImportSettings
    from tests.factories import BLOCK_N, BLOCK_SIZE, grid_frame, square_m, tiled, write

    rows = tiled(BLOCK_N, BLOCK_SIZE)
    rows.append(
        {
            "code": "230602001001901",
            "name": "实验小学",
            "kind": "exclusive",
            "community_code": "230602001001",
            "geometry": square_m(1100, 1100, 200),
            "population": 800,
        }
    )
    for i, r in enumerate(rows[:-1]):
        r["population"] = 1000 + i
    import_file(
        db, write(grid_frame(rows), tmp_path / "g.geojson"), ImportOptions(), ImportSettings()
    )
    return db
