"""Letters notify (geo.letters.notices): each move tells exactly whom it concerns (never the
actor, never another department or a desk that does not see the letter), one outbox event a
move with the allow-listed payload, the overdue sweep tells once a letter and nothing of a reply
on time, the notifications API and page list a letter's notification for its recipients only,
and migration 0011 removes and restores what it must."""

from __future__ import annotations

import io
import threading
import uuid

import orjson
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from api.app import create_app
from geo.db import migrate
from geo.errors import InvalidInput
from geo.identity import tokens
from geo.identity.principal import Principal
from geo.letters import attachments, moves, notices, numbering, store
from geo.photo_store import PhotoStore
from geo.reports import notify
from geo.reports.escalation import Sweeper
from geo.settings import LetterSettings, ReportSettings
from geo.vocabulary import NotificationKind
from tests.factories import at_once, login_as

K = NotificationKind
GAS = "燃气公司"
DISTRICT = "230602"
# Words of the letter and its reply that must never reach the webhook.
TEXTS = {
    "subject": "关于幸福小区燃气隐患的风险提示函",
    "opening": "开头-只在函内-OPENING",
    "recommendations": "建议-只在函内-RECOMMEND",
    "closing": "结尾-只在函内-CLOSING",
}
REPLY = "整改情况-只在函内-REPLY 已更换软管"


class People(dict):
    """Principals by name, and their tokens."""

    tokens: dict[str, str]


@pytest.fixture
def people(db) -> People:
    """A sender and four other dispatchers (same district, a wider pair, another district,
    city-wide), two users of the gas company and one disabled, another department's user, an
    admin and a worker."""
    found = People()
    found.tokens = {}
    for name, role, scope in (
        ("sender", "dispatcher", {"districts": (DISTRICT,)}),
        ("desk", "dispatcher", {"districts": (DISTRICT,)}),
        ("desk-wide", "dispatcher", {"districts": (DISTRICT, "230603")}),
        ("desk-other", "dispatcher", {"districts": ("230603",)}),
        ("city", "dispatcher", {}),
        ("gas-1", "department", {"department": GAS}),
        ("gas-2", "department", {"department": GAS}),
        ("gas-gone", "department", {"department": GAS}),
        ("power", "department", {"department": "供电公司"}),
        ("chief", "admin", {}),
        ("wgy", "worker", {"grids": ("230602001001001",)}),
    ):
        found.tokens[name] = login_as(db, role, username=name, **scope)
    with db.begin() as conn:
        for name, token in found.tokens.items():
            found[name] = tokens.authenticate(conn, token)
        conn.execute(text("UPDATE users SET disabled_at = now() WHERE username = 'gas-gone'"))
    return found


def draft(db, who: Principal, districts: tuple[str, ...] = (DISTRICT,)) -> uuid.UUID:
    scope = {"department": GAS, "districts": list(districts)}
    with db.begin() as conn:
        return store.insert(conn, who, scope, {}, TEXTS)


def png() -> attachments.Upload:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, "PNG")
    return attachments.Upload("现场照片.png", out.getvalue())


def told(db, kind: NotificationKind, letter_id: uuid.UUID) -> set[str]:
    """The usernames told `kind` of the letter."""
    with db.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT u.username FROM notifications n JOIN users u ON u.id = n.user_id "
                    "WHERE n.kind = :k AND n.letter_id = :l"
                ),
                {"k": str(kind), "l": letter_id},
            ).scalars()
        )


def events(db) -> list:
    with db.connect() as conn:
        return conn.execute(text("SELECT event_id, kind, payload FROM outbox ORDER BY id")).all()


def names(db, ids: list[int]) -> set[str]:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT username FROM users WHERE id = ANY(:i)"), {"i": ids})
        return set(rows.scalars())


def run_loop(db, settings, people, tmp_path) -> uuid.UUID:
    """Draft, issue, acknowledge, reply (with a photo) and close one letter."""
    lid = draft(db, people["sender"])
    moves.issue(db, lid, people["sender"], settings)
    moves.acknowledge(db, lid, people["gas-1"])
    rules = settings.model_copy(update={"letters": LetterSettings(folder=tmp_path)})
    moves.reply(db, PhotoStore(tmp_path), lid, people["gas-2"], REPLY, [png()], rules)
    moves.close(db, lid, people["desk"])
    return lid


