"""A worker process for statistics that hold the GIL.

esda's permutation loop is Python when numba is absent (and numba cost a 12 s compile per
process here): Gi* with 999 permutations holds the GIL for ~0.2 s. In a thread it stalls every
other thread of the request that waits for it; in a process it runs on the other core while the
request goes on querying PostGIS and rendering.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
_POOL: ProcessPoolExecutor | None = None
_LOCK = threading.Lock()
log = logging.getLogger("riskgrid.stats")


def _pool() -> ProcessPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            # spawn, not fork: the server process holds threads, locks and open connections.
            _POOL = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_watch_parent,
                initargs=(os.getpid(),),
            )
        return _POOL


def _watch_parent(parent: int) -> None:
    """Exit the worker once the server process is gone (killed, or stopped by a supervisor
    without running its exit handlers): an orphan would keep ~240 MB for nothing."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()


def _reset(broken: ProcessPoolExecutor) -> None:
    global _POOL
    with _LOCK:
        if _POOL is broken:
            _POOL = None
    broken.shutdown(wait=False, cancel_futures=True)


def submit(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    """Run `fn(*args)` in the worker process; return a function that waits for the result.

    A worker that died (killed, out of memory) is replaced, and the call made in this process
    instead, so a request never fails for it.
    """
    pool = None
    try:
        pool = _pool()
        future: Future[T] = pool.submit(fn, *args)
    except (BrokenProcessPool, RuntimeError, OSError):
        # OSError: no process could start (no /dev/shm for its locks, a process limit).
        log.warning("statistics worker unavailable; computing in this process", exc_info=True)
        if pool is not None:
            _reset(pool)
        return _inline(fn, *args)

    def wait() -> T:
        try:
            return future.result()
        except BrokenProcessPool:
            log.warning("statistics worker died; computing in this process instead")
            _reset(pool)
            return fn(*args)

    return wait


def _inline(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    result = fn(*args)
    return lambda: result


def _load_statistics() -> bool:
    import esda  # noqa: F401

    import geo.analytics.gistar  # noqa: F401

    return True


def warm_up() -> None:
    """Start the worker and import the statistics libraries in it (~2 s, once)."""
    submit(_load_statistics)()
