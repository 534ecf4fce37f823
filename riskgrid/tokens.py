"""`riskgrid tokens create|list|revoke`: integration tokens of users (scripts, gateways).

A token acts as its user, with the user's role and scope, until it expires or is revoked.
Every command acts as the command line (`system` in the audit log).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from geo.errors import InvalidInput, RiskgridError
from geo.settings import get_settings
from riskgrid.common import connection, echo_json, fail
from riskgrid.options import AsJson

app = typer.Typer(help="Integration tokens of users, with an expiry.", no_args_is_help=True)

MAX_DAYS = 3650

User = Annotated[str, typer.Option("--user", help="the user the token acts as")]
Name = Annotated[str, typer.Option(help="what uses the token, e.g. 12345热线网关")]
Days = Annotated[
    int | None, typer.Option(help="days until it expires (default: auth.integration_ttl_days)")
]


@app.command("create")
def tokens_create(user: User, name: Name, days: Days = None) -> None:
    """Create an integration token of a user and print it once (only its hash is kept)."""
    from geo.identity.principal import SYSTEM
    from geo.identity.tokens import create_integration_token

    valid_days = days if days is not None else get_settings().auth.integration_ttl_days
    try:
        if not 1 <= valid_days <= MAX_DAYS:
            raise InvalidInput(f"--days must be 1-{MAX_DAYS} (got {valid_days})")
        with connection() as conn:
            token = create_integration_token(conn, SYSTEM, user, name, valid_days)
    except RiskgridError as exc:
        fail(exc)
    typer.echo(token)
    until = datetime.now(UTC) + timedelta(days=valid_days)
    typer.secho(
        f"token of {user} for {name.strip()}, valid until {until:%Y-%m-%d %H:%M} UTC; "
        "shown once: only its hash is kept",
        err=True,
    )


def _state(token: dict[str, Any], now: datetime) -> str:
    if token["revoked_at"] is not None:
        return f"revoked {token['revoked_at']:%Y-%m-%d}"
    if token["expires_at"] <= now:
        return f"expired {token['expires_at']:%Y-%m-%d}"
    return f"active until {token['expires_at']:%Y-%m-%d}"


@app.command("list")
def tokens_list(as_json: AsJson = False) -> None:
    """List integration tokens: id, user, role, name, state (never the token itself)."""
    from geo.identity.tokens import list_tokens

    with connection(begin=False) as conn:
        found = list_tokens(conn)
    if as_json:
        echo_json(found)
        return
    if not found:
        typer.echo("no integration tokens: create one with `riskgrid tokens create`")
        return
    now = datetime.now(UTC)
    width = max(len(t["username"]) for t in found)
    for t in found:
        typer.echo(
            f"{t['id']:>4}  {t['username']:<{width}}  {t['role']:<11}  {t['name']}  "
            f"({_state(t, now)})"
        )


@app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke an integration token by its id (see `riskgrid tokens list`)."""
    from geo.identity.principal import SYSTEM
    from geo.identity.tokens import revoke_token

    try:
        with connection() as conn:
            revoke_token(conn, SYSTEM, token_id)
    except RiskgridError as exc:
        fail(exc)
    typer.echo(f"token {token_id} revoked")
