"""The webhook: signed events out of the outbox to a local receiver (a process the test starts
and kills), retried with backoff, every attempt logged, given up after max_attempts."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text
from typer.testing import CliRunner

from api.app import create_app
from geo.reports import notify, webhook
from geo.settings import WebhookSettings
from geo.vocabulary import NotificationKind
from riskgrid.cli import app as cli
from tests.factories import login_as

SECRET = "s3cret-shared-with-the-gateway"  # noqa: S105 - a test receiver's key
# The receiver: logs every request as a JSON line, then answers as its mode says. `hang:N`
# answers 200 to N requests and holds the next one unanswered (to be killed with it);
# `fail_first` answers 500 to an event's first attempt; `fail` always 500; `ok` always 200.
RECEIVER = r"""
import base64, json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, log_path, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock, seen = threading.Lock(), []
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        event = self.headers.get("X-Riskgrid-Event")
        with lock:
            seen.append(event)
            n = len(seen)
            hang = mode.startswith("hang:") and n > int(mode[5:])
            fail = mode == "fail" or (mode == "fail_first" and seen.count(event) == 1)
            status = None if hang else (500 if fail else 200)
            line = {"event": event, "status": status, "body": base64.b64encode(body).decode(),
                    "headers": {k.lower(): v for k, v in self.headers.items()}}
            with open(log_path, "a") as f:
                f.write(json.dumps(line) + "\n")
        if hang:
            time.sleep(3600)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