def test_each_move_tells_exactly_whom_it_concerns(db, settings, people, tmp_path):
    lid = run_loop(db, settings, people, tmp_path)
    gas = {"gas-1", "gas-2"}  # not the disabled user, not the power company
    assert told(db, K.LETTER_ISSUED, lid) == gas
    assert told(db, K.LETTER_ACKNOWLEDGED, lid) == {"sender"}
    # The sender and the dispatchers who see the letter; not the replier, not the other
    # district's desk, not the admin.
    assert told(db, K.LETTER_REPLIED, lid) == {"sender", "desk", "desk-wide", "city"}
    assert told(db, K.LETTER_CLOSED, lid) == gas
    with db.connect() as conn:
        others = conn.execute(
            text(
                "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id "
                "WHERE u.username IN ('desk-other', 'power', 'gas-gone', 'chief', 'wgy')"
            )
        ).scalar_one()
        [data] = conn.execute(
            text("SELECT DISTINCT data FROM notifications WHERE kind = 'letter_replied'")
        ).scalars()
    assert others == 0
    assert data["on_time"] is True and data["subject"] == TEXTS["subject"]
    assert data["url"] == f"/api/v1/letters/{lid}" and REPLY not in orjson.dumps(data).decode()


def test_one_outbox_event_a_move_with_the_allow_listed_payload(db, settings, people, tmp_path):
    lid = run_loop(db, settings, people, tmp_path)
    with db.connect() as conn:
        row = conn.execute(text("SELECT year, number FROM letters WHERE id = :i"), {"i": lid}).one()
    sent = events(db)
    assert [e.kind for e in sent] == [
        "letter_issued",
        "letter_acknowledged",
        "letter_replied",
        "letter_closed",
    ]
    statuses = ["issued", "acknowledged", "replied", "closed"]
    for e, status in zip(sent, statuses, strict=True):
        p = e.payload
        assert set(p) == {"event_id", "kind", "occurred_at", "letter", "recipients"}
        assert p["event_id"] == str(e.event_id) and p["kind"] == e.kind
        assert set(p["letter"]) == {
            "id",
            "number",
            "department",
            "status",
            "reply_due",
            "issued_at",
        }
        assert p["letter"]["id"] == str(lid) and p["letter"]["status"] == status
        assert p["letter"]["number"] == numbering.rendered(row.year, row.number)
        assert p["letter"]["department"] == GAS and p["letter"]["reply_due"].endswith("Z")
        assert p["occurred_at"] >= p["letter"]["issued_at"]
        body = orjson.dumps(p).decode()
        for words in (*TEXTS.values(), REPLY, "现场照片"):
            assert words not in body
        with db.connect() as conn:
            users = conn.execute(
                text("SELECT user_id FROM notifications WHERE event_id = :e"), {"e": e.event_id}
            ).scalars()
            assert sorted(users) == p["recipients"]["users"]
    recipients = {e.kind: e.payload["recipients"] for e in sent}
    assert recipients["letter_issued"]["department"] == GAS
    assert recipients["letter_replied"]["districts"] == [DISTRICT]
    assert names(db, recipients["letter_acknowledged"]["users"]) == {"sender"}


def test_the_actor_is_not_told_of_their_own_move(db, settings, people):
    chief = people["chief"]  # an admin makes any move: here the sender and the department
    lid = draft(db, chief, districts=())
    moves.issue(db, lid, chief, settings)
    moves.acknowledge(db, lid, chief)
    assert told(db, K.LETTER_ISSUED, lid) == {"gas-1", "gas-2"}
    assert told(db, K.LETTER_ACKNOWLEDGED, lid) == set()
    [*_, ack] = events(db)
    assert ack.kind == "letter_acknowledged" and ack.payload["recipients"]["users"] == []


def test_a_city_wide_letter_reply_reaches_the_city_desk_only(db, settings, people, tmp_path):
    lid = draft(db, people["chief"], districts=())
    moves.issue(db, lid, people["chief"], settings)
    moves.acknowledge(db, lid, people["gas-1"])
    rules = settings.model_copy(update={"letters": LetterSettings(folder=tmp_path)})
    moves.reply(db, PhotoStore(tmp_path), lid, people["gas-1"], REPLY, [], rules)
    # The sender and the city-wide desk: a district's desk does not see a city-wide letter.
    assert told(db, K.LETTER_REPLIED, lid) == {"chief", "city"}


def test_a_move_rolled_back_tells_nobody(db, settings, people):
    lid = draft(db, people["sender"])
    moves.issue(db, lid, people["sender"], settings)
    with pytest.raises(RuntimeError), db.begin() as conn:
        notices.moved(conn, lid, moves.M.ACKNOWLEDGE, people["gas-1"])
        raise RuntimeError("the move failed after its event")
    assert told(db, K.LETTER_ACKNOWLEDGED, lid) == set()
    assert [e.kind for e in events(db)] == ["letter_issued"]


