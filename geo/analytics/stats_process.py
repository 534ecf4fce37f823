"""A worker process for statistics that hold the GIL, with a time budget per computation.

esda's permutation loop is Python when numba is absent (and numba cost a 12 s compile per
process here): Gi* with 999 permutations holds the GIL for ~0.2 s. In a thread it stalls every
other thread of the request that waits for it; in a process it runs on the other core while the
request goes on querying PostGIS and rendering.

A computation past its budget is stopped by killing the process (pebble replaces it) and the
request answers 503: a Gi* over a 50 km band with 9,999 permutations once ran in a request for
8 s until the server's supervisor killed the whole server process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from geo.errors import OverBudget

T = TypeVar("T")
_POOL: ProcessPool | None = None
_LOCK = threading.Lock()
_BUDGET_S = 10.0
log = logging.getLogger("riskgrid.stats")


def set_budget(seconds: float) -> None:
    """Set the longest a computation may take in this process (settings.server)."""
    global _BUDGET_S
    _BUDGET_S = seconds


def _pool() -> ProcessPool:
    global _POOL
    with _LOCK:
        if _POOL is None or not _POOL.active:
            # spawn, not fork: the server process holds threads, locks and open connections.
            _POOL = ProcessPool(
                1,
                initializer=_start,
                initargs=(os.getpid(),),
                context=multiprocessing.get_context("spawn"),
            )
        return _POOL


def _fresh_pool(exc: Exception) -> ProcessPool:
    global _POOL
    with _LOCK:
        if isinstance(exc, BrokenProcessPool) and _POOL is not None:
            _POOL.stop()
            _POOL = None
    return _pool()


def _start(parent: int) -> None:
    """Start a worker: watch the server process, and load the statistics libraries (~2 s) now
    rather than in the first computation's budget."""

    def watch() -> None:
        # An orphan would keep ~240 MB for nothing once its server is killed.
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()
    try:
        import esda  # noqa: F401
    except ImportError:  # pragma: no cover - a dependency; the first Gi* says it clearly
        pass


def submit(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    """Run `fn(*args)` in the worker process; return a function that waits for the result.

    The wait raises OverBudget past the budget (the worker is killed and replaced). A worker
    that died (killed, out of memory) is replaced and the computation tried once more there.
    Where no process can start at all, the computation runs in this process.
    """
    budget = _BUDGET_S
    try:
        future = _pool().schedule(fn, args, timeout=budget)
    except (RuntimeError, OSError):
        # OSError: no process could start (no /dev/shm for its locks, a process limit).
        log.warning("statistics worker unavailable; computing in this process", exc_info=True)
        result = fn(*args)
        return lambda: result
    # The worker stops a computation `budget` seconds after it starts; the request waits up
    # to twice that, for one queued ahead of it or a replacement worker's start (~2 s).
    deadline = time.monotonic() + 2 * budget

    def wait() -> T:
        nonlocal future
        for attempt in (1, 2):
            left = deadline - time.monotonic()
            try:
                # Bounded here too: a computation queued behind another counts its wait.
                return future.result(timeout=max(left, 0.01))
            except (FutureTimeout, TimeoutError):
                future.cancel()
                raise OverBudget(
                    f"the computation took longer than its budget of {budget:g} s; narrow "
                    "the query (a shorter period, one theme, fewer permutations or a smaller "
                    "distance band)"
                ) from None
            except (ProcessExpired, BrokenProcessPool) as exc:
                # pebble answers BrokenProcessPool, and gives up the pool, when an idle worker
                # died with a task queued and not yet handed to it.
                if attempt == 2:
                    raise
                log.warning("statistics worker died; trying once more in a new one")
                future = _fresh_pool(exc).schedule(fn, args, timeout=budget)
        raise AssertionError("unreachable")  # pragma: no cover

    return wait


def warm_up() -> None:
    """Start the worker, which loads the statistics libraries (~2 s, once)."""
    submit(os.getpid)()
