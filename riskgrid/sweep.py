"""`riskgrid sweep`: the overdue sweep once, as each server process runs it in the background:
reports newly overdue noticed, those overdue past the second limit escalated, letters whose
reply is overdue told. For a host that runs no server, e.g. from cron; running it beside
servers is harmless (each report and letter is told once)."""

from __future__ import annotations

from typing import Annotated

import typer

from riskgrid.common import echo_json, get_engine
from riskgrid.options import AsJson

Rounds = Annotated[
    int, typer.Option(min=1, max=1000, help="at most this many rounds while batches come full")
]


def sweep(as_json: AsJson = False, rounds: Rounds = 20) -> None:
    """Notice overdue reports, escalate, and tell of overdue letter replies, once."""
    from sqlalchemy.exc import OperationalError

    from api.app import LAYER_SWEEPS
    from geo.reports.escalation import sweep_round, sweeps
    from geo.settings import get_settings
    from riskgrid.common import unreachable

    every = sweeps(get_settings().reports, LAYER_SWEEPS)
    engine = get_engine()
    totals: dict[str, dict[str, int]] = {}
    try:
        for _ in range(rounds):
            found, full = sweep_round(engine, every, strict=True)
            for name, done in found.items():
                mine = totals.setdefault(name, {})
                for what, n in done.items():
                    mine[what] = mine.get(what, 0) + n
            if not full:
                break
    except OperationalError as exc:
        unreachable(exc)
    finally:
        engine.dispose()
    if as_json:
        echo_json(totals)
        return
    for name, done in totals.items():
        typer.echo(f"{name}: " + ", ".join(f"{n} {what}" for what, n in done.items()))
