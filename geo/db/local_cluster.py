"""A project-managed PostgreSQL + PostGIS cluster under `.riskgrid/`, used without DATABASE_URL.

It never touches a system cluster: its own data folder, its own socket folder and its own port,
so two checkouts can run side by side. initdb and pg_ctl refuse to run as root, so as root the
server runs as the `postgres` OS user, which must own the folders it writes.

It is not open to the machine: every connection (socket and 127.0.0.1) needs the superuser's
password (scram-sha-256), generated at the first `init` and kept in `<home>/password` (mode 0600,
readable by the user running riskgrid only), and the socket folder only its owner may enter.

The superuser migrates, backs up and restores. The service and the everyday commands log in as
`riskgrid_web`, a member of the group role `riskgrid_app` (migration 0012) and nothing more,
with its own password in `<home>/app-password`: a bug or an injected statement in the service
cannot rewrite the audit log, alter a table or read the server's files.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import pq, sql
from psycopg.conninfo import make_conninfo

from geo.db.privileges import APP_ROLE, WEB_LOGIN
from geo.errors import SetupError

SERVER_USER = "postgres"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; ".s.PGSQL.NNNNN" needs the rest
_FAST_UNSAFE = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
AUTH_METHOD = "scram-sha-256"
# The rules initdb --auth=scram-sha-256 writes (without its comments); a locked cluster gets them.
_HBA_LOCKED = f"""\
# riskgrid: every connection needs the password in the cluster home's `password` file.
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 {AUTH_METHOD}
host    all          all   127.0.0.1/32  {AUTH_METHOD}
host    all          all   ::1/128       {AUTH_METHOD}
local   replication  all                 {AUTH_METHOD}
host    replication  all   127.0.0.1/32  {AUTH_METHOD}
host    replication  all   ::1/128       {AUTH_METHOD}
"""
# While a cluster is being locked: the socket alone (its folder only the server's owner and
# root may enter), no TCP at all.
_HBA_LOCKING = """\
# riskgrid: being locked (socket only); scram-sha-256 for everything once the password is set.
local   all          all                 trust
"""
_OPEN_METHODS = {"trust", "peer", "ident", "password", "md5"}


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


def _read_secret(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


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
    password_file: Path
    url: str | None  # the superuser's; carries the password: mask it before printing
    app_password_file: Path
    app_url: str | None  # riskgrid_web's, None before `riskgrid db up` made it


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
        # Owned by whoever runs riskgrid, mode 0600; as root the postgres user cannot read it.
        self.password_file = self.home / "password"
        self.app_password_file = self.home / "app-password"  # riskgrid_web's, the same way

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

    def _server_ids(self) -> tuple[int, int]:
        if self.as_root:
            pw = pwd.getpwnam(SERVER_USER)
            return pw.pw_uid, pw.pw_gid
        return os.geteuid(), os.getegid()

    def _make_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        uid, gid = self._server_ids()
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode) or st.st_uid not in (uid, os.geteuid()):
            # A folder someone else made first (the socket may live in /tmp) could be swapped.
            raise SetupError(f"{path} is a link or belongs to another user: remove it")
        if self.as_root:
            os.chown(path, uid, gid)
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

    def password(self) -> str | None:
        """Return the superuser's password (None before the first `init`)."""
        return _read_secret(self.password_file)

    def app_password(self) -> str | None:
        """Return riskgrid_web's password (None before `riskgrid db up` made the login)."""
        return _read_secret(self.app_password_file)

    def _url(self, user: str, password: str | None, database: str | None) -> str:
        port = self.port
        if port is None:
            raise SetupError("the riskgrid database is not set up: run `riskgrid db up`")
        db = database or self.database
        login = user if password is None else f"{user}:{quote(password, safe='')}"
        return f"postgresql+psycopg://{login}@/{db}?host={self.socket_dir}&port={port}"

    def url(self, database: str | None = None) -> str:
        """Return the superuser's SQLAlchemy URL of a database in this cluster (unix socket,
        password): for migrations, backups and restores."""
        return self._url(SERVER_USER, self.password(), database)

    def app_url(self, database: str | None = None) -> str:
        """Return riskgrid_web's SQLAlchemy URL of a database in this cluster: the service's."""
        password = self.app_password()
        if password is None:
            raise SetupError(f"the service's login {WEB_LOGIN} is not set up: run `riskgrid db up`")
        return self._url(WEB_LOGIN, password, database)

    def _connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SERVER_USER,
            password=self.password(),
            dbname=database,
            autocommit=True,
        )

    # -- the password and pg_hba.conf -----------------------------------------------------
    def _ensure_password(self) -> str:
        """Return the superuser's password, generating its file (mode 0600) on first use."""
        return self._ensure_secret(self.password_file)

    def _ensure_secret(self, path: Path) -> str:
        """Return the password in `path`, generating the file (mode 0600) on first use."""
        if (found := _read_secret(path)) is not None:
            return found
        self.home.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.home, prefix=f".{path.name}.")  # mode 0600
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        # A link is atomic and fails when the file exists: two processes agree on one password.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        os.unlink(tmp)
        found = _read_secret(path)
        if found is None:
            raise SetupError(f"{path} is empty: remove it and run `riskgrid db up`")
        return found

    def _verifier(self, conn: psycopg.Connection, user: str, password: str) -> sql.Literal:
        # Only the SCRAM verifier leaves this process (and could reach a server log).
        verifier = conn.pgconn.encrypt_password(
            password.encode(), user.encode(), AUTH_METHOD.encode()
        )
        return sql.Literal(verifier.decode())

    @contextlib.contextmanager
    def _pwfile_for_initdb(self, password: str) -> Iterator[Path]:
        """Yield a file with the password that initdb can read, removed right after.

        As root initdb runs as postgres, which must not read the home's file: the copy sits in
        a folder only postgres (and root) may enter.
        """
        if not self.as_root:
            yield self.password_file
            return
        uid, gid = self._server_ids()
        folder = Path(tempfile.mkdtemp(prefix=".initdb-", dir=self.data_dir.parent))  # 0700
        try:
            os.chown(folder, uid, gid)
            path = folder / "pwfile"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(password + "\n")
            os.chown(path, uid, gid)
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _hba_is_locked(self) -> bool:
        try:
            rules = (self.data_dir / "pg_hba.conf").read_text()
        except FileNotFoundError:
            return False
        words = {w for line in rules.splitlines() for w in line.split("#", 1)[0].split()}
        return AUTH_METHOD in words and not words & _OPEN_METHODS

    @property
    def locked(self) -> bool:
        """True when the password file exists and pg_hba.conf asks every connection for it."""
        return self.password() is not None and self._hba_is_locked()

    def _write_hba(self, rules: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=".pg_hba.")  # mode 0600
        with os.fdopen(fd, "w") as f:
            f.write(rules)
        if self.as_root:
            os.chown(tmp, *self._server_ids())
        os.replace(tmp, self.data_dir / "pg_hba.conf")

    def _reload(self) -> None:
        proc = self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "reload")
        if proc.returncode != 0:
            raise SetupError(f"pg_ctl reload failed: {proc.stderr.strip()}")

    def refuses_without_password(self, host: str | None = None) -> bool:
        """True when the server asks a connection without the password for one (and refuses)."""
        conninfo = make_conninfo(
            host=host or str(self.socket_dir),
            port=self.port,
            user=SERVER_USER,
            dbname="postgres",
            password="",  # an empty value: PGPASSWORD is not used, and no ~/.pgpass either
            passfile=str(self.home / "no-such-pgpass"),
            connect_timeout=5,
        )
        conn = pq.PGconn.connect(conninfo.encode())
        try:
            return conn.status == pq.ConnStatus.BAD and conn.needs_password
        finally:
            conn.finish()

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        # pg_ctl reload only signals the postmaster, which rereads pg_hba.conf within a moment.
        deadline = time.monotonic() + 10
        while not ready():
            if time.monotonic() > deadline:
                raise SetupError(f"PostgreSQL did not take the new pg_hba.conf ({what})")
            time.sleep(0.02)

    def _connects(self) -> bool:
        try:
            self._connect().close()
        except psycopg.OperationalError:
            return False
        return True

    def _lock(self) -> None:
        """Lock a running cluster: scram-sha-256 and the password file for every connection.

        Clusters made with `initdb -A trust` (riskgrid before passwords), or whose password file
        is gone, are locked in place, without a restart: the socket alone is trusted a moment
        (no TCP), the password is set over it, then pg_hba.conf asks everyone for it.
        """
        if self.locked:
            return
        password = self._ensure_password()
        self._write_hba(_HBA_LOCKING)
        self._reload()
        self._wait(self._connects, "socket only")
        with self._connect() as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(SERVER_USER), self._verifier(conn, SERVER_USER, password)
                )
            )
            conn.execute(f"ALTER SYSTEM SET password_encryption = '{AUTH_METHOD}'")
        self._write_hba(_HBA_LOCKED)
        self._reload()
        self._wait(self.refuses_without_password, AUTH_METHOD)

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
        """Create the data folder with initdb, password and scram-sha-256; lock an older one."""
        if self.initialized:
            if self.running():
                self._lock()
            elif not self.locked:
                self._ensure_password()
                self._write_hba(_HBA_LOCKING)  # no TCP until start() has set the password
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
        with self._pwfile_for_initdb(self._ensure_password()) as pwfile:
            proc = self._run(
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SERVER_USER,
                f"--auth={AUTH_METHOD}",  # local and host lines alike
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "-N",
            )
        if proc.returncode != 0:
            raise SetupError(f"initdb failed: {proc.stderr.strip() or proc.stdout.strip()}")

    def _pick_port(self) -> int:
        port = self.fixed_port or self.port
        if port is None or not _port_is_free(port):
            if self.fixed_port:
                raise SetupError(f"port {port} is taken; set RISKGRID_CLUSTER__PORT to a free one")
            port = _free_port()
        return port

    def _launch(self, port: int) -> None:
        for folder in (self.log_file.parent, self.socket_dir):
            self._make_dir(folder)
        opts = ["-p", str(port), "-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1"]
        opts += ["-c", "jit=off", "-c", f"password_encryption={AUTH_METHOD}"]
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

    def start(self) -> int:
        """Start the server on its port (a free one, kept across restarts); return the port."""
        if self.running():
            self._lock()
            return int(self.port or 0)
        if self.initialized and not self.locked:
            self._ensure_password()
            self._write_hba(_HBA_LOCKING)  # no TCP until the password is set
        port = self._pick_port()
        self._launch(port)
        self._lock()
        return port

    def ensure_database(self, database: str | None = None) -> str:
        """Create the database with PostGIS if missing; return its URL."""
        db = database or self.database
        with self._connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        with self._connect(db) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        return self.url(db)

    def drop_database(self, database: str) -> None:
        """Drop a database of this cluster if it exists."""
        with self._connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
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
            except psycopg.OperationalError as exc:
                if "password authentication failed" in str(exc):
                    raise SetupError(
                        f"the password in {self.password_file} is not the cluster's: remove the "
                        "file and run `riskgrid db up` again to set a new one"
                    ) from exc
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def ensure_app_login(self, database: str | None = None) -> str:
        """Make `riskgrid_web` a login in riskgrid_app with app-password's password (made on
        first use); return its URL of the database. Run after the migrations, which make the
        group role: its rights are the login's only ones, and every call sets them again."""
        password = self._ensure_secret(self.app_password_file)
        with self._connect(database or self.database) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)
            ).fetchone():
                raise SetupError(
                    f"the role {APP_ROLE} does not exist yet: run `riskgrid db upgrade`"
                )
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (WEB_LOGIN,))
            verb = "ALTER" if exists.fetchone() else "CREATE"
            conn.execute(
                sql.SQL(
                    "{} ROLE {} LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "NOBYPASSRLS PASSWORD {}"
                ).format(
                    sql.SQL(verb),
                    sql.Identifier(WEB_LOGIN),
                    self._verifier(conn, WEB_LOGIN, password),
                )
            )
            member = conn.execute(
                "SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                "JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = %s AND u.rolname = %s",
                (APP_ROLE, WEB_LOGIN),
            ).fetchone()
            if not member:
                conn.execute(
                    sql.SQL("GRANT {} TO {}").format(
                        sql.Identifier(APP_ROLE), sql.Identifier(WEB_LOGIN)
                    )
                )
        return self.app_url(database)

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
            password_file=self.password_file,
            url=self.url() if running else None,
            app_password_file=self.app_password_file,
            app_url=self.app_url() if running and self.app_password() else None,
        )
