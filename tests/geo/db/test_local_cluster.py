"""The project-managed cluster: `riskgrid db up/down/status` from nothing, and its lock."""

import os
import shutil
import stat
import subprocess

import psycopg
import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from geo.db import migrate
from geo.db.engine import database_url, make_engine, owner_url
from geo.db.local_cluster import Cluster, _free_port
from geo.errors import SetupError
from geo.settings import Settings, get_settings
from riskgrid.cli import app

AS_ROOT = os.geteuid() == 0
OTHER_USER = "nobody"
PATH = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}  # no PGPASSWORD, PGPASSFILE, PGUSER, ...


def _remove(c: Cluster) -> None:
    if c.running():
        c.down()
    if c.data_dir.parent != c.home:  # kept under /var/lib/riskgrid: postgres cannot reach tmp
        shutil.rmtree(c.data_dir.parent, ignore_errors=True)


@pytest.fixture
def two_clusters(tmp_path):
    a = Cluster(tmp_path / "a" / ".riskgrid", fast_unsafe=True)
    b = Cluster(tmp_path / "b" / ".riskgrid", fast_unsafe=True)
    yield a, b
    for c in (a, b):
        _remove(c)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / ".riskgrid", fast_unsafe=True)
    yield c
    _remove(c)


def test_up_from_nothing_then_status_and_down(two_clusters):
    cluster, _ = two_clusters
    assert not cluster.status().initialized
    with pytest.raises(SetupError, match="riskgrid db up"):
        cluster.url()
    url = cluster.up()
    st = cluster.status()
    assert st.initialized and st.running and st.port and st.url == url
    engine = make_engine(Settings(), url)
    assert migrate.upgrade(engine) == migrate.head()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT postgis_lib_version()")).scalar().startswith("3.")
        assert conn.execute(text("SHOW jit")).scalar() == "off"
    engine.dispose()
    assert cluster.down() is True
    assert not cluster.status().running
    assert cluster.down() is False
    # Restarting keeps the data and the port.
    port = st.port
    cluster.up()
    assert cluster.port == port


def test_two_checkouts_run_side_by_side(two_clusters):
    a, b = two_clusters
    a.up()
    b.up()
    assert a.port != b.port and a.socket_dir != b.socket_dir
    for c in (a, b):
        with psycopg.connect(
            host=str(c.socket_dir),
            port=c.port,
            user="postgres",
            password=c.password(),
            dbname="riskgrid",
        ) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_fixed_port_that_is_taken_gives_an_actionable_error(two_clusters, tmp_path):
    a, _ = two_clusters
    a.up()
    clash = Cluster(tmp_path / "c" / ".riskgrid", port=a.port, fast_unsafe=True)
    clash.init()
    with pytest.raises(SetupError, match="RISKGRID_CLUSTER__PORT"):
        clash.start()
    _remove(clash)


