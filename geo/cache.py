"""Results computed once per (query, boundary version, data version), shared by every caller.

The data version moves with every write to reports (a sequence bumped by a trigger, so writers
never wait on each other); the boundary version with every boundary import. A request reads
the versions once (`versions`) and hands them down, so one map build asks once, not four times.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text


class LruCache:
    """A small thread-safe LRU for computed results."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.data: OrderedDict[tuple, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> Any:
        """Return the value stored under `key`, or None."""
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key: tuple, value: Any) -> None:
        """Store `value` under `key`, dropping the least recently used past the size."""
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


RESULTS = LruCache()


@dataclass(frozen=True)
class Versions:
    """What a cached result depends on: which database, which grids, which reports."""

    database: str
    boundary: int
    boundary_at: str
    data: int

    @property
    def boundary_key(self) -> tuple[str, int, str]:
        """Return what identifies the grids alone (for results that ignore reports)."""
        return (self.database, self.boundary, self.boundary_at)


def versions(conn: Connection) -> Versions:
    """Return the current versions (the boundary one identified by id and time, so a restored
    or emptied database never reuses another's cache)."""
    row = conn.execute(
        text(
            "SELECT current_database(), COALESCE(v.id, 0), COALESCE(v.imported_at::text, ''), "
            "(SELECT last_value FROM reports_data_version) "
            "FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT id, imported_at FROM boundary_versions "
            "WHERE layer = 'grids' ORDER BY id DESC LIMIT 1) v ON TRUE"
        )
    ).one()
    return Versions(str(row[0]), int(row[1]), str(row[2]), int(row[3]))


def cached(key: tuple, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """Return (result, was_cached) for `key`, computing and storing it when missing."""
    hit = RESULTS.get(key)
    if hit is not None:
        return hit, True
    value = compute()
    RESULTS.put(key, value)
    return value, False
