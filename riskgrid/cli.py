"""The `riskgrid` command: database, boundary import, demo data and the web service."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from geo.errors import ImportRefused, RiskgridError
from geo.settings import get_settings

app = typer.Typer(
    help="riskgrid: geospatial risk mapping for grid-based public safety.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The PostgreSQL + PostGIS database.", no_args_is_help=True)
boundaries_app = typer.Typer(help="Grid and area boundary files.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(boundaries_app, name="boundaries")


def _fail(exc: RiskgridError, code: int = 1) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _engine():
    from geo.db.engine import make_engine

    return make_engine(get_settings())


@db_app.command("up")
def db_up() -> None:
    """Start the project's own PostgreSQL (initdb on first use) and apply migrations."""
    from geo.db import migrate
    from geo.db.engine import make_engine, project_cluster

    settings = get_settings()
    t0 = time.perf_counter()
    try:
        if settings.database_url:
            url = settings.database_url
            typer.echo("DATABASE_URL is set: using it, no local cluster started")
        else:
            url = project_cluster(settings).up()
        engine = make_engine(settings, url)
        rev = migrate.upgrade(engine)
        engine.dispose()
    except RiskgridError as exc:
        _fail(exc)
    typer.echo(f"database ready at {url} (schema {rev}) in {time.perf_counter() - t0:.2f} s")


@db_app.command("down")
def db_down() -> None:
    """Stop the project's own PostgreSQL."""
    from geo.db.engine import project_cluster

    try:
        stopped = project_cluster(get_settings()).down()
    except RiskgridError as exc:
        _fail(exc)
    typer.echo("stopped" if stopped else "not running")


