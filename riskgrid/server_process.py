"""uvicorn's configuration and supervisor for `riskgrid serve`, with server processes that end
with their supervisor.

With several processes, uvicorn's supervisor binds the socket and its spawned children inherit
it; killed with SIGKILL, the supervisor left them serving the port, and the next serve failed
with "address already in use". Each child now asks Linux for SIGTERM when its parent dies
(PR_SET_PDEATHSIG), which uvicorn takes as a graceful stop: it stops listening at once and
finishes the requests under way.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys

from uvicorn import Config, Server
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from geo.settings import ServerSettings

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class ServeConfig(Config):
    """uvicorn's Config with the door's limits (read by BoundedHttpProtocol) and a server
    process that ends with its supervisor."""

    def __init__(self, *args: object, door: ServerSettings, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.door = door

    def load(self) -> None:
        # Runs in each server process before it serves (the supervisor never loads).
        die_with_parent()
        super().load()


def die_with_parent() -> None:
    """In a process spawned by a supervisor, have Linux send SIGTERM when the supervisor dies."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return  # the only server process (`--workers 1`), or no prctl
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent.pid:  # the supervisor died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def run(config: ServeConfig) -> None:
    """Serve with `config` as `uvicorn.run` does: one process, or a supervisor and children."""
    server = Server(config=config)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    config.load_app()  # fails here, clearly, before the socket is bound
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        sys.exit(STARTUP_FAILURE)
