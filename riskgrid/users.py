"""`riskgrid users add|list|disable|passwd`: the people who log in, their roles and scopes.

Every command acts as the command line (`system` in the audit log).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from geo.errors import InvalidInput, RiskgridError
from geo.settings import get_settings
from geo.vocabulary import Role
from riskgrid.common import connection, echo_json, fail, read_password
from riskgrid.options import AsJson

app = typer.Typer(help="Users: who logs in, with which role and scope.", no_args_is_help=True)

ROLES = ", ".join(r.value for r in Role)
RoleOption = Annotated[str, typer.Option(help=ROLES)]
Name = Annotated[str, typer.Option(help="full name, e.g. 王小明 (default: the username)")]
Grids = Annotated[
    list[str] | None, typer.Option("--grid", help="a worker's grid code (repeat for more)")
]
Districts = Annotated[
    list[str] | None,
    typer.Option("--district", help="district code of a dispatcher or coordinator (repeatable)"),
]
Department = Annotated[
    str | None, typer.Option(help="a department user's department, as in the routing table")
]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="read the password as one line from stdin (else: generated)"
    ),
]

SHOWN_ONCE = "shown once: only its argon2 hash is kept"


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput(f"unknown role {value!r}; one of: {ROLES}") from None


def scope_text(grids: list[str], districts: list[str], department: str | None) -> str:
    """Return a user's scope in a few words: grids, districts, department, or city-wide."""
    parts = []
    if grids:
        parts.append("grids " + ", ".join(grids))
    if districts:
        parts.append("districts " + ", ".join(districts))
    if department:
        parts.append(department)
    return "; ".join(parts) or "city-wide"


@app.command("add")
def users_add(
    username: str,
    role: RoleOption,
    name: Name = "",
    grid: Grids = None,
    district: Districts = None,
    department: Department = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user; without --password-stdin a password is generated and printed once."""
    from geo.identity.principal import SYSTEM
    from geo.identity.users import NewUser, add_user
    from geo.reports.taxonomy import departments

    settings = get_settings()
    try:
        checked_role = _role(role)
        password = read_password() if password_stdin else None
        new = NewUser(
            username=username,
            role=checked_role,
            name=name,
            grids=tuple(grid or ()),
            districts=tuple(district or ()),
            department=department,
            password=password,
        )
        with connection() as conn:
            added = add_user(
                conn,
                SYSTEM,
                new,
                departments(settings.reports.departments),
                settings.auth.min_password_length,
            )
    except RiskgridError as exc:
        fail(exc)
    scope = scope_text(list(new.grids), list(new.districts), new.department)
    typer.echo(f"added {added.username} ({new.role}; {scope})")
    if added.generated_password is not None:
        typer.echo(f"password: {added.generated_password}")
        typer.secho(SHOWN_ONCE, err=True)


def _state(user: dict[str, Any]) -> str:
    if user["disabled_at"] is not None:
        return f"disabled {user['disabled_at']:%Y-%m-%d}"
    if user["password_changed_at"] is None:
        return "active, no password"
    return "active"


@app.command("list")
def users_list(as_json: AsJson = False) -> None:
    """List users: name, role, scope and state (never a password)."""
    from geo.identity.users import list_users

    with connection(begin=False) as conn:
        users = list_users(conn)
    if as_json:
        echo_json(users)
        return
    if not users:
        typer.echo("no users yet: add one with `riskgrid users add USERNAME --role ROLE`")
        return
    width = max(len(u["username"]) for u in users)
    for u in users:
        scope = scope_text(u["grids"], u["districts"], u["department"])
        typer.echo(
            f"{u['username']:<{width}}  {u['role']:<11}  {u['name']}  [{scope}]  ({_state(u)})"
        )


@app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: they can no longer log in, and every token of theirs is revoked."""
    from geo.identity.principal import SYSTEM
    from geo.identity.users import disable_user

    try:
        with connection() as conn:
            disable_user(conn, SYSTEM, username)
    except RiskgridError as exc:
        fail(exc)
    typer.echo(f"{username} disabled; their tokens are revoked")


@app.command("passwd")
def users_passwd(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password (generated and printed once without --password-stdin); this
    ends their login sessions."""
    from geo.identity.principal import SYSTEM
    from geo.identity.users import generate_password, set_password

    settings = get_settings()
    min_length = settings.auth.min_password_length
    password = read_password() if password_stdin else generate_password(min_length)
    try:
        with connection() as conn:
            set_password(conn, SYSTEM, username, password, min_length)
    except RiskgridError as exc:
        fail(exc)
    typer.echo(f"password of {username} changed; their login sessions are ended")
    if not password_stdin:
        typer.echo(f"password: {password}")
        typer.secho(SHOWN_ONCE, err=True)
