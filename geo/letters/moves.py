"""A letter's moves: issue (numbered, the reply's due time set, frozen), acknowledge, reply
(with attachments), close. Each runs in one transaction on the letter's locked row, checked
against the loop (409 naming the moves open, 403 for the wrong role) and audited."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, text

from geo.errors import InvalidInput
from geo.identity import audit
from geo.identity.principal import Principal
from geo.letters import attachments, notices, numbering, store
from geo.letters.status import LetterMove, check_move
from geo.photo_store import PhotoStore
from geo.reports.deadlines import calendar
from geo.settings import Settings

M = LetterMove


def _clock(conn: Connection) -> datetime:
    return conn.execute(text("SELECT clock_timestamp()")).scalar_one()


def issue(engine: Engine, letter_id: uuid.UUID, who: Principal, settings: Settings) -> dict:
    """Issue a draft: the year's next number (the year of its issue in the office's zone), the
    reply due `letters.reply_days` working days later; its texts are frozen from then on."""
    with engine.begin() as conn:
        row = store.get_row(conn, letter_id, who, lock=True)
        step = check_move(who, M.ISSUE, row["status"], row["department"])
        zone = ZoneInfo(settings.worktime.timezone)
        year = _clock(conn).astimezone(zone).year
        number = numbering.next_number(conn, year)
        # Read after the counter's lock: issue times follow the numbers.
        now = _clock(conn)
        due = calendar(settings.worktime).add_working_days(now, settings.letters.reply_days)
        conn.execute(
            text(
                "UPDATE letters SET status = :to, year = :year, number = :number, issued_at = "
                ":now, issued_by = :by, reply_due = :due, updated_at = :now WHERE id = :id"
            ),
            {
                "to": str(step.to),
                "year": year,
                "number": number,
                "now": now,
                "by": who.user_id,
                "due": due,
                "id": letter_id,
            },
        )
        shown = numbering.rendered(year, number)
        audit.record(
            conn, who, "letter.issue", "letter", letter_id, {"number": shown, "reply_due": due}
        )
        notices.moved(conn, letter_id, M.ISSUE, who)
        return store.get(conn, letter_id, who)


def _advance(
    conn: Connection,
    letter_id: uuid.UUID,
    who: Principal,
    move: LetterMove,
    stamp: str,
    reply_text: str | None = None,
) -> None:
    """Make `move` on the letter's locked row: its new status, and when and by whom in the
    `<stamp>_at` and `<stamp>_by` columns (with a reply, its text)."""
    row = store.get_row(conn, letter_id, who, lock=True)
    step = check_move(who, move, row["status"], row["department"])
    reply = ", reply = :reply" if reply_text is not None else ""
    conn.execute(
        text(
            f"UPDATE letters SET status = :to, {stamp}_at = now(), {stamp}_by = :by{reply}, "
            "updated_at = now() WHERE id = :id"
        ),
        {"to": str(step.to), "by": who.user_id, "reply": reply_text, "id": letter_id},
    )
    notices.moved(conn, letter_id, move, who)


def acknowledge(engine: Engine, letter_id: uuid.UUID, who: Principal) -> dict:
    """签收: the department says it has the letter."""
    with engine.begin() as conn:
        _advance(conn, letter_id, who, M.ACKNOWLEDGE, "acknowledged")
        audit.record(conn, who, "letter.acknowledge", "letter", letter_id)
        return store.get(conn, letter_id, who)


def reply(
    engine: Engine,
    files_store: PhotoStore,
    letter_id: uuid.UUID,
    who: Principal,
    reply_text: str,
    files: list[attachments.Upload],
    settings: Settings,
) -> dict:
    """The department's reply (整改情况) with its attachments; on time when by `reply_due`."""
    if not reply_text.strip():
        raise InvalidInput("text: say what was done about the letter (整改情况); it is empty")
    store.check_lines("text", reply_text)
    checked = attachments.check(files, settings.letters, settings.photos.max_pixels)
    with engine.begin() as conn:
        _advance(conn, letter_id, who, M.REPLY, "replied", reply_text)
        kept = attachments.save(conn, files_store, letter_id, checked, who)
        audit.record(conn, who, "letter.reply", "letter", letter_id, {"attachments": kept})
        return store.get(conn, letter_id, who)


def close(engine: Engine, letter_id: uuid.UUID, who: Principal) -> dict:
    """办结: the sender takes the reply as the end of the matter."""
    with engine.begin() as conn:
        _advance(conn, letter_id, who, M.CLOSE, "closed")
        audit.record(conn, who, "letter.close", "letter", letter_id)
        return store.get(conn, letter_id, who)
