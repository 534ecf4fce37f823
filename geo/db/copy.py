"""COPY in and out of PostgreSQL, on the psycopg connection behind SQLAlchemy's.

The one place that opens a COPY: bulk loads (boundaries, risk layers, reports, households)
through `copy_rows` and `copy_frame`, exports through `copy_out`; all in the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection

if TYPE_CHECKING:
    import pandas as pd
    import psycopg


@contextmanager
def _copy(
    conn: Connection, sql: str, params: Mapping[str, Any] | None = None
) -> Iterator[psycopg.Copy]:
    """Open the COPY statement `sql` (driver-style `%(name)s` binds) on `conn`'s driver."""
    raw = cast("psycopg.Connection[Any] | None", conn.connection.driver_connection)
    assert raw is not None  # noqa: S101 - psycopg connection behind SQLAlchemy's
    with raw.cursor() as cur, cur.copy(sql, params) as copy:
        yield copy


def _copy_in(table: str, columns: Sequence[str], options: str = "") -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN{options}"


def copy_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    progress: Callable[[int], None] | None = None,
    every: int = 500,
) -> None:
    """COPY `rows` (values in `columns` order, None for NULL) into `table`.

    `progress` hears of every `every` rows, and of the rest at the end.
    """
    with _copy(conn, _copy_in(table, columns)) as copy:
        n = 0
        for n, row in enumerate(rows, 1):
            copy.write_row(row)
            if progress and n % every == 0:
                progress(every)
        if progress:
            progress(n % every)


def copy_frame(
    conn: Connection,
    table: str,
    frame: pd.DataFrame,
    columns: list[str],
    progress: Callable[[int], None] | None = None,
    chunk: int = 20_000,
) -> None:
    """COPY `frame[columns]` (a pandas DataFrame) into `table` as CSV; empty cells are NULL.

    CSV written by pandas (in C) is far faster than a Python call per row.
    """
    with _copy(conn, _copy_in(table, columns, " WITH (FORMAT csv)")) as copy:
        for start in range(0, len(frame), chunk):
            part = frame[columns].iloc[start : start + chunk]
            copy.write(part.to_csv(index=False, header=False))
            if progress:
                progress(len(part))


def copy_out(
    conn: Connection, sql: str, params: Mapping[str, Any] | None = None
) -> Iterator[bytes]:
    """Yield what `COPY (…) TO STDOUT` statement `sql` (driver-style binds) writes, by chunk."""
    with _copy(conn, sql, params) as copy:
        for chunk in copy:
            yield bytes(chunk)
