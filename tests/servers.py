"""Real servers for the door tests: `riskgrid serve` in a subprocess, and Debian's nginx with
deploy/nginx.conf in front of it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parent.parent
NGINX = Path("/usr/sbin/nginx")
MB = 1_000_000
STARTUP_S = 60.0  # importing the app and its libraries, per process, on a loaded 2-core box


def free_port() -> int:
    """Return a TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout_s: float, what: str) -> None:
    """Poll `check()` until it is true; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout_s} s")


def answers(port: int) -> bool:
    """Return whether something on `port` answers /health."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def listening(port: int) -> bool:
    """Return whether a connection to `port` is accepted."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def serve_env(database_url: str, **server: object) -> dict[str, str]:
    """Return the environment of a `riskgrid serve` on the test database."""
    env = {**os.environ, "DATABASE_URL": database_url, "RISKGRID_WARM_UP": "false"}
    env.update({f"RISKGRID_SERVER__{k.upper()}": str(v) for k, v in server.items()})
    return env


def start_serve(env: dict[str, str], port: int, *args: str) -> subprocess.Popen:
    """Start `riskgrid serve` on `port` in its own process group (its children are in it)."""
    command = [sys.executable, "-m", "riskgrid.cli", "serve", "--port", str(port), *args]
    return subprocess.Popen(
        command, env=env, cwd=ROOT, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def stop_group(proc: subprocess.Popen) -> None:
    """End the process group `proc` leads (a server and the processes it started)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@contextmanager
def serving(env: dict[str, str], *args: str) -> Iterator[int]:
    """Run `riskgrid serve` until the block ends; yield its port once /health answers."""
    port = free_port()
    proc = start_serve(env, port, *args)
    try:
        wait_until(lambda: answers(port) or proc.poll() is not None, STARTUP_S, "serve")
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "serve ended")
        yield port
    finally:
        stop_group(proc)


def exchange(
    port: int, data: bytes, wait_s: float = 15, source: str = "127.0.0.1", until_close=True
) -> dict:
    """Send `data` on a new connection and read until the server closes it (or `wait_s`);
    without `until_close`, only until the answer is whole (nginx keeps a refused upload's
    connection open for its lingering close: waiting for that cost 5 s a request)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), source_address=(source, 0)) as s:
        s.sendall(data)
        s.settimeout(wait_s)
        raw, closed = b"", False
        try:
            while chunk := s.recv(65536):
                raw += chunk
                if not until_close and _complete(raw):
                    break
            else:
                closed = True
        except TimeoutError:
            pass
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head else None
    detail = json.loads(body)["detail"] if body.startswith(b"{") else None
    return {"status": status, "detail": detail, "closed": closed, "s": time.monotonic() - start}


def _complete(raw: bytes) -> bool:
    """Whether `raw` holds a whole HTTP answer with a Content-Length."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:] if sep else ():
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def post(path: str, length: int, body: bytes = b"") -> bytes:
    """Return a POST head declaring `length` bytes of JSON, and `body`."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: riskgrid\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode() + body


def logged_client(db: Engine, username: str) -> str | None:
    """Return the client address the audit log recorded for `username`."""
    with db.connect() as conn:
        return conn.execute(
            text("SELECT host(client) FROM audit_log WHERE actor = :u"), {"u": username}
        ).scalar_one()


# The slow-client timeouts as shipped, and as the proxy tests run them: the same directives,
# shorter, so that a test of them waits 2 s rather than 10.
SHIPPED_TIMEOUT_S = 10
TEST_TIMEOUT_S = 2


def render_site(upstream: int, listen: str, static: Path) -> str:
    """Return deploy/nginx.conf with its three `# deploy:` values replaced and its slow-client
    timeouts shortened to TEST_TIMEOUT_S, nothing else."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    for old, new in (
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};"),
        ("listen 80;", f"listen {listen};"),
        ("alias /srv/riskgrid/web/static/;", f"alias {static}/;"),
        (
            f"client_header_timeout {SHIPPED_TIMEOUT_S}s;",
            f"client_header_timeout {TEST_TIMEOUT_S}s;",
        ),
        (f"client_body_timeout {SHIPPED_TIMEOUT_S}s;", f"client_body_timeout {TEST_TIMEOUT_S}s;"),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def main_conf(prefix: Path) -> str:
    """Return an nginx.conf like Debian's, everything under `prefix`, including the site."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
    sendfile on;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/access.log;
{temp}
    include {prefix}/riskgrid.conf;
}}
"""


@contextmanager
def nginx_in_front(upstream: int, prefix: Path) -> Iterator[int]:
    """Run Debian's nginx with deploy/nginx.conf before `upstream`; yield its port."""
    port = free_port()
    (prefix / "riskgrid.conf").write_text(
        render_site(upstream, f"127.0.0.1:{port}", ROOT / "web" / "static")
    )
    (prefix / "nginx.conf").write_text(main_conf(prefix))
    command = [str(NGINX), "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    subprocess.run([*command, "-t"], check=True, capture_output=True)
    proc = subprocess.Popen([*command, "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        wait_until(lambda: listening(port) or proc.poll() is not None, 10, "nginx")
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "nginx ended")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
