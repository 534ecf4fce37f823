"""Letter numbers: gap-free per year, never shared.

One counter row per year, raised by an upsert that takes the row's lock: a second issuer
waits on it until the first commits (then reads the raised value) or rolls back (then raises
the same value again), so numbers follow each other without a gap and never repeat. The
counter is raised in the issuing transaction; the letter's own row is locked first, always in
that order, so two issuers never wait on each other crosswise.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

_NEXT = text(
    "INSERT INTO letter_numbers (year, last) VALUES (:year, 1) "
    "ON CONFLICT (year) DO UPDATE SET last = letter_numbers.last + 1 RETURNING last"
)


def next_number(conn: Connection, year: int) -> int:
    """Return the year's next letter number, held by the caller's transaction."""
    return int(conn.execute(_NEXT, {"year": year}).scalar_one())


def rendered(year: int | None, number: int | None) -> str | None:
    """Return a letter's number as printed, 〔2026〕第3号; None for a draft."""
    if year is None or number is None:
        return None
    return f"〔{year}〕第{number}号"