def _psql(c: Cluster, host: str, password: str | None = None) -> subprocess.CompletedProcess:
    """`psql -c 'SELECT 1'` as another OS user (as the same one when not root), no password."""
    env = PATH if password is None else {**PATH, "PGPASSWORD": password}
    conninfo = f"host={host} port={c.port} user=postgres dbname=postgres connect_timeout=5"
    cmd = [str(c.bin_dir / "psql"), "-w", "-X", "-At", conninfo, "-c", "SELECT 1"]
    if AS_ROOT:
        cmd = ["runuser", "-u", OTHER_USER, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/", check=False)


def _refused(c: Cluster, host: str, because: str, password: str | None = None) -> None:
    out = _psql(c, host, password)
    assert out.returncode != 0 and because in out.stderr, out.stdout + out.stderr


def _init_with_trust(c: Cluster) -> None:
    """Make the data folder as riskgrid did before passwords: `initdb -A trust`."""
    c.data_dir.parent.mkdir(parents=True, exist_ok=True)
    for folder in (c.data_dir, c.log_file.parent, c.socket_dir):
        c._make_dir(folder)
    initdb = [str(c.bin_dir / "initdb"), "-D", str(c.data_dir), "-U", "postgres", "-A", "trust"]
    proc = c._run(*initdb, "-E", "UTF8", "--locale=C.UTF-8", "-N")
    assert proc.returncode == 0, proc.stderr


def _postmaster_pid(c: Cluster) -> str:
    return (c.data_dir / "postmaster.pid").read_text().split()[0]


def _riskgrid_connects(c: Cluster) -> None:
    engine = create_engine(c.url("postgres"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == "postgres"
    engine.dispose()


def test_another_os_user_cannot_connect_over_tcp_or_the_socket(cluster):
    cluster.init()
    cluster.start()
    # The password: generated, 0600, the riskgrid user's; another user cannot read it.
    info = cluster.password_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    assert len(cluster.password() or "") >= 40
    if AS_ROOT:
        cat = ["runuser", "-u", OTHER_USER, "--", "cat", str(cluster.password_file)]
        assert subprocess.run(cat, capture_output=True, check=False).returncode != 0
    _refused(cluster, "127.0.0.1", "no password supplied")
    _refused(cluster, "127.0.0.1", "password authentication failed", password="guess")  # noqa: S106
    # The socket folder is the owner's alone; scram is the lock even when it is opened.
    assert stat.S_IMODE(cluster.socket_dir.stat().st_mode) == 0o700
    if AS_ROOT:
        _refused(cluster, str(cluster.socket_dir), "Permission denied")
    cluster.socket_dir.chmod(0o711)
    try:
        _refused(cluster, str(cluster.socket_dir), "no password supplied")
    finally:
        cluster.socket_dir.chmod(0o700)
    _riskgrid_connects(cluster)
    with cluster._connect() as conn:
        verifier = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'")
        assert verifier.fetchone()[0].startswith("SCRAM-SHA-256$")
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)


def test_running_cluster_made_with_trust_is_locked_in_place(cluster):
    _init_with_trust(cluster)
    cluster._launch(_free_port())
    assert _psql(cluster, "127.0.0.1").returncode == 0  # what every checkout had: open
    with cluster._connect() as conn:
        conn.execute("CREATE TABLE kept AS SELECT 42 AS answer")
    pid = _postmaster_pid(cluster)
    assert not cluster.locked and cluster.password() is None
    cluster.init()  # what the tests' Server and `riskgrid db up` do first
    cluster.start()
    assert cluster.locked and _postmaster_pid(cluster) == pid  # no restart
    _refused(cluster, "127.0.0.1", "no password supplied")
    assert cluster.refuses_without_password()
    _riskgrid_connects(cluster)
    with cluster._connect() as conn:
        assert conn.execute("SELECT answer FROM kept").fetchone() == (42,)


def test_stopped_cluster_made_with_trust_is_locked_by_up(cluster):
    _init_with_trust(cluster)
    cluster.init()
    assert "host" not in (cluster.data_dir / "pg_hba.conf").read_text()  # no TCP till start
    url = cluster.up()
    assert cluster.locked and cluster.password() in url
    _refused(cluster, "127.0.0.1", "no password supplied")
    _riskgrid_connects(cluster)


def test_a_wrong_password_file_says_what_to_do_and_a_lost_one_is_replaced(cluster):
    cluster.up()
    old = cluster.password() or ""
    cluster.password_file.write_text("not-the-password\n")
    with pytest.raises(SetupError, match="remove the file and run `riskgrid db up`"):
        cluster.up()
    cluster.password_file.unlink()
    cluster.up()
    assert cluster.password() not in (None, old)
    _riskgrid_connects(cluster)
    _refused(cluster, "127.0.0.1", "password authentication failed", password=old)


def test_db_up_and_status_never_print_the_password(cluster, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("RISKGRID_CLUSTER__HOME", str(cluster.home))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        up = runner.invoke(app, ["db", "up"])
        status = runner.invoke(app, ["db", "status"])
        settings = get_settings()
        service, owner = database_url(settings), owner_url(settings)
    finally:
        get_settings.cache_clear()
    assert up.exit_code == 0 and status.exit_code == 0, up.output + status.output
    said = up.output + status.output
    for password in (cluster.password() or "?", cluster.app_password() or "?"):
        assert password not in said
    assert "postgres:***@" in up.output and "postgres:***@" in status.output
    assert "riskgrid_web:***@" in up.output and "riskgrid_web:***@" in status.output
    assert f"password: {cluster.password_file}" in status.output
    assert f"app password: {cluster.app_password_file}" in status.output
    assert "role postgres: superuser (migrations, backup, restore)" in status.output
    assert "role riskgrid_web: member of riskgrid_app (the service and the commands)" in said
    # What the service and the commands use by default; migrations keep the superuser.
    assert make_url(service).username == "riskgrid_web" and service == cluster.app_url()
    assert make_url(owner).username == "postgres" and owner == cluster.url()


def _login(url: str) -> tuple:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(
                conn.execute(
                    text(
                        "SELECT current_user, rolsuper, pg_has_role(current_user, "
                        "'riskgrid_app', 'MEMBER') FROM pg_roles WHERE rolname = current_user"
                    )
                ).one()
            )
    finally:
        engine.dispose()


def _downgraded_roles(engine) -> set[str]:
    """Downgrade below 0012; return the riskgrid roles the cluster has then."""
    cfg = migrate.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
    with engine.connect() as conn:
        found = "SELECT rolname FROM pg_roles WHERE rolname LIKE 'riskgrid%'"
        return set(conn.execute(text(found)).scalars())


def test_the_service_login_has_its_own_password_and_is_no_superuser(cluster):
    url = cluster.up()
    engine = make_engine(Settings(), url)
    migrate.upgrade(engine)
    with pytest.raises(SetupError, match="riskgrid db up"):
        cluster.app_url()  # before the login is made: the command that makes it
    app_url = cluster.ensure_app_login()
    info = cluster.app_password_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    password = cluster.app_password() or ""
    assert len(password) >= 40 and password != cluster.password()
    assert app_url == cluster.app_url() and make_url(app_url).password == password
    assert _login(app_url) == ("riskgrid_web", False, True)
    assert cluster.status().app_url == app_url
    # The superuser's password does not open the service's login, nor the other way round.
    wrong = make_url(app_url).set(password=cluster.password()).render_as_string(False)
    with pytest.raises(OperationalError, match="password authentication failed"):
        _login(wrong)
    # Made again (every `riskgrid db up`): the same password; a lost file gets a new one.
    assert cluster.ensure_app_login() == app_url
    cluster.app_password_file.unlink()
    renewed = cluster.ensure_app_login()
    assert renewed != app_url and _login(renewed)[0] == "riskgrid_web"
    with pytest.raises(OperationalError, match="password authentication failed"):
        _login(app_url)
    # Downgrading below 0012 keeps riskgrid_app while riskgrid_web is its member, and drops it
    # once nothing uses it (this cluster has no other database).
    assert _downgraded_roles(engine) == {"riskgrid_app", "riskgrid_web"}
    assert migrate.upgrade(engine) == migrate.head()
    with engine.begin() as conn:
        conn.execute(text("DROP ROLE riskgrid_web"))
    assert _downgraded_roles(engine) == set()
    engine.dispose()


def test_a_migrating_owner_who_may_not_create_roles_is_told_what_the_dba_runs(cluster):
    """A managed PostgreSQL: the tables' owner is no superuser and may not create roles."""
    cluster.up()
    owner, password = "rg_owner", "owner-password-1234"
    with cluster._connect() as conn:
        conn.execute(f"CREATE ROLE {owner} LOGIN PASSWORD '{password}'")
        conn.execute(f"CREATE DATABASE managed OWNER {owner}")
    with cluster._connect("managed") as conn:
        conn.execute("CREATE EXTENSION postgis")
    url = make_url(cluster.url("managed")).set(username=owner, password=password)
    engine = make_engine(Settings(), url.render_as_string(hide_password=False))
    assert migrate.upgrade(engine, "0011") == "0011"
    with pytest.raises(SetupError, match="run `CREATE ROLE riskgrid_app NOLOGIN;`"):
        migrate.upgrade(engine)
    assert migrate.current(engine) == "0011"  # nothing of 0012 applied
    with cluster._connect() as conn:
        conn.execute("CREATE ROLE riskgrid_app NOLOGIN")
    assert migrate.upgrade(engine) == migrate.head()
    with engine.connect() as conn:
        granted = conn.execute(
            text(
                "SELECT has_table_privilege('riskgrid_app', 'audit_log', 'INSERT'), "
                "has_table_privilege('riskgrid_app', 'audit_log', 'UPDATE'), "
                "(SELECT r.rolname FROM pg_default_acl d JOIN pg_roles r "
                " ON r.oid = d.defaclrole WHERE d.defaclobjtype = 'r')"
            )
        ).one()
    engine.dispose()
    assert tuple(granted) == (True, False, owner)
