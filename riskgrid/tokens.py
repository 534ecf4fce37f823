"""`riskgrid tokens create|list|revoke`: API tokens and their roles."""

from __future__ import annotations

from typing import Annotated

import typer

from geo.errors import RiskgridError
from riskgrid.common import fail, get_engine

app = typer.Typer(help="API tokens and their roles.", no_args_is_help=True)


@app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option(help="who holds the token")],
    role: Annotated[str, typer.Option(help="admin, coordinator, planner or worker")],
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    from geo.identity.tokens import create_token

    try:
        with get_engine().begin() as conn:
            token = create_token(conn, name, role)
    except RiskgridError as exc:
        fail(exc)
    typer.echo(token)


@app.command("list")
def tokens_list() -> None:
    """List tokens: id, holder, role, created, revoked (never the token itself)."""
    from geo.identity.tokens import list_tokens

    with get_engine().connect() as conn:
        for t in list_tokens(conn):
            state = f"revoked {t['revoked_at']:%Y-%m-%d}" if t["revoked_at"] else "active"
            typer.echo(f"{t['id']:>4}  {t['role']:<12} {t['name']}  ({state})")


@app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by its id (see `riskgrid tokens list`)."""
    from geo.identity.tokens import revoke_token

    try:
        with get_engine().begin() as conn:
            revoke_token(conn, token_id)
    except RiskgridError as exc:
        fail(exc)
    typer.echo(f"token {token_id} revoked")
