"""Letters as stored: drafted (audited), read within the reader's rights, listed, edited while
a draft. An edit records the fields it changed ([before, after])."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text

from geo.errors import InvalidInput, NotFound
from geo.identity import audit
from geo.identity.principal import Principal
from geo.letters import rights
from geo.letters.numbering import rendered
from geo.letters.status import WAITING, check_editable, moves_from
from geo.vocabulary import sql_list

EDITABLE = ("subject", "opening", "recommendations", "closing")
# Waiting for a reply past its due time.
OVERDUE = f"(l.status IN {sql_list(WAITING)} AND l.reply_due < now())"
# What the content holds that an answer shows (the map is drawn in the HTML and PDF only).
SHOWN = (
    "period",
    "remit",
    "figures",
    "by_category",
    "hotspots",
    "trend",
    "open_reports",
    "drafted_at",
)
_SELECT = f"""
SELECT l.id, l.status, l.department, l.districts, l.scope, l.content, l.subject, l.opening,
       l.recommendations, l.closing, l.year, l.number, l.created_at, l.updated_at,
       l.issued_at, l.reply_due, l.acknowledged_at, l.replied_at, l.reply, l.closed_at,
       uc.username AS created_by, ui.username AS issued_by, ua.username AS acknowledged_by,
       ur.username AS replied_by, ux.username AS closed_by, {OVERDUE} AS overdue,
       (l.replied_at <= l.reply_due) AS replied_on_time
FROM letters l
LEFT JOIN users uc ON uc.id = l.created_by LEFT JOIN users ui ON ui.id = l.issued_by
LEFT JOIN users ua ON ua.id = l.acknowledged_by LEFT JOIN users ur ON ur.id = l.replied_by
LEFT JOIN users ux ON ux.id = l.closed_by
"""
_ATTACHMENTS = text(
    "SELECT a.id, a.filename, a.content_type, a.bytes, a.created_at, u.username AS uploaded_by "
    "FROM letter_attachments a LEFT JOIN users u ON u.id = a.uploaded_by "
    "WHERE a.letter_id = :id ORDER BY a.created_at, a.filename"
)
URL = "/api/v1/letters/{id}"
# Each line of a text is a paragraph of the HTML and the PDF: 6,666 lines of recommendations
# took WeasyPrint 5 s per PDF read. A letter's part has a few paragraphs; 200 is plenty.
MAX_LINES = 200


def check_lines(name: str, value: str) -> None:
    """Raise InvalidInput when a letter's text has more than MAX_LINES lines."""
    lines = len(value.splitlines())  # as the template splits them (U+2028 too)
    if lines > MAX_LINES:
        raise InvalidInput(
            f"{name} has {lines:,} lines; a letter's text has at most {MAX_LINES} (each line is "
            "a paragraph): join the lines of one point"
        )


