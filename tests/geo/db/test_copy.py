"""The COPY helpers behind every bulk load and the CSV export, on real PostGIS."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

from geo.db.copy import copy_frame, copy_out, copy_rows


def _stage(conn) -> None:
    conn.execute(text("CREATE TEMP TABLE stage_t (code text, n integer, wkb bytea) ON COMMIT DROP"))


def test_copy_rows_loads_tuples_nulls_and_bytes_and_reports_progress(db):
    heard: list[int] = []
    rows = [(f"c{i}", i if i % 3 else None, bytes([i])) for i in range(1, 8)]
    with db.begin() as conn:
        _stage(conn)
        copy_rows(conn, "stage_t", ["code", "n", "wkb"], iter(rows), heard.append, every=3)
        stored = conn.execute(text("SELECT code, n, wkb FROM stage_t ORDER BY code")).all()
    assert [(r.code, r.n, bytes(r.wkb)) for r in stored] == rows
    assert heard == [3, 3, 1]


def test_copy_frame_loads_chunks_with_empty_cells_as_null(db):
    heard: list[int] = []
    frame = pd.DataFrame({"code": ["a", "b", "c", None, "e"], "n": [1, 2, None, 4, 5]})
    frame["n"] = frame["n"].astype("Int64")
    with db.begin() as conn:
        _stage(conn)
        copy_frame(conn, "stage_t", frame, ["code", "n"], heard.append, chunk=2)
        stored = conn.execute(text("SELECT code, n FROM stage_t ORDER BY n NULLS LAST")).all()
    assert [tuple(r) for r in stored] == [("a", 1), ("b", 2), (None, 4), ("e", 5), ("c", None)]
    assert heard == [2, 2, 1]


def test_copy_out_yields_what_copy_to_stdout_writes(db):
    with db.connect() as conn:
        sql = "COPY (SELECT n, n * %(k)s AS m FROM generate_series(1, 3) n) TO STDOUT (FORMAT csv)"
        out = b"".join(copy_out(conn, sql, {"k": 10}))
    assert out.decode().splitlines() == ["1,10", "2,20", "3,30"]
