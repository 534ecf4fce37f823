"""Log lines: one per event, JSON lines with the request id, an unexpected error written once,
and no bound parameter, password or token in a line above DEBUG."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from sqlalchemy import text

from api.app import create_app
from geo.identity.principal import SYSTEM
from geo.identity.users import NewUser, add_user
from geo.settings import LogSettings, Settings
from geo.vocabulary import Role
from riskgrid import logs

PASSWORD = "riverbank-flood-2026"  # noqa: S105 - a test user's
# What a reporter might type: a name and a phone number, sent as a bound parameter.
DESCRIPTION = "Zhang Wei 13800138000: water in the basement"
NAMES = ("riskgrid", "uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put back the loggers a dictConfig touched, for the tests that run after these."""
    loggers = [logging.getLogger(), *map(logging.getLogger, NAMES)]
    saved = [(lg, lg.level, lg.handlers[:], lg.filters[:], lg.propagate) for lg in loggers]
    yield
    for lg, level, handlers, filters, propagate in saved:
        lg.setLevel(level)
        lg.handlers[:], lg.filters[:], lg.propagate = handlers, filters, propagate


def with_log(settings: Settings, fmt: str = "json", level: str = "INFO") -> Settings:
    return settings.model_copy(update={"log": LogSettings(format=fmt, level=level)})


def failing_app(settings: Settings, db) -> FastAPI:
    """The app with one more route that logs a warning, then runs SQL that fails."""
    app = create_app(settings, engine=db)

    @app.post("/test/fail")
    def fail(body: dict, request: Request) -> None:
        logging.getLogger("riskgrid.test").warning("about to fail")
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT CAST(:d AS integer)"), {"d": body["description"]})

    return app


@contextmanager
def served(app: FastAPI, settings: Settings) -> Iterator[tuple[httpx.Client, io.StringIO]]:
    """Serve `app` with uvicorn under riskgrid's log config; yield a client and the log lines."""
    stream = io.StringIO()
    config = logs.uvicorn_log_config(settings)
    config["handlers"]["default"]["stream"] = stream
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=config, access_log=True))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30  # a guard against a hang, not a measurement
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as client:
            yield client, stream
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def lines(stream: io.StringIO) -> list[dict]:
    """Every line written, parsed: each must be one JSON object."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def above_debug(entries: list[dict]) -> str:
    return "\n".join(json.dumps(e, ensure_ascii=False) for e in entries if e["level"] != "DEBUG")


def test_unexpected_error_is_one_json_line_with_the_request_id_and_no_parameters(db, settings):
    settings = with_log(settings)
    with served(failing_app(settings, db), settings) as (client, stream):
        r = client.post(
            "/test/fail?q=Zhang+Wei",
            json={"description": DESCRIPTION},
            headers={"X-Request-ID": "phone-13.5"},
        )
    assert r.status_code == 500 and r.json() == {"detail": "internal error"}
    assert r.headers["x-request-id"] == "phone-13.5"
    entries = lines(stream)
    errors = [e for e in entries if e["level"] == "ERROR"]
    assert len(errors) == 1, errors  # not again by uvicorn ("Exception in ASGI application")
    (error,) = errors
    assert error["logger"] == "riskgrid.api" and error["request_id"] == "phone-13.5"
    assert error["exc_type"] == "sqlalchemy.exc.DataError"
    assert error["exc_info"].startswith("Traceback (most recent call last):")
    assert "psycopg.errors.InvalidTextRepresentation: SQLSTATE 22P02" in error["exc_info"]
    assert "in fail" in error["exc_info"]  # the failing route's frame is there
    # The warning from the request's thread and the access line carry the id too.
    by_logger = {e["logger"]: e for e in entries}
    assert by_logger["riskgrid.test"]["request_id"] == "phone-13.5"
    access = by_logger["uvicorn.access"]
    assert access["request_id"] == "phone-13.5" and "/test/fail" in access["message"]
    written = above_debug(entries)
    assert "Zhang" not in written and "13800138000" not in written
    assert "[parameters:" not in written and "[SQL:" not in written


def test_failed_and_good_logins_write_no_password_or_token(db, settings):
    with db.begin() as conn:
        add_user(conn, SYSTEM, NewUser("wang", Role.PLANNER, password=PASSWORD), (), 10)
    settings = with_log(settings)
    wrong = PASSWORD + "-wrong"
    with served(create_app(settings, engine=db), settings) as (client, stream):
        sent = [("wang", wrong, "login-1"), ("wang", PASSWORD, "login-2")]
        answers = [
            client.post(
                "/api/v1/auth/token",
                data={"username": user, "password": password},
                headers={"X-Request-ID": rid},
            )
            for user, password, rid in sent
        ]
        assert [a.status_code for a in answers] == [401, 200]
        token = answers[1].json()["access_token"]
        forged = token[:-4] + "abcd"
        me = client.get(
            "/api/v1/auth/me",
            headers={"Authorization": f"Bearer {forged}", "X-Request-ID": "me-3"},
        )
        assert me.status_code == 401
    entries = lines(stream)
    access = [e["request_id"] for e in entries if e["logger"] == "uvicorn.access"]
    assert access == ["login-1", "login-2", "me-3"]  # the capture saw these requests
    written = above_debug(entries)
    for secret in (PASSWORD, wrong, token, forged):
        assert secret not in written


def database_error(db) -> BaseException:
    try:
        with db.connect() as conn:
            conn.execute(text("SELECT CAST(:d AS integer)"), {"d": DESCRIPTION})
    except Exception as exc:
        return exc
    raise AssertionError("the cast did not fail")


def record(level: int, msg: str, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc else None
    rec = logging.LogRecord("riskgrid.api", level, __file__, 1, msg, (), info)
    rec.request_id = "desk-4"
    return rec


@pytest.mark.parametrize("formatter", [logs.TextFormatter(), logs.JsonFormatter()])
def test_a_traceback_and_line_breaks_stay_on_one_line(db, formatter):
    exc = database_error(db)
    # str.splitlines() breaks at each of these: a forged second line must not appear.
    msg = "first\nsecond\r\u2028third\x85 fourth"
    out = formatter.format(record(logging.ERROR, msg, exc))
    assert len(out.splitlines()) == 1
    assert "desk-4" in out and "InvalidTextRepresentation" in out
    assert "Zhang" not in out and "13800138000" not in out


def test_debug_lines_keep_the_database_message(db):
    exc = database_error(db)
    entry = json.loads(logs.JsonFormatter().format(record(logging.DEBUG, "detail", exc)))
    # What the ERROR line withholds is really in the exception (PostgreSQL's message quotes
    # the value even with the engine's hide_parameters): its absence above is the filter.
    assert DESCRIPTION in entry["exc_info"] and "[parameters:" not in entry["exc_info"]
    assert entry["time"].endswith("Z") and entry["request_id"] == "desk-4"


def test_cli_configure_writes_json_to_stderr_and_keeps_sqlalchemy_quiet(settings, capsys):
    logs.configure(with_log(settings, level="DEBUG"))
    logging.getLogger("riskgrid.cli").info("imported %d rows", 12)
    (entry,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert entry["message"] == "imported 12 rows" and entry["request_id"] is None
    assert entry["level"] == "INFO" and entry["logger"] == "riskgrid.cli"
    # sqlalchemy's INFO lines are each statement and its parameters.
    assert not logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.INFO)
    assert logging.getLogger("riskgrid.geo").isEnabledFor(logging.DEBUG)