def get_row(conn: Connection, letter_id: uuid.UUID, who: Principal, lock: bool = False) -> dict:
    """Return a letter's row as `who` may see it; NotFound otherwise. `lock`: FOR UPDATE."""
    seen, params = rights.visible(who)
    row = (
        conn.execute(
            text(f"{_SELECT} WHERE l.id = :id AND {seen} {'FOR UPDATE OF l' if lock else ''}"),
            {**params, "id": letter_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no letter {letter_id} among the letters you may see")
    return dict(row)


def summary(row: dict) -> dict:
    """Return a letter as listed: number, addressee, subject, status and its times."""
    return {
        "id": str(row["id"]),
        "number": rendered(row["year"], row["number"]),
        "year": row["year"],
        "sequence": row["number"],
        "department": row["department"],
        "subject": row["subject"],
        "status": row["status"],
        "scope": row["scope"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "issued_at": row["issued_at"],
        "reply_due": row["reply_due"],
        "overdue": bool(row["overdue"]),
        "acknowledged_at": row["acknowledged_at"],
        "replied_at": row["replied_at"],
        "replied_on_time": row["replied_on_time"],
        "closed_at": row["closed_at"],
        "url": URL.format(id=row["id"]),
    }


def answer(conn: Connection, row: dict, with_map: bool = False) -> dict:
    """Return a letter whole: its summary, texts, the analysis it cites, who moved it, the
    reply and its attachments, and the moves open now (`with_map`: the map's data too)."""
    content = row["content"]
    attachments = [
        {**dict(a), "id": str(a.id), "url": f"{URL.format(id=row['id'])}/attachments/{a.id}"}
        for a in conn.execute(_ATTACHMENTS, {"id": row["id"]}).mappings()
    ]
    return {
        **summary(row),
        **{k: row[k] for k in EDITABLE},
        **{k: content.get(k) for k in SHOWN},
        "sender": content.get("sender"),
        "issued_by": row["issued_by"],
        "acknowledged_by": row["acknowledged_by"],
        "replied_by": row["replied_by"],
        "reply": row["reply"],
        "attachments": attachments,
        "closed_by": row["closed_by"],
        "updated_at": row["updated_at"],
        "moves": moves_from(row["status"]),
        **({"map": content.get("map")} if with_map else {}),
    }


def get(conn: Connection, letter_id: uuid.UUID, who: Principal, with_map: bool = False) -> dict:
    """Return a letter whole, as `who` may see it."""
    return answer(conn, get_row(conn, letter_id, who), with_map)


def insert(conn: Connection, who: Principal, scope: dict, content: dict, texts: dict) -> uuid.UUID:
    """Store a new draft (audited `letter.draft`) and return its id."""
    letter_id = uuid.uuid4()
    conn.execute(
        text(
            "INSERT INTO letters (id, department, districts, scope, content, subject, opening, "
            "recommendations, closing, created_by) VALUES (:id, :department, :districts, "
            "CAST(:scope AS jsonb), CAST(:content AS jsonb), :subject, :opening, "
            ":recommendations, :closing, :by)"
        ),
        {
            "id": letter_id,
            "department": scope["department"],
            "districts": scope["districts"],
            "scope": orjson.dumps(scope).decode(),
            "content": orjson.dumps(content).decode(),
            **{k: texts[k] for k in EDITABLE},
            "by": who.user_id,
        },
    )
    audit.record(conn, who, "letter.draft", "letter", letter_id, {"scope": scope})
    return letter_id


def edit(engine: Engine, letter_id: uuid.UUID, who: Principal, fields: dict[str, Any]) -> dict:
    """Change a draft's texts (subject, opening, recommendations, closing); Conflict once
    issued. Audited `letter.edit` with each changed field's [before, after]."""
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"{', '.join(unknown)}: not editable; a draft edits {EDITABLE}")
    for name, value in fields.items():
        if value is not None:
            check_lines(name, value)
    with engine.begin() as conn:
        row = get_row(conn, letter_id, who, lock=True)
        check_editable(who, row["status"], row["department"])
        changed = {k: [row[k], v] for k, v in fields.items() if v is not None and row[k] != v}
        if changed:
            sets = ", ".join(f"{k} = :{k}" for k in changed)
            conn.execute(
                text(f"UPDATE letters SET {sets}, updated_at = now() WHERE id = :id"),
                {"id": letter_id, **{k: v[1] for k, v in changed.items()}},
            )
            audit.record(conn, who, "letter.edit", "letter", letter_id, changed)
        return get(conn, letter_id, who)


def listing(
    conn: Connection,
    who: Principal,
    status: str | None,
    department: str | None,
    overdue: bool | None,
    limit: int,
    offset: int,
) -> dict:
    """Return the letters `who` sees, newest first, filtered, with the number matched."""
    seen, params = rights.visible(who)
    c = [seen]
    if status is not None:
        c.append("l.status = :status")
        params["status"] = status
    if department is not None:
        c.append("l.department = :department")
        params["department"] = department
    if overdue is not None:
        c.append(OVERDUE if overdue else f"NOT {OVERDUE}")
    where = " AND ".join(c)
    total = conn.execute(text(f"SELECT count(*) FROM letters l WHERE {where}"), params)
    matched = int(total.scalar_one())
    rows = conn.execute(
        text(
            f"{_SELECT} WHERE {where} ORDER BY COALESCE(l.issued_at, l.created_at) DESC, l.id "
            "LIMIT :limit OFFSET :offset"
        ),
        {**params, "limit": limit, "offset": offset},
    ).mappings()
    return {"letters": [summary(dict(r)) for r in rows], "matched": matched}
