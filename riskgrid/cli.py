"""The `riskgrid` command: database, file imports, users and tokens, the audit log, the demo
and the web service.

Each group of commands lives in its own module; this one puts them together. Commands import
what they need when they run, so `riskgrid --help` stays fast.
"""

from __future__ import annotations

import typer

from riskgrid import (
    audit,
    boundary_files,
    db,
    demo,
    households,
    layers,
    outbox,
    reports,
    serve,
    sweep,
    tokens,
    users,
)

app = typer.Typer(
    help="riskgrid: geospatial risk mapping for grid-based public safety.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _logging() -> None:
    """Log lines to stderr in RISKGRID_LOG__FORMAT (text or JSON lines)."""
    from geo.settings import get_settings
    from riskgrid import logs

    logs.configure(get_settings())


app.add_typer(db.app, name="db")
app.add_typer(boundary_files.app, name="boundaries")
app.add_typer(reports.app, name="reports")
app.add_typer(layers.app, name="layers")
app.add_typer(households.app, name="households")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.add_typer(outbox.app, name="outbox")
app.command("audit")(audit.audit)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("sweep")(sweep.sweep)


if __name__ == "__main__":
    app()
