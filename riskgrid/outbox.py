"""`riskgrid outbox deliver|status`: the events waiting for the webhook (an SMS or WeChat
gateway), sent signed with HMAC-SHA256 and retried with backoff.

A server process delivers them in the background when `RISKGRID_WEBHOOK__URL` is set; this
command does the same in the foreground (`--once`: what is due now, then exit), e.g. from cron
on a host that runs no server.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from riskgrid.common import FAILED, connection, echo_json, get_engine
from riskgrid.options import AsJson

if TYPE_CHECKING:
    from geo.settings import WebhookSettings

app = typer.Typer(help="Events waiting for the webhook: deliver them, or see where they stand.")

Once = Annotated[bool, typer.Option("--once", help="deliver what is due now, then exit")]
Limit = Annotated[int, typer.Option(min=1, max=100_000, help="at most this many with --once")]


def _configured() -> WebhookSettings:
    from geo.reports.webhook import logged_url
    from geo.settings import get_settings

    rules = get_settings().webhook
    if rules.url is None:
        typer.secho(
            "error: no webhook configured: set RISKGRID_WEBHOOK__URL and RISKGRID_WEBHOOK__SECRET",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(FAILED)
    typer.secho(f"delivering to {logged_url(rules.url)}", err=True)
    return rules


@app.command("deliver")
def outbox_deliver(once: Once = False, limit: Limit = 1000) -> None:
    """Send the due events to the webhook: until Ctrl-C, or with --once what is due now."""
    from sqlalchemy.exc import OperationalError

    from geo.reports.webhook import Deliverer, deliver_round
    from riskgrid.common import unreachable

    rules = _configured()
    engine = get_engine()
    try:
        if once:
            done = deliver_round(engine, rules, limit)
            typer.echo(
                f"{done.claimed} sent: {done.delivered} delivered, {done.retried} to retry, "
                f"{done.gave_up} given up; {done.expired} too old to send"
            )
            return
        deliverer = Deliverer(engine, rules)
        try:
            deliverer.run()
        except KeyboardInterrupt:
            deliverer.stop(0)
    except OperationalError as exc:
        unreachable(exc)
    finally:
        engine.dispose()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


@app.command("status")
def outbox_status(as_json: AsJson = False) -> None:
    """Print the outbox's counts (pending, delivered, given up) and the last failed attempts."""
    from geo.reports.webhook import status

    with connection(begin=False) as conn:
        found = status(conn)
    if as_json:
        echo_json(found)
        return
    typer.echo(
        f"pending {found['pending']} (due now {found['due']}, oldest "
        f"{_age(found['oldest_pending_s'])}), delivered {found['delivered']}, "
        f"given up {found['gave_up']}"
    )
    for e in found["last_errors"]:
        at: datetime = e["at"]
        answer = e["status_code"] if e["status_code"] is not None else "no answer"
        typer.echo(
            f"  {at:%Y-%m-%d %H:%M:%S}  {e['event_id']}  {e['kind']}  attempt {e['attempt']}  "
            f"{answer}  {e['error'] or ''}"
        )