def _due(db, lid: uuid.UUID, reply_due: str, replied_at: str | None = None) -> None:
    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE letters SET reply_due = now() + CAST(:d AS interval), "
                "replied_at = COALESCE(now() + CAST(:r AS interval), replied_at) WHERE id = :i"
            ),
            {"d": reply_due, "r": replied_at, "i": lid},
        )


def _letters(db, settings, people, tmp_path) -> dict[str, uuid.UUID]:
    """Four issued letters: late and waiting, late and acknowledged, replied on time with its
    due time passed since, and not yet due."""
    sender, gas = people["sender"], people["gas-1"]
    ids = {k: draft(db, sender) for k in ("late", "late_acknowledged", "on_time", "not_due")}
    for lid in ids.values():
        moves.issue(db, lid, sender, settings)
    moves.acknowledge(db, ids["late_acknowledged"], gas)
    moves.acknowledge(db, ids["on_time"], gas)
    rules = settings.model_copy(update={"letters": LetterSettings(folder=tmp_path)})
    moves.reply(db, PhotoStore(tmp_path), ids["on_time"], gas, REPLY, [], rules)
    _due(db, ids["late"], "-1 hour")
    _due(db, ids["late_acknowledged"], "-1 day")
    _due(db, ids["on_time"], "-1 hour", replied_at="-2 hours")
    return ids


def _sweep(db) -> dict:
    with db.begin() as conn:
        return notices.sweep(conn)


def test_the_overdue_sweep_run_twice_tells_once(db, settings, people, tmp_path):
    ids = _letters(db, settings, people, tmp_path)
    assert _sweep(db) == {"letters_overdue": 2}
    assert _sweep(db) == {"letters_overdue": 0}
    for key in ("late", "late_acknowledged"):
        assert told(db, K.LETTER_OVERDUE, ids[key]) == {"gas-1", "gas-2", "sender"}
    assert told(db, K.LETTER_OVERDUE, ids["on_time"]) == set()
    assert told(db, K.LETTER_OVERDUE, ids["not_due"]) == set()
    overdue = [e for e in events(db) if e.kind == "letter_overdue"]
    assert sorted(e.payload["letter"]["id"] for e in overdue) == sorted(
        str(ids[k]) for k in ("late", "late_acknowledged")
    )
    # Each event's id is its letter's overdue key: what makes a second sweep add nothing.
    with db.connect() as conn:
        due = dict(conn.execute(text("SELECT id, reply_due FROM letters")).all())
    assert {e.event_id for e in overdue} == {
        notices.overdue_key(ids[k], due[ids[k]]) for k in ("late", "late_acknowledged")
    }


def test_two_sweeps_at_once_tell_each_letter_once(db, settings, people, tmp_path):
    _letters(db, settings, people, tmp_path)
    results = at_once(lambda _: _sweep(db), range(2))
    assert sum(r["letters_overdue"] for r in results) == 2
    assert [e.kind for e in events(db)].count("letter_overdue") == 2


def test_the_server_sweeps_letters_alongside_reports(db, settings, people):
    lid = draft(db, people["sender"])
    moves.issue(db, lid, people["sender"], settings)
    _due(db, lid, "-1 hour")
    fast = ReportSettings(sweep_overdue=True, overdue_check_s=0.05)
    with TestClient(create_app(settings.model_copy(update={"reports": fast}), engine=db)):
        for _ in range(100):
            if told(db, K.LETTER_OVERDUE, lid):
                break
            threading.Event().wait(0.05)
    assert told(db, K.LETTER_OVERDUE, lid) == {"gas-1", "gas-2", "sender"}


def test_a_failing_sweep_does_not_stop_the_next(db, settings, people):
    lid = draft(db, people["sender"])
    moves.issue(db, lid, people["sender"], settings)
    _due(db, lid, "-1 hour")

    def broken(conn) -> dict:
        raise RuntimeError("a sweep that fails")

    rules = ReportSettings(overdue_check_s=0.05)
    sweeper = Sweeper(db, rules, (("broken", broken), ("letter reply", notices.sweep))).start()
    try:
        for _ in range(100):
            if told(db, K.LETTER_OVERDUE, lid):
                break
            threading.Event().wait(0.05)
    finally:
        sweeper.stop()
    assert told(db, K.LETTER_OVERDUE, lid) == {"gas-1", "gas-2", "sender"}


