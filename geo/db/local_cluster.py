"""A project-managed PostgreSQL + PostGIS cluster under `.riskgrid/`, used without DATABASE_URL.

It never touches a system cluster: its own data folder, its own socket folder and its own port,
so two checkouts can run side by side. initdb and pg_ctl refuse to run as root, so as root the
server runs as the `postgres` OS user, which must own the folders it writes.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from geo.errors import SetupError

SERVER_USER = "postgres"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; ".s.PGSQL.NNNNN" needs the rest
_FAST_UNSAFE = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")


def find_bin_dir(preferred: Path | None = None) -> Path:
    """Return the folder holding initdb/pg_ctl, preferring the newest installed major version."""
    candidates = [preferred] if preferred else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for found in (shutil.which("initdb"), shutil.which("pg_ctl")):
        if found:
            candidates.append(Path(found).resolve().parent)
    for cand in candidates:
        if cand and (cand / "initdb").exists() and (cand / "pg_ctl").exists():
            return cand
    raise SetupError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them with: "
        "sudo apt-get install -y postgresql-15 postgresql-15-postgis-3 (or run `make setup`)"
    )


def _share_dir(bin_dir: Path) -> Path:
    out = subprocess.run(
        [str(bin_dir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
    )
    if out.returncode == 0 and out.stdout.strip():
        return Path(out.stdout.strip())
    return Path("/usr/share/postgresql") / bin_dir.parent.name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _reachable_by(user: str, path: Path) -> bool:
    """True when `user` can traverse every folder down to `path` (checked from the mode bits)."""
    pw = pwd.getpwnam(user)
    groups = {g.gr_gid for g in grp.getgrall() if user in g.gr_mem} | {pw.pw_gid}
    for folder in [*reversed(path.resolve().parents), path.resolve()]:
        if not folder.exists():
            break
        st = folder.stat()
        if st.st_uid == pw.pw_uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in groups:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class ClusterStatus:
    """What `riskgrid db status` reports."""

    initialized: bool
    running: bool
    port: int | None
    socket_dir: Path
    data_dir: Path
    url: str | None


class Cluster:
    """One PostgreSQL cluster living under a project folder (default `.riskgrid/`)."""

    def __init__(
        self,
        home: Path,
        database: str = "riskgrid",
        port: int | None = None,
        bin_dir: Path | None = None,
        fast_unsafe: bool = False,
    ) -> None:
        self.home = home.resolve()
        self.database = database
        self.fixed_port = port
        self._bin_dir = bin_dir
        self.fast_unsafe = fast_unsafe  # tests only: no fsync, never for a user's data
        self.as_root = os.geteuid() == 0
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        root = self.home
        if self.as_root and not _reachable_by(SERVER_USER, self.home.parent):
            # The postgres user cannot reach a folder under /root; keep the data where it can.
            root = Path("/var/lib/riskgrid") / digest
        self.data_dir = root / "pgdata"
        self.log_file = root / "log" / "postgres.log"
        sock = root / "run"
        if len(str(sock)) > _SOCKET_PATH_MAX:
            sock = Path("/tmp") / f"riskgrid-{digest}"  # noqa: S108 - sun_path length limit
        self.socket_dir = sock
        self.state_file = self.home / "cluster.json"

    # -- helpers -------------------------------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        """Return the PostgreSQL binaries this cluster runs."""
        return find_bin_dir(self._bin_dir)

    def _server_cmd(self, *args: str) -> list[str]:
        if self.as_root:
            return ["runuser", "-u", SERVER_USER, "--", *args]
        return list(args)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self._server_cmd(*args), capture_output=True, text=True, check=False)
        return proc

    def _make_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.as_root:
            pw = pwd.getpwnam(SERVER_USER)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        path.chmod(0o700)

    def _state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _save_state(self, port: int) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        state = {"port": port, "socket_dir": str(self.socket_dir), "data_dir": str(self.data_dir)}
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    @property
    def initialized(self) -> bool:
        """True once initdb has made the data folder."""
        return (self.data_dir / "PG_VERSION").exists()

    @property
    def port(self) -> int | None:
        """Return the port the cluster last started on, if any."""
        return self._state().get("port")

    def running(self) -> bool:
        """True when the cluster's postmaster answers."""
        if not self.initialized:
            return False
        return (
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status").returncode
            == 0
        )

    def url(self, database: str | None = None) -> str:
        """Return the SQLAlchemy URL of a database in this cluster (over its unix socket)."""
        port = self.port
        if port is None:
            raise SetupError("the riskgrid database is not set up: run `riskgrid db up`")
        db = database or self.database
        return f"postgresql+psycopg://{SERVER_USER}@/{db}?host={self.socket_dir}&port={port}"

    def _connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SERVER_USER,
            dbname=database,
            autocommit=True,
        )

    # -- lifecycle -----------------------------------------------------------------------
    def check_postgis(self) -> None:
        """Raise SetupError with the install command when PostGIS is missing."""
        control = _share_dir(self.bin_dir) / "extension" / "postgis.control"
        if not control.exists():
            major = self.bin_dir.parent.name
            raise SetupError(
                f"PostGIS is not installed for PostgreSQL {major}. Install it with: "
                f"sudo apt-get install -y postgresql-{major}-postgis-3 (or run `make setup`)"
            )

    def init(self) -> None:
        """Create the data folder with initdb (no-op when it exists)."""
        if self.initialized:
            return
        if self.as_root:
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError as exc:
                raise SetupError(
                    "running as root needs the 'postgres' OS user, which the postgresql "
                    "package creates: sudo apt-get install -y postgresql-15"
                ) from exc
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        for folder in (self.data_dir, self.log_file.parent, self.socket_dir):
            self._make_dir(folder)
        proc = self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SERVER_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "-N",
        )
        if proc.returncode != 0:
            raise SetupError(f"initdb failed: {proc.stderr.strip() or proc.stdout.strip()}")

    def start(self) -> int:
        """Start the server on its port (a free one, kept across restarts); return the port."""
        if self.running():
            return int(self.port or 0)
        port = self.fixed_port or self.port
        if port is None or not _port_is_free(port):
            if self.fixed_port:
                raise SetupError(f"port {port} is taken; set RISKGRID_CLUSTER__PORT to a free one")
            port = _free_port()
        for folder in (self.log_file.parent, self.socket_dir):
            self._make_dir(folder)
        opts = [
            "-p",
            str(port),
            "-k",
            str(self.socket_dir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "jit=off",
        ]
        if self.fast_unsafe:
            opts += list(_FAST_UNSAFE)
        proc = self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(opts),
            "start",
        )
        if proc.returncode != 0:
            tail = ""
            with contextlib.suppress(OSError):
                tail = self.log_file.read_text(errors="replace")[-800:]
            raise SetupError(f"PostgreSQL did not start: {proc.stderr.strip()} {tail}".strip())
        self._save_state(port)
        return port

    def ensure_database(self, database: str | None = None) -> str:
        """Create the database with PostGIS if missing; return its URL."""
        db = database or self.database
        with self._connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
            if not exists:
                conn.execute(
                    psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(db))
                )
        with self._connect(db) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        return self.url(db)

    def drop_database(self, database: str) -> None:
        """Drop a database of this cluster if it exists."""
        with self._connect() as conn:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(database)
                )
            )

    def up(self) -> str:
        """Initialise, start and create the database as needed; return its URL."""
        self.check_postgis()
        self.init()
        self.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                return self.ensure_database()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def down(self) -> bool:
        """Stop the server; return False when it was not running."""
        if not self.running():
            return False
        proc = self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"
        )
        if proc.returncode != 0:
            raise SetupError(f"pg_ctl stop failed: {proc.stderr.strip()}")
        return True

    def status(self) -> ClusterStatus:
        """Return what is known about the cluster without changing it."""
        running = self.running()
        return ClusterStatus(
            initialized=self.initialized,
            running=running,
            port=self.port,
            socket_dir=self.socket_dir,
            data_dir=self.data_dir,
            url=self.url() if running else None,
        )