@db_app.command("status")
def db_status() -> None:
    """Say whether the database is up, where, and at which schema revision."""
    from geo.db import migrate
    from geo.db.engine import make_engine, project_cluster

    settings = get_settings()
    if settings.database_url:
        typer.echo(f"using DATABASE_URL {settings.database_url}")
        url = settings.database_url
    else:
        st = project_cluster(settings).status()
        typer.echo(
            f"cluster: {'running' if st.running else 'stopped'}"
            f"{'' if st.initialized else ' (not initialised: run `riskgrid db up`)'}"
        )
        typer.echo(f"data: {st.data_dir}\nsocket: {st.socket_dir}\nport: {st.port}")
        if not st.running:
            raise typer.Exit(3)
        url = st.url or ""
    try:
        engine = make_engine(settings, url)
        rev, head = migrate.current(engine), migrate.head()
        engine.dispose()
    except Exception as exc:
        typer.secho(f"database unreachable: {type(exc).__name__}", fg=typer.colors.RED, err=True)
        raise typer.Exit(3) from None
    typer.echo(
        f"schema: {rev or 'none'} (head {head})"
        + ("" if rev == head else " — run `riskgrid db upgrade`")
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations up to the newest revision."""
    from geo.db import migrate

    try:
        engine = _engine()
        rev = migrate.upgrade(engine)
    except RiskgridError as exc:
        _fail(exc)
    typer.echo(f"schema at {rev}")


Layer = Annotated[str, typer.Option(help="what the features are: grids or areas")]
FileLayer = Annotated[
    str | None, typer.Option("--file-layer", help="layer in a GeoPackage, or shapefile in a zip")
]
Crs = Annotated[str | None, typer.Option(help="CRS of a file that declares none, e.g. EPSG:4490")]
Encoding = Annotated[
    str | None, typer.Option(help="attribute encoding of a shapefile with no .cpg")
]
CodeField = Annotated[str | None, typer.Option("--code-field", help="column holding the grid code")]
NameField = Annotated[str | None, typer.Option("--name-field", help="column holding the name")]
KindField = Annotated[
    str | None, typer.Option("--kind-field", help="column: comprehensive/exclusive")
]
Mapping = Annotated[Path | None, typer.Option(help='JSON file {"code": "WGBM", "name": "WGMC", …}')]
Strict = Annotated[bool, typer.Option(help="refuse the whole file on any finding")]
AsJson = Annotated[bool, typer.Option("--json", help="print the report as JSON")]
Prune = Annotated[
    bool, typer.Option(help="the file is the whole layer: remove stored features it lacks")
]


def _emit(outcome, as_json: bool) -> None:
    from boundaries.importer import format_report

    if as_json:
        typer.echo(json.dumps(outcome.as_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(format_report(outcome))


def _check(path: Path, opts, as_json: bool) -> None:
    from boundaries.importer import check_file

    try:
        engine = _engine()
        engine.connect().close()
    except Exception:
        engine = None
        typer.secho("no database: checks that need district/community outlines skipped", err=True)
    outcome = check_file(engine, path, opts, get_settings().imports)
    _emit(outcome, as_json)
    if opts.strict and outcome.report.findings:
        raise typer.Exit(2)


def _import(path: Path, opts, as_json: bool) -> None:
    from boundaries.importer import ImportOutcome, import_file

    try:
        with tqdm(
            desc=f"importing {path.name}", unit=" features", disable=as_json, file=sys.stderr
        ) as bar:
            settings = get_settings()
            outcome = import_file(
                _engine(), path, opts, settings.imports, bar.update, settings.reports
            )
    except ImportRefused as exc:
        if exc.report is not None:
            _emit(ImportOutcome(exc.report), as_json)
        _fail(exc, 2)
    _emit(outcome, as_json)


def _boundary_command(run):
    """Return a command taking the boundary file options, shared by `check` and `import`."""

    def command(
        path: Path,
        layer: Layer = "grids",
        file_layer: FileLayer = None,
        crs: Crs = None,
        encoding: Encoding = None,
        code_field: CodeField = None,
        name_field: NameField = None,
        kind_field: KindField = None,
        mapping: Mapping = None,
        strict: Strict = False,
        prune: Prune = False,
        as_json: AsJson = False,
    ) -> None:
        from boundaries.importer import ImportOptions
        from boundaries.reader import load_mapping

        try:
            fields = load_mapping(mapping) if mapping else {}
            for role, value in (("code", code_field), ("name", name_field), ("kind", kind_field)):
                if value:
                    fields[role] = value
            opts = ImportOptions(
                layer=layer,
                file_layer=file_layer,
                crs=crs,
                encoding=encoding,
                fields=fields,
                strict=strict,
                prune=prune,
            )
            run(path, opts, as_json)
        except RiskgridError as exc:
            _fail(exc)

    command.__doc__ = run.__doc__
    return command


_check.__doc__ = "Validate a boundary file and print the report; store nothing."
_import.__doc__ = "Validate and import a boundary file in one transaction (all or nothing)."
boundaries_app.command("check")(_boundary_command(_check))
boundaries_app.command("import")(_boundary_command(_import))


reports_app = typer.Typer(help="Grid workers' reports.", no_args_is_help=True)
app.add_typer(reports_app, name="reports")


@reports_app.command("import")
def reports_import(
    path: Path,
    as_json: AsJson = False,
) -> None:
    """Load reports from a CSV or GeoJSON file: assigned in bulk, with a per-row error report."""
    from geo.reports.bulk import load
    from geo.reports.campaigns import list_campaigns
    from geo.reports.files import read_reports

    settings = get_settings()
    t0 = time.perf_counter()
    try:
        engine = _engine()
        with engine.begin() as conn:
            codes = {c["code"] for c in list_campaigns(conn)}
            parsed = read_reports(path, settings.reports, codes)
            with tqdm(
                total=len(parsed.rows),
                desc=f"loading {path.name}",
                unit=" reports",
                disable=as_json,
                file=sys.stderr,
            ) as bar:
                result = load(conn, parsed.rows, settings.reports, progress=bar.update)
    except RiskgridError as exc:
        _fail(exc)
    errors = sorted(parsed.errors + result.refused)
    summary = {
        "rows": len(parsed.rows) + len(parsed.errors),
        "inserted": result.inserted,
        "already_stored": result.existing,
        "refused": len(errors),
        "by_method": result.by_method,
        "seconds": round(time.perf_counter() - t0, 2),
        "errors": [{"row": n, "error": e} for n, e in errors],
    }
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        typer.echo(
            f"{path.name}: {summary['rows']} row(s): {result.inserted} stored, "
            f"{result.existing} already stored, {len(errors)} refused "
            f"({summary['seconds']} s); assignment: {result.by_method}"
        )
        for n, e in errors[:200]:
            typer.echo(f"  row {n}: {e}")
        if len(errors) > 200:
            typer.echo(f"  … and {len(errors) - 200} more (use --json for all)")
    if errors:
        raise typer.Exit(2 if result.inserted + result.existing == 0 else 0)


layers_app = typer.Typer(help="Risk layers: flood zones, rivers, reservoirs.", no_args_is_help=True)
app.add_typer(layers_app, name="layers")


@layers_app.command("import")
def layers_import(
    path: Path,
    kind: Annotated[str, typer.Option(help="flood_zone, river, reservoir or low_lying")],
    file_layer: FileLayer = None,
    crs: Crs = None,
    encoding: Encoding = None,
    code_field: CodeField = None,
    name_field: NameField = None,
    level_field: Annotated[
        str | None, typer.Option("--level-field", help="column: level 1-3 or 低/中/高")
    ] = None,
    return_period_field: Annotated[
        str | None, typer.Option("--return-period-field", help="column: return period, years")
    ] = None,
    level: Annotated[
        int | None, typer.Option(help="level 1-3 for every feature of a file without one")
    ] = None,
    strict: Strict = False,
    prune: Prune = False,
    as_json: AsJson = False,
) -> None:
    """Check and import a risk layer file (GeoJSON, GeoPackage, Shapefile, FlatGeobuf)."""
    from boundaries.risk_import import LayerOptions, format_outcome, import_layer

    fields = {
        role: value
        for role, value in (
            ("code", code_field),
            ("name", name_field),
            ("level", level_field),
            ("return_period", return_period_field),
        )
        if value
    }
    opts = LayerOptions(kind, file_layer, crs, encoding, fields, level, strict, prune)
    try:
        outcome = import_layer(_engine(), path, opts)
    except ImportRefused as exc:
        if exc.report is not None:
            typer.echo(format_outcome(exc.report))  # type: ignore[arg-type]
        _fail(exc, 2)
    except RiskgridError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(outcome.as_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(format_outcome(outcome))


@layers_app.command("list")
def layers_list() -> None:
    """Print the stored risk features per kind and level, with areas and lengths."""
    from geo.risk import layers as risk_layers

    with _engine().connect() as conn:
        for row in risk_layers.summary(conn):
            typer.echo(
                f"{row['kind']:<11} level {row['level'] or '-'}: {row['features']} feature(s), "
                f"{row['area_km2']:,.1f} km², {row['length_km']:,.1f} km"
            )


households_app = typer.Typer(help="Households: who lives where.", no_args_is_help=True)
app.add_typer(households_app, name="households")


@households_app.command("import")
def households_import(path: Path, as_json: AsJson = False) -> None:
    """Load households from a CSV or GeoJSON file (upserted by code), with a per-row report."""
    from geo.risk import households
    from geo.risk.household_files import read_households

    settings = get_settings()
    try:
        parsed = read_households(path)
        with _engine().begin() as conn:
            with tqdm(
                total=len(parsed.rows),
                desc=f"loading {path.name}",
                unit=" households",
                disable=as_json,
                file=sys.stderr,
            ) as bar:
                result = households.load(
                    conn, parsed.rows, settings.reports.snap_tolerance_m, bar.update
                )
    except RiskgridError as exc:
        _fail(exc)
    summary = {**result, "refused": len(parsed.errors)}
    errors = [{"row": n, "error": e} for n, e in parsed.errors]
    if as_json:
        typer.echo(json.dumps({**summary, "errors": errors}, ensure_ascii=False, indent=2))
    else:
        typer.echo(
            f"{path.name}: {result['received']} household(s) read, {result['stored']} added or "
            f"changed, {result['unassigned']} outside every grid, {len(errors)} refused"
        )
        for e in errors[:200]:
            typer.echo(f"  row {e['row']}: {e['error']}")
    if parsed.errors and not result["received"]:
        raise typer.Exit(2)


tokens_app = typer.Typer(help="API tokens and their roles.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option(help="who holds the token")],
    role: Annotated[str, typer.Option(help="admin, coordinator, planner or worker")],
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    from geo.identity.tokens import create_token

    try:
        with _engine().begin() as conn:
            token = create_token(conn, name, role)
    except RiskgridError as exc:
        _fail(exc)
    typer.echo(token)


@tokens_app.command("list")
def tokens_list() -> None:
    """List tokens: id, holder, role, created, revoked (never the token itself)."""
    from geo.identity.tokens import list_tokens

    with _engine().connect() as conn:
        for t in list_tokens(conn):
            state = f"revoked {t['revoked_at']:%Y-%m-%d}" if t["revoked_at"] else "active"
            typer.echo(f"{t['id']:>4}  {t['role']:<12} {t['name']}  ({state})")


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by its id (see `riskgrid tokens list`)."""
    from geo.identity.tokens import revoke_token

    try:
        with _engine().begin() as conn:
            revoke_token(conn, token_id)
    except RiskgridError as exc:
        _fail(exc)
    typer.echo(f"token {token_id} revoked")


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="where to write the generated files")] = Path(
        ".riskgrid/demo"
    ),
) -> None:
    """Generate the seeded Daqing demo (streets, communities, 4,964 grids) and import it."""
    from boundaries.demo import load_demo

    settings = get_settings()
    t0 = time.perf_counter()
    try:
        summary = load_demo(
            _engine(), out, settings.imports, echo=typer.echo, reports=settings.reports
        )
    except RiskgridError as exc:
        _fail(exc)
    typer.echo(f"demo loaded in {time.perf_counter() - t0:.1f} s: {summary}")


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    workers: Annotated[
        int | None, typer.Option(help="worker processes (default: cores, ≤4)")
    ] = None,
) -> None:
    """Run the web service (api.app:app) with uvicorn."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "api.app:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        access_log=False,
    )


if __name__ == "__main__":
    app()