def test_the_api_and_the_page_list_a_letter_notification_for_its_recipient_only(
    db, settings, people
):
    lid = draft(db, people["sender"])
    moves.issue(db, lid, people["sender"], settings)
    app = create_app(settings, engine=db)
    with TestClient(app) as c:
        gas = {"Authorization": f"Bearer {people.tokens['gas-1']}"}
        body = c.get("/api/v1/notifications", headers=gas).json()
        [n] = body["notifications"]
        assert n["kind"] == "letter_issued" and n["letter_id"] == str(lid)
        assert n["report_id"] is None and body["unread"] == 1
        assert c.get("/api/v1/notifications/count", headers=gas).json() == {"unread": 1}
        assert c.get(n["data"]["url"], headers=gas).json()["number"] == n["data"]["number"]
        page = c.get("/notifications", headers=gas).text
        assert f'href="/api/v1/letters/{lid}?format=html"' in page
        assert "风险提示函已印发" in page and n["data"]["number"] in page
        assert TEXTS["subject"] in page and 'class="badge"' in page
        english = c.get("/notifications?lang=en", headers=gas).text
        assert "Risk letter issued to your department" in english
        for name in ("power", "desk-other", "sender", "chief"):
            other = {"Authorization": f"Bearer {people.tokens[name]}"}
            assert c.get("/api/v1/notifications", headers=other).json()["notifications"] == []
            assert c.get("/api/v1/notifications/count", headers=other).json() == {"unread": 0}


def test_migration_0011_round_trip(db, settings, people):
    from alembic import command

    rid = uuid.uuid4()
    lid = draft(db, people["sender"])
    moves.issue(db, lid, people["sender"], settings)
    gas = people["gas-1"].user_id
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO reports (id, theme, category, severity, status, geom, source_crs, "
                "assignment_method, reported_at) VALUES (:id, 'gas', 'gas_leak', 2, 'reported', "
                "ST_SetSRID(ST_MakePoint(125, 46.6), 4326), 'wgs84', 'unassigned', now())"
            ),
            {"id": rid},
        )
    cfg = migrate.alembic_config()
    with db.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    with db.begin() as conn:
        kinds = list(conn.execute(text("SELECT kind FROM notifications")).scalars())
        assert kinds == [] and conn.execute(text("SELECT count(*) FROM outbox")).scalar() == 0
        sql = (
            "INSERT INTO notifications (user_id, kind, report_id, event_id) "
            "VALUES (:u, 'overdue', :r, gen_random_uuid())"
        )
        conn.execute(text(sql), {"u": gas, "r": rid})
        conn.execute(text(sql), {"u": gas, "r": None})  # about nothing: 0010 allowed it
    assert migrate.upgrade(db) == migrate.head()
    with db.connect() as conn:
        about = conn.execute(text("SELECT report_id FROM notifications")).scalars().all()
    assert about == [rid]  # the one about nothing is gone
    bad = (
        ("overdue", None, None),  # about nothing
        ("overdue", rid, lid),  # about both
        ("letter_issued", rid, None),  # a letter's kind naming a report
        ("overdue", None, lid),  # a report's kind naming a letter
        ("lunch", rid, None),
    )
    for kind, report, letter in bad:
        with pytest.raises(IntegrityError), db.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO notifications (user_id, kind, report_id, letter_id, event_id) "
                    "VALUES (:u, :k, :r, :l, gen_random_uuid())"
                ),
                {"u": gas, "k": kind, "r": report, "l": letter},
            )
    with db.begin() as conn:
        notices.tell(conn, K.LETTER_CLOSED, lid)
        conn.execute(text("DELETE FROM letters WHERE id = :i"), {"i": lid})
        left = conn.execute(text("SELECT count(*) FROM notifications WHERE letter_id IS NOT NULL"))
        assert left.scalar_one() == 0  # a letter's removal takes its notifications along


def test_a_kind_names_what_it_is_about(db, settings, people):
    lid = draft(db, people["sender"])
    moves.issue(db, lid, people["sender"], settings)
    with db.connect() as conn:
        now = conn.execute(text("SELECT now()")).scalar_one()
    subject = {"id": str(lid)}
    with pytest.raises(InvalidInput, match="not about a letter"), db.begin() as conn:
        notify.record(conn, K.OVERDUE, "letter", subject, [], {}, now)
    with pytest.raises(InvalidInput, match="not about a report"), db.begin() as conn:
        notify.record(conn, K.LETTER_CLOSED, "report", subject, [], {}, now)
    assert [e.kind for e in events(db)] == ["letter_issued"]
