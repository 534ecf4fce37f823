"""The project-managed cluster: `riskgrid db up/down/status` from nothing."""

import psycopg
import pytest
from sqlalchemy import text

from geo.db import migrate
from geo.db.engine import make_engine
from geo.db.local_cluster import Cluster
from geo.errors import SetupError
from geo.settings import Settings


@pytest.fixture
def two_clusters(tmp_path):
    a = Cluster(tmp_path / "a" / ".riskgrid", fast_unsafe=True)
    b = Cluster(tmp_path / "b" / ".riskgrid", fast_unsafe=True)
    yield a, b
    for c in (a, b):
        if c.running():
            c.down()


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
            host=str(c.socket_dir), port=c.port, user="postgres", dbname="riskgrid"
        ) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_fixed_port_that_is_taken_gives_an_actionable_error(two_clusters, tmp_path):
    a, _ = two_clusters
    a.up()
    clash = Cluster(tmp_path / "c" / ".riskgrid", port=a.port, fast_unsafe=True)
    clash.init()
    with pytest.raises(SetupError, match="RISKGRID_CLUSTER__PORT"):
        clash.start()
