"""Campaigns (创安行动): themed drives over a date window."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text


def upsert_campaigns(conn: Connection, campaigns: Iterable[dict]) -> int:
    """Insert or update campaigns by code; return how many rows changed."""
    changed = 0
    for c in campaigns:
        result = conn.execute(
            text(
                """
                INSERT INTO campaigns (code, name, theme, starts_on, ends_on, description)
                VALUES (:code, :name, :theme, :starts_on, :ends_on, :description)
                ON CONFLICT (code) DO UPDATE SET
                  name = EXCLUDED.name, theme = EXCLUDED.theme, starts_on = EXCLUDED.starts_on,
                  ends_on = EXCLUDED.ends_on, description = EXCLUDED.description
                WHERE (campaigns.name, campaigns.theme, campaigns.starts_on, campaigns.ends_on,
                       campaigns.description)
                  IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.theme, EXCLUDED.starts_on,
                                    EXCLUDED.ends_on, EXCLUDED.description)
                """
            ),
            c,
        )
        changed += result.rowcount
    return changed


def list_campaigns(conn: Connection) -> list[dict]:
    """Return every campaign, oldest first."""
    rows = conn.execute(
        text(
            "SELECT code, name, theme, starts_on, ends_on, description FROM campaigns "
            "ORDER BY starts_on, code"
        )
    ).mappings()
    return [dict(r) for r in rows]
