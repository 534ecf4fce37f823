"""`riskgrid audit`: the audit log, newest first: who did what to which object, from where."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from geo.errors import InvalidInput, RiskgridError
from geo.settings import get_settings
from riskgrid.common import connection, echo_json, fail
from riskgrid.options import AsJson

MAX_LIMIT = 10_000

Since = Annotated[
    str | None,
    typer.Option(help="ISO time or date, e.g. 2024-08-23T10:00+08:00 (no offset: local zone)"),
]
Action = Annotated[
    str | None, typer.Option(help="an action (user.add), or a prefix ending in * (import.*)")
]
Actor = Annotated[str | None, typer.Option(help="a username, or system for the command line")]
Limit = Annotated[int, typer.Option(help=f"entries to print, newest first (1-{MAX_LIMIT})")]


def parse_since(value: str, zone: str) -> datetime:
    """Return an aware time from ISO text; a time without an offset is read in `zone`."""
    from zoneinfo import ZoneInfo

    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"--since {value!r} is not an ISO time: use e.g. 2024-08-23 or 2024-08-23T10:00+08:00"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo(zone))


def format_entry(e: dict[str, Any]) -> str:
    """Return one entry as a line: time, actor (role), action, object, changes, people."""
    obj = " ".join(str(p) for p in (e["object_type"], e["object_id"]) if p is not None)
    parts = [
        e["at"].isoformat(timespec="seconds"),
        f"{e['actor']} ({e['role'] or '-'})",
        e["action"],
        obj or "-",
    ]
    if e["changes"] is not None:
        parts.append(json.dumps(e["changes"], ensure_ascii=False, separators=(",", ":")))
    if e["people"] is not None:
        parts.append(f"{e['people']} people")
    if e["client"] is not None:
        parts.append(f"from {e['client']}")
    return "  ".join(parts)


def audit(
    since: Since = None,
    action: Action = None,
    actor: Actor = None,
    limit: Limit = 50,
    as_json: AsJson = False,
) -> None:
    """Print audit log entries, newest first (writes, logins, reads of personal data)."""
    from geo.identity.audit import AuditFilter, entries

    try:
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"--limit must be 1-{MAX_LIMIT} (got {limit})")
        start = None if since is None else parse_since(since, get_settings().reports.naive_timezone)
        with connection(begin=False) as conn:
            page = entries(conn, AuditFilter(actor=actor, action=action, since=start), limit, None)
    except RiskgridError as exc:
        fail(exc)
    if as_json:
        echo_json(page["entries"])
        return
    if not page["entries"]:
        typer.echo("no audit entries match")
        return
    for e in page["entries"]:
        typer.echo(format_entry(e))
    if page["next_cursor"] is not None:
        typer.secho(
            f"… older entries not shown: raise --limit (now {limit}) or use --since", err=True
        )