print("ready", flush=True)
server.serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A receiver process on `port`, logging to `log`."""

    def __init__(self, port: int, log: Path, mode: str = "ok") -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RECEIVER, str(port), str(log), mode],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def seen(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def wait_for(self, n: int, timeout_s: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while len(self.seen()) < n:
            assert time.monotonic() < deadline, f"the receiver saw {len(self.seen())} of {n}"
            time.sleep(0.02)
        return self.seen()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def receivers(port):
    started: list[Receiver] = []

    def start(log: Path, mode: str = "ok") -> Receiver:
        r = Receiver(port, log, mode)
        started.append(r)
        return r

    yield start
    for r in started:
        if r.proc.poll() is None:
            r.kill()


def rules(port: int, **kw) -> WebhookSettings:
    values = {
        "url": f"http://127.0.0.1:{port}/hook?key=gateway-key",
        "secret": SECRET,
        "timeout_s": 5.0,
        "backoff_s": 60.0,  # nothing comes due again by itself during a test
        "max_backoff_s": 3600.0,
        "max_attempts": 5,
        **kw,
    }
    return WebhookSettings(**values)


def events(db, n: int) -> list[uuid.UUID]:
    """Emit `n` events about one report (a city-wide dispatcher is told); return their ids."""
    login_as(db, "dispatcher")
    rid = uuid.uuid4()
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO reports (id, theme, category, severity, status, geom, source_crs, "
                "assignment_method, reported_at, description, reporter) VALUES (:id, 'fire', "
                "'electrical', 2, 'reported', ST_SetSRID(ST_MakePoint(125, 46.6), 4326), "
                "'wgs84', 'unassigned', now(), '张三 13800138000', '李四')"
            ),
            {"id": rid},
        )
        return [
            notify.emit(conn, NotificationKind.OVERDUE, rid, district_dispatchers=True)
            for _ in range(n)
        ]


def outbox(db) -> dict[str, dict]:
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT event_id, attempts, delivered_at, gave_up_at, last_error, "
                "next_attempt_at FROM outbox"
            )
        ).mappings()
        return {str(r["event_id"]): dict(r) for r in rows}


def deliveries(db) -> list[dict]:
    with db.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT o.event_id, d.attempt, d.status_code, d.error, d.url, d.at, "
                    "o.next_attempt_at FROM webhook_deliveries d JOIN outbox o "
                    "ON o.id = d.outbox_id ORDER BY d.id"
                )
            ).mappings()
        ]


def make_due(db) -> None:
    with db.begin() as conn:
        conn.execute(text("UPDATE outbox SET next_attempt_at = now() WHERE delivered_at IS NULL"))


def test_signature_verifies_with_the_secret_and_the_event_id_is_sent(db, port, receivers, tmp_path):
    receiver = receivers(tmp_path / "log")
    [event] = events(db, 1)
    done = webhook.deliver_round(db, rules(port))
    assert (done.claimed, done.delivered) == (1, 1)
    [got] = receiver.seen()
    body, h = base64.b64decode(got["body"]), got["headers"]
    assert h["x-riskgrid-event"] == str(event) == json.loads(body)["event_id"]
    assert h["x-riskgrid-signature"].startswith("sha256=")
    assert h["x-riskgrid-attempt"] == "1" and h["content-type"] == "application/json"
    key = SECRET.encode()
    assert webhook.verify(key, h["x-riskgrid-timestamp"], body, h["x-riskgrid-signature"])
    assert not webhook.verify(
        b"another", h["x-riskgrid-timestamp"], body, h["x-riskgrid-signature"]
    )
    assert not webhook.verify(
        key, h["x-riskgrid-timestamp"], body + b" ", h["x-riskgrid-signature"]
    )
    # An old signature is a replay.
    later = int(h["x-riskgrid-timestamp"]) + 3600
    assert not webhook.verify(
        key, h["x-riskgrid-timestamp"], body, h["x-riskgrid-signature"], now=later
    )
    assert "张三" not in body.decode() and "13800138000" not in body.decode()
    # The delivery log names the receiver without the key in its query.
    [logged] = deliveries(db)
    assert logged["status_code"] == 200 and logged["url"] == f"http://127.0.0.1:{port}/hook"
    assert outbox(db)[str(event)]["delivered_at"] is not None


def test_a_500_is_retried_and_the_log_has_both_attempts(db, port, receivers, tmp_path):
    receiver = receivers(tmp_path / "log", "fail_first")
    [event] = events(db, 1)
    first = webhook.deliver_round(db, rules(port))
    assert (first.claimed, first.retried, first.delivered) == (1, 1, 0)
    row = outbox(db)[str(event)]
    assert row["delivered_at"] is None and row["last_error"].startswith("HTTP 500")
    # Not due before its backoff has passed.
    assert webhook.deliver_round(db, rules(port)).claimed == 0
    make_due(db)
    second = webhook.deliver_round(db, rules(port))
    assert (second.claimed, second.delivered) == (1, 1)
    assert [(d["attempt"], d["status_code"]) for d in deliveries(db)] == [(1, 500), (2, 200)]
    assert [s["headers"]["x-riskgrid-attempt"] for s in receiver.seen()] == ["1", "2"]
    row = outbox(db)[str(event)]
    assert row["attempts"] == 2 and row["delivered_at"] is not None and row["last_error"] is None


def test_a_receiver_killed_mid_way_loses_nothing_and_gets_nothing_twice(
    db, port, receivers, tmp_path
):
    ids = [str(e) for e in events(db, 5)]
    first = receivers(tmp_path / "first", "hang:2")
    result: list[webhook.Round] = []
    worker = threading.Thread(target=lambda: result.append(webhook.deliver_round(db, rules(port))))
    worker.start()
    # Two answered, the third read and held: kill the receiver with it.
    first.wait_for(3)
    first.kill()
    worker.join(30)
    assert not worker.is_alive()
    [done] = result
    assert (done.claimed, done.delivered, done.retried) == (5, 2, 3)
    state = outbox(db)
    delivered = {e for e, r in state.items() if r["delivered_at"] is not None}
    assert delivered == set(ids[:2])
    assert all(state[e]["attempts"] == 1 and state[e]["last_error"] for e in ids[2:])
    errors = [d["error"] for d in deliveries(db) if d["status_code"] is None]
    assert len(errors) == 3 and any("refused" in e.lower() for e in errors)
    # Back up later: what was not delivered is, once; what was is not sent again.
    second = receivers(tmp_path / "second", "ok")
    make_due(db)
    again = webhook.deliver_round(db, rules(port))
    assert (again.claimed, again.delivered) == (3, 3)
    assert all(r["delivered_at"] is not None for r in outbox(db).values())
    seen = first.seen() + second.seen()
    acknowledged = [s["event"] for s in seen if s["status"] == 200]
    assert sorted(acknowledged) == sorted(ids)  # every event taken exactly once
    assert [s["event"] for s in second.seen()] == ids[2:]  # none taken before is sent again
    # The one held when the receiver died came twice: the same id and body, so the
    # gateway can tell it is a repeat.
    held = [s for s in seen if s["event"] == ids[2]]
    assert len(held) == 2 and held[0]["body"] == held[1]["body"]


def test_backoff_grows_with_jitter_and_it_gives_up_after_max_attempts(db, port):
    # Nobody listens on `port`: every attempt is refused.
    [event] = events(db, 1)
    r = rules(port, backoff_s=10.0, max_backoff_s=1000.0, max_attempts=4)
    waits = []
    for _ in range(4):
        assert webhook.deliver_round(db, r).claimed == 1
        last = deliveries(db)[-1]  # the attempt just made, and when the event is due again
        waits.append((last["next_attempt_at"] - last["at"]).total_seconds())
        make_due(db)
    log, waits = deliveries(db), waits[:3]
    # Attempt n waits within [10·2^(n-1)/2, 10·2^(n-1)] seconds: never shorter than before.
    for n, wait in enumerate(waits, start=1):
        assert 10 * 2 ** (n - 1) / 2 <= wait <= 10 * 2 ** (n - 1)
    assert waits == sorted(waits)
    row = outbox(db)[str(event)]
    assert row["gave_up_at"] is not None and row["attempts"] == 4
    assert [d["attempt"] for d in log] == [1, 2, 3, 4]
    assert webhook.deliver_round(db, r).claimed == 0  # given up: never sent again


def test_retry_delay_is_capped_and_half_random():
    r = WebhookSettings(
        url="https://gw.example/hook", secret=SECRET, backoff_s=2.0, max_backoff_s=900.0
    )
    assert [webhook.retry_delay_s(n, r, lambda: 0.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert [webhook.retry_delay_s(n, r, lambda: 1.0) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert webhook.retry_delay_s(40, r, lambda: 1.0) == 900.0
    assert webhook.retry_delay_s(40, r, lambda: 0.0) == 450.0


def test_events_older_than_max_age_are_given_up_unsent(db, port, receivers, tmp_path):
    receiver = receivers(tmp_path / "log")
    old, new = events(db, 2)
    with db.begin() as conn:
        conn.execute(
            text("UPDATE outbox SET created_at = now() - interval '2 days' WHERE event_id = :e"),
            {"e": old},
        )
    done = webhook.deliver_round(db, rules(port))
    assert (done.expired, done.delivered) == (1, 1)
    assert [s["event"] for s in receiver.seen()] == [str(new)]
    assert "older than" in outbox(db)[str(old)]["last_error"]


def test_several_deliverers_share_the_work_without_sending_twice(db, port, receivers, tmp_path):
    receiver = receivers(tmp_path / "log")
    ids = {str(e) for e in events(db, 24)}
    rounds: list[webhook.Round] = []
    threads = [
        threading.Thread(target=lambda: rounds.append(webhook.deliver_round(db, rules(port))))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.delivered for r in rounds) == 24
    seen = [s["event"] for s in receiver.seen()]
    assert sorted(seen) == sorted(ids)  # each once


def test_the_server_delivers_in_the_background_when_a_url_is_set(
    db, settings, port, receivers, tmp_path
):
    receiver = receivers(tmp_path / "log")
    configured = settings.model_copy(update={"webhook": rules(port, poll_s=0.05)})
    with TestClient(create_app(configured, engine=db)):
        assert delivering()
        [event] = events(db, 1)
        [got] = receiver.wait_for(1)
    assert got["event"] == str(event)
    assert not delivering()  # stopped with the server
    # Without a url, no deliverer runs: the event waits in the outbox.
    with TestClient(create_app(settings, engine=db)):
        assert not delivering()
        [waiting] = events(db, 1)
    assert outbox(db)[str(waiting)]["delivered_at"] is None


def delivering() -> bool:
    return any(t.name == "riskgrid-webhook" and t.is_alive() for t in threading.enumerate())


def test_settings_refuse_a_url_without_secret_or_of_another_scheme():
    with pytest.raises(ValidationError, match=r"needs webhook\.secret"):
        WebhookSettings(url="https://gw.example/hook")
    with pytest.raises(ValidationError, match="http:// or https://"):
        WebhookSettings(url="file:///etc/passwd", secret=SECRET)
    assert WebhookSettings(url="", secret=None).url is None


def test_cli_deliver_once_and_status(cli_env, db, port, receivers, tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("RISKGRID_WEBHOOK__URL", f"http://127.0.0.1:{port}/hook")
    monkeypatch.setenv("RISKGRID_WEBHOOK__SECRET", SECRET)
    events(db, 2)
    refused = runner.invoke(cli, ["outbox", "deliver", "--once"])  # nobody listens yet
    assert refused.exit_code == 0, refused.output
    assert "2 sent: 0 delivered, 2 to retry" in refused.stdout
    status = runner.invoke(cli, ["outbox", "status"])
    assert status.exit_code == 0 and "pending 2 (due now 0" in status.stdout
    assert "attempt 1" in status.stdout and "no answer" in status.stdout
    receivers(tmp_path / "log")
    make_due(db)
    sent = runner.invoke(cli, ["outbox", "deliver", "--once"])
    assert "2 sent: 2 delivered" in sent.stdout
    as_json = json.loads(runner.invoke(cli, ["outbox", "status", "--json"]).stdout)
    assert (as_json["pending"], as_json["delivered"], as_json["gave_up"]) == (0, 2, 0)
    assert len(as_json["last_errors"]) == 2


def test_cli_deliver_without_a_url_says_what_to_set(cli_env, monkeypatch):
    monkeypatch.delenv("RISKGRID_WEBHOOK__URL", raising=False)
    r = CliRunner().invoke(cli, ["outbox", "deliver", "--once"])
    assert r.exit_code == 1 and "RISKGRID_WEBHOOK__URL" in r.output
