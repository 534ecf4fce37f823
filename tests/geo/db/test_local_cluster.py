"""The project-managed cluster: `riskgrid db up/down/status` from nothing, and its lock."""

import os
import shutil
import stat
import subprocess

import psycopg
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from geo.db import migrate
from geo.db.engine import make_engine
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
    finally:
        get_settings.cache_clear()
    assert up.exit_code == 0 and status.exit_code == 0, up.output + status.output
    password = cluster.password() or "?"
    assert password not in up.output + status.output
    assert "postgres:***@" in up.output and "postgres:***@" in status.output
    assert f"password: {cluster.password_file}" in status.output
