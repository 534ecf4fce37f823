"""Log lines: one line per event, plain text or JSON lines (`RISKGRID_LOG__FORMAT=json`), each
with the request id being served. Above DEBUG no line carries a database error's message: the
SQL, its bound parameters and the values PostgreSQL quotes ("Key (username)=(li.wei)")."""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import traceback
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from api import request_id

if TYPE_CHECKING:
    import psycopg

    from geo.settings import Settings

# Set on an exception once a line has carried it: Starlette re-raises an exception after its
# handler logged it, and uvicorn would write the same traceback again.
_WRITTEN = "_riskgrid_log_written"
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
# Everything str.splitlines() breaks at, so a text line stays one line for any reader.
_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_ONE_LINE = {ord(c): json.dumps(c)[1:-1] for c in _BREAKS}
_JSON_BREAKS = {ord(c): json.dumps(c)[1:-1] for c in "\x85\u2028\u2029"}


def _name(cls: type) -> str:
    module = "" if cls.__module__ == "builtins" else f"{cls.__module__}."
    return module + cls.__qualname__


def _driver_summary(exc: psycopg.Error) -> str:
    # The SQLSTATE and the schema names PostgreSQL reports; never its message.
    diag = exc.diag
    named = [
        ("constraint", diag.constraint_name),
        ("table", diag.table_name),
        ("column", diag.column_name),
    ]
    parts = [f"SQLSTATE {exc.sqlstate or '?'}"] + [f"{k} {v}" for k, v in named if v]
    return ", ".join(parts) + "; message withheld"


def _summary(exc: BaseException, full: bool) -> str:
    # Imported here: the CLI configures logging before it knows it needs a database (0.5 s).
    import psycopg
    from sqlalchemy.exc import StatementError

    name = _name(type(exc))
    if not full and isinstance(exc, StatementError):
        orig = exc.orig
        why = _driver_summary(orig) if isinstance(orig, psycopg.Error) else "message withheld"
        return f"{name}: {_name(type(orig))}: {why}; statement and parameters withheld\n"
    if not full and isinstance(exc, psycopg.Error):
        return f"{name}: {_driver_summary(exc)}\n"
    return "".join(traceback.format_exception_only(type(exc), exc))


def _block(exc: BaseException, full: bool) -> str:
    frames = traceback.format_tb(exc.__traceback__)
    head = "Traceback (most recent call last):\n" if frames else ""
    text = head + "".join(frames) + _summary(exc, full)
    if isinstance(exc, BaseExceptionGroup):
        for i, sub in enumerate(exc.exceptions, 1):
            text += f"+-- {i} --\n" + render_exception(sub, full=full) + "\n"
    return text


def render_exception(exc: BaseException, *, full: bool = False) -> str:
    """Return `exc`'s traceback with its causes, as Python prints it, but with database
    messages withheld unless `full`."""
    blocks: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        blocks.append(_block(current, full))
        if current.__cause__ is not None:
            blocks.append(_CAUSE)
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            blocks.append(_CONTEXT)
            current = current.__context__
        else:
            current = None
    return "".join(reversed(blocks)).rstrip("\n")


def _time(record: logging.LogRecord) -> str:
    at = datetime.fromtimestamp(record.created, UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _exception(record: logging.LogRecord) -> BaseException | None:
    return record.exc_info[1] if record.exc_info else None


class _Formatter(logging.Formatter):
    # uvicorn sets `use_colors` on the formatters named "default" and "access" when it is given.
    def __init__(self, use_colors: bool | None = None) -> None:
        super().__init__()

    @staticmethod
    def exception_text(record: logging.LogRecord) -> str | None:
        """Return the record's traceback, database messages withheld above DEBUG."""
        exc = _exception(record)
        if exc is None:
            return None
        return render_exception(exc, full=record.levelno <= logging.DEBUG)


class JsonFormatter(_Formatter):
    """One JSON object a line: time, level, logger, message, request_id, exc_type, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON."""
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        exc = _exception(record)
        if exc is not None:
            line["exc_type"] = _name(type(exc))
            line["exc_info"] = self.exception_text(record)
        if record.stack_info:
            line["stack_info"] = record.stack_info
        # json.dumps escapes \n but not U+2028, U+2029 or NEL, at which some readers break lines.
        return json.dumps(line, ensure_ascii=False, default=str).translate(_JSON_BREAKS)


class TextFormatter(_Formatter):
    """`time LEVEL logger [request id] message | traceback`, line breaks escaped."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of text."""
        rid = getattr(record, "request_id", None) or "-"
        line = f"{_time(record)} {record.levelname} {record.name} [{rid}] {record.getMessage()}"
        text = self.exception_text(record)
        if text:
            line += " | " + text
        if record.stack_info:
            line += " | " + record.stack_info
        return line.translate(_ONE_LINE)


class RequestIdFilter(logging.Filter):
    """Gives every record the id of the request being served (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Set `record.request_id` unless the caller gave one; keep the record."""
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.current()
        return True


class OnceFilter(logging.Filter):
    """Drops uvicorn's catch-all line for an exception a line has already carried."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False for a server repeat of a written exception; mark the others."""
        exc = _exception(record)
        if exc is None:
            return True
        if record.name.startswith("uvicorn") and getattr(exc, _WRITTEN, False):
            return False
        try:
            setattr(exc, _WRITTEN, True)
        except AttributeError:  # an exception with __slots__ only: at worst it is written twice
            pass
        return True


class AccessFilter(logging.Filter):
    """Cuts the query string from uvicorn's access lines: a search (`q=`) can be a name."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, its path without `?...`."""
        args = record.args
        # uvicorn logs '%s - "%s %s HTTP/%s" %d' with (client, method, path?query, version, status).
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


class StderrHandler(logging.StreamHandler):
    """Writes to `stream` when given, else to sys.stderr as it is at each line: pytest and
    typer's test runner swap sys.stderr, and a handler keeping the old one writes nowhere."""

    def __init__(self, stream: Any = None) -> None:
        logging.Handler.__init__(self)
        self._stream = stream

    @property
    def stream(self) -> Any:  # type: ignore[override]
        """Return the stream this line goes to."""
        return self._stream if self._stream is not None else sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        self._stream = value


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """Return a logging dictConfig for `uvicorn.run(log_config=...)` (and the CLI)."""
    level = settings.log.level
    # Libraries speak only from WARNING: sqlalchemy's INFO lines are the SQL and its parameters.
    quiet = level if logging.getLevelName(level) > logging.WARNING else "WARNING"
    kind = "JsonFormatter" if settings.log.format == "json" else "TextFormatter"
    formatter = {"()": f"riskgrid.logs.{kind}"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "riskgrid.logs.RequestIdFilter"},
            "once": {"()": "riskgrid.logs.OnceFilter"},
            "access": {"()": "riskgrid.logs.AccessFilter"},
        },
        # uvicorn writes `use_colors` into these two names; both are the one format.
        "formatters": {"default": dict(formatter), "access": dict(formatter)},
        "handlers": {
            "default": {
                "()": "riskgrid.logs.StderrHandler",
                "formatter": "default",
                "filters": ["request_id", "once"],
            }
        },
        "loggers": {
            "riskgrid": {"level": level},
            "uvicorn": {"level": level},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"level": level, "filters": ["access"]},
            "sqlalchemy": {"level": quiet},
        },
        "root": {"level": quiet, "handlers": ["default"]},
    }


def configure(settings: Settings) -> None:
    """Send this process's log lines to stderr in the configured format (the CLI)."""
    logging.config.dictConfig(uvicorn_log_config(settings))
