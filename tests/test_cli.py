"""The `riskgrid` command line against the test database."""

import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from geo.db import migrate
from riskgrid.cli import app
from tests.factories import grid_frame, login_as, point_m, tiled, write

runner = CliRunner()


def test_import_prints_the_version_and_reimport_says_unchanged(cli_env, tmp_path):
    path = write(grid_frame(tiled(2)), tmp_path / "g.gpkg")
    first = runner.invoke(app, ["boundaries", "import", str(path)])
    assert first.exit_code == 0, first.output
    assert "4 added" in first.output and "boundary version" in first.output
    again = runner.invoke(app, ["boundaries", "import", str(path)])
    assert again.exit_code == 0 and "unchanged (4 feature(s)" in again.output


def test_check_json_lists_findings_and_strict_exits_2(cli_env, tmp_path):
    rows = tiled(2)
    rows[1]["code"] = rows[0]["code"]
    path = write(grid_frame(rows), tmp_path / "dup.geojson")
    r = runner.invoke(app, ["boundaries", "check", str(path), "--json"])
    assert r.exit_code == 0
    report = json.loads(r.stdout)["report"]
    assert report["counts"] == {"duplicate_code": 1} and report["importable"] == 2
    strict = runner.invoke(app, ["boundaries", "import", str(path), "--strict"])
    assert strict.exit_code == 2 and "nothing imported" in strict.output


def test_missing_crs_error_names_the_flag(cli_env, tmp_path):
    path = write(grid_frame(tiled(1)), tmp_path / "nocrs.shp")
    (tmp_path / "nocrs.prj").unlink()
    r = runner.invoke(app, ["boundaries", "import", str(path)])
    assert r.exit_code == 1 and "--crs" in r.output
    ok = runner.invoke(app, ["boundaries", "import", str(path), "--crs", "EPSG:4490"])
    assert ok.exit_code == 0 and "1 added" in ok.output


def test_code_field_option_and_mapping_file(cli_env, tmp_path):
    rows = [{"GID": r["code"], "GNAME": r["name"], "geometry": r["geometry"]} for r in tiled(1)]
    path = write(grid_frame(rows), tmp_path / "g.geojson")
    missing = runner.invoke(app, ["boundaries", "import", str(path)])
    assert missing.exit_code == 1 and "columns found: ['GID', 'GNAME']" in missing.output
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"code": "GID"}))
    r = runner.invoke(
        app, ["boundaries", "import", str(path), "--mapping", str(mapping), "--name-field", "GNAME"]
    )
    assert r.exit_code == 0 and "1 added" in r.output


def test_db_status_reports_schema_at_head(cli_env):
    r = runner.invoke(app, ["db", "status"])
    head = migrate.head()
    assert r.exit_code == 0 and f"schema: {head} (head {head})" in r.output


def test_help_lists_every_group_and_loads_no_heavy_library():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for name in (
        "db", "boundaries", "reports", "layers", "households", "users", "tokens", "audit", "demo",
        "serve",
    ):  # fmt: skip
        assert f" {name} " in r.output
    # `riskgrid --help` stays fast: the commands import these only when they run.
    probe = (
        "import sys, riskgrid.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pandas', 'numpy', 'sqlalchemy', 'geopandas', 'boundaries', 'api', 'web'}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _grids(tmp_path):
    path = write(grid_frame(tiled(2)), tmp_path / "g.gpkg")
    assert runner.invoke(app, ["boundaries", "import", str(path)]).exit_code == 0


def test_reports_import_prints_counts_and_refused_rows(cli_env, tmp_path):
    _grids(tmp_path)
    (lon, lat), (lon2, lat2) = point_m(250, 250), point_m(750, 750)
    path = tmp_path / "r.csv"
    path.write_text(
        "lon,lat,theme,category,reported_at\n"
        f"{lon},{lat},gas,gas_leak,2024-08-23 10:00\n"
        f"{lon2},{lat2},gas,gas_leak,2024-08-23 11:00\n"
        f"{lon},{lat},volcano,lava,2024-08-23 12:00\n",
        encoding="utf-8",
    )
    r = runner.invoke(app, ["reports", "import", str(path)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("r.csv: 3 row(s): 2 stored, 0 already stored, 1 refused (")
    assert lines[0].endswith(" s); assignment: {'inside': 2}")
    assert lines[1:] == ["  row 4: unknown theme 'volcano'"]
    again = runner.invoke(app, ["reports", "import", str(path), "--json"])
    body = json.loads(again.stdout)
    assert list(body) == [
        "rows", "inserted", "already_stored", "refused", "by_method", "seconds", "errors",
    ]  # fmt: skip
    assert (body["inserted"], body["already_stored"], body["refused"]) == (0, 2, 1)


def test_reports_import_exits_2_when_every_row_is_refused(cli_env, tmp_path):
    _grids(tmp_path)
    path = tmp_path / "bad.csv"
    path.write_text("lon,lat,theme,category\n125,95,gas,gas_leak\n", encoding="utf-8")
    r = runner.invoke(app, ["reports", "import", str(path)])
    assert r.exit_code == 2 and "  row 2: lat must be within -90..90 (got 95.0)" in r.stdout


def test_households_import_prints_counts_and_exits_2_when_all_refused(cli_env, tmp_path):
    _grids(tmp_path)
    lon, lat = point_m(250, 250)
    path = tmp_path / "hh.csv"
    path.write_text(f"code,lon,lat,members\nH1,{lon},{lat},2\nH2,{lon},{lat},0\n")
    r = runner.invoke(app, ["households", "import", str(path)])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "hh.csv: 1 household(s) read, 1 added or changed, 0 outside every grid, 1 refused",
        "  row 3: members must be a whole number 1-50",
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"code,lon,lat,members\nH2,{lon},{lat},0\n")
    refused = runner.invoke(app, ["households", "import", str(bad), "--json"])
    assert refused.exit_code == 2
    assert json.loads(refused.stdout) == {
        "received": 0, "stored": 0, "unassigned": 0, "refused": 1,
        "errors": [{"row": 2, "error": "members must be a whole number 1-50"}],
    }  # fmt: skip


@pytest.fixture
def api(db, settings):
    """A client without credentials whose app trusts no token from a cache: the commands run
    in this process, and what they revoke must be refused at once."""
    auth = settings.auth.model_copy(update={"token_cache_s": 0})
    fresh = create_app(settings.model_copy(update={"auth": auth}), engine=db)
    with TestClient(fresh, client=("127.0.0.1", 50000)) as c:
        yield c


def _login(api, username, password):
    return api.post("/api/v1/auth/token", data={"username": username, "password": password})


def _me(api, token):
    return api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})


def test_users_add_prints_a_generated_password_once_and_it_logs_in(cli_env, api):
    r = runner.invoke(app, ["users", "add", "wang", "--role", "planner", "--name", "王规划"])
    assert r.exit_code == 0, r.output
    added, shown = r.stdout.splitlines()
    assert added == "added wang (planner; city-wide)"
    assert shown.startswith("password: ") and "shown once" in r.stderr
    password = shown.removeprefix("password: ")
    assert len(password) == 20
    login = _login(api, "wang", password)
    assert login.status_code == 200, login.text
    assert (login.json()["username"], login.json()["role"]) == ("wang", "planner")
    listed = runner.invoke(app, ["users", "list"])
    assert listed.exit_code == 0 and password not in listed.output
    assert listed.stdout.splitlines() == ["wang  planner      王规划  [city-wide]  (active)"]
    (user,) = json.loads(runner.invoke(app, ["users", "list", "--json"]).stdout)
    assert (user["username"], user["role"], user["disabled_at"]) == ("wang", "planner", None)
    assert "password_hash" not in user and password not in json.dumps(user)


def test_users_add_checks_role_scope_and_password_and_stores_nothing_refused(cli_env, tmp_path):
    _grids(tmp_path)
    cases = [
        (["king", "--role", "king"], "unknown role 'king'; one of: admin, dispatcher"),
        (["zhao", "--role", "worker"], "a worker is bound to one or more grids: give --grid"),
        (["zhao", "--role", "worker", "--grid", "230602001001999"], "no grid with code"),
        (["zhao", "--role", "department", "--department", "住建局"], "unknown department '住建局'"),
        (["zhao", "--role", "planner", "--district", "230602"], "only dispatchers and coord"),
        (["Zhao Li", "--role", "planner"], "a username is 2-64 characters"),
    ]
    for args, message in cases:
        r = runner.invoke(app, ["users", "add", *args])
        assert r.exit_code == 1 and message in r.output, (args, r.output)
    weak = runner.invoke(
        app,
        ["users", "add", "zhao", "--role", "planner", "--password-stdin"],
        input="password123\n",
    )
    assert weak.exit_code == 1 and "one of the most common ones" in weak.output
    empty = runner.invoke(app, ["users", "add", "zhao", "--role", "planner", "--password-stdin"])
    assert empty.exit_code == 1 and "no password on stdin" in empty.output
    assert runner.invoke(app, ["users", "list"]).stdout.startswith("no users yet")
    grid = "230602001001002"
    ok = runner.invoke(
        app,
        ["users", "add", "zhao", "--role", "worker", "--grid", grid, "--password-stdin"],
        input="Ziegel-Mond-4711\n",
    )
    assert ok.exit_code == 0, ok.output
    assert ok.stdout == f"added zhao (worker; grids {grid})\n" and "password" not in ok.output
    again = runner.invoke(app, ["users", "add", "zhao", "--role", "planner"])
    assert again.exit_code == 1 and "the username 'zhao' is taken" in again.output
    listed = runner.invoke(app, ["users", "list"])
    assert listed.stdout == f"zhao  worker       zhao  [grids {grid}]  (active)\n"


def test_passwd_ends_sessions_and_disable_ends_logins_and_tokens(cli_env, api):
    first = "Ziegel-Mond-4711"
    add = ["users", "add", "li", "--role", "dispatcher", "--district", "230602"]
    unknown = runner.invoke(app, add)
    assert unknown.exit_code == 1 and "no district with code 230602" in unknown.output
    assert runner.invoke(app, [*add[:-2], "--password-stdin"], input=first + "\n").exit_code == 0
    session = _login(api, "li", first).json()["access_token"]
    assert _me(api, session).status_code == 200
    weak = runner.invoke(app, ["users", "passwd", "li", "--password-stdin"], input="li-li-li-li\n")
    assert weak.exit_code == 1 and "must not contain the username" in weak.output
    changed = runner.invoke(
        app, ["users", "passwd", "li", "--password-stdin"], input="Kiefer-7-Nord\n"
    )
    assert changed.exit_code == 0, changed.output
    assert changed.stdout == "password of li changed; their login sessions are ended\n"
    assert _me(api, session).status_code == 401
    assert _login(api, "li", first).status_code == 401
    session = _login(api, "li", "Kiefer-7-Nord").json()["access_token"]
    off = runner.invoke(app, ["users", "disable", "li"])
    assert off.exit_code == 0 and off.stdout == "li disabled; their tokens are revoked\n"
    assert _me(api, session).status_code == 401
    assert _login(api, "li", "Kiefer-7-Nord").status_code == 401
    assert "(disabled " in runner.invoke(app, ["users", "list"]).stdout
    again = runner.invoke(app, ["users", "disable", "li"])
    assert again.exit_code == 1 and "no active user 'li'" in again.output
    nobody = runner.invoke(app, ["users", "passwd", "nobody", "--password-stdin"], input=first)
    assert nobody.exit_code == 1 and "no user 'nobody'" in nobody.output


def test_audit_prints_entries_newest_first_and_filters(cli_env, db, tmp_path):
    _grids(tmp_path)  # import.boundaries, as system
    login_as(db, "planner", username="zhou")  # a user without a password: no argon2 here
    assert runner.invoke(app, ["users", "disable", "zhou"]).exit_code == 0
    r = runner.invoke(app, ["audit"])
    assert r.exit_code == 0, r.output
    newest, imported, reassigned = r.stdout.splitlines()
    assert "  system (admin)  user.disable  user zhou  " in newest
    assert '"disabled":[false,true]' in newest and '"tokens":1' in newest  # jsonb reorders keys
    assert "  system (admin)  import.boundaries  file g.gpkg  " in imported
    assert '"added":4' in imported and "  report.reassign_all  report  " in reassigned
    only = runner.invoke(app, ["audit", "--action", "import.*", "--json"])
    (entry,) = json.loads(only.stdout)
    assert (entry["action"], entry["object_id"], entry["changes"]["added"]) == (
        "import.boundaries", "g.gpkg", 4,
    )  # fmt: skip
    assert entry["at"].startswith("20") and entry["client"] is None
    one = runner.invoke(app, ["audit", "--limit", "1"])
    assert len(one.stdout.splitlines()) == 1 and "raise --limit (now 1)" in one.stderr
    later = runner.invoke(app, ["audit", "--since", "2999-01-01"])
    assert later.exit_code == 0 and later.stdout == "no audit entries match\n"
    assert runner.invoke(app, ["audit", "--actor", "zhou"]).stdout == "no audit entries match\n"
    since = runner.invoke(app, ["audit", "--since", "2000-01-01T00:00+08:00"])
    assert len(since.stdout.splitlines()) == 3
    bad = runner.invoke(app, ["audit", "--since", "yesterday"])
    assert bad.exit_code == 1 and "--since 'yesterday' is not an ISO time" in bad.output
    assert runner.invoke(app, ["audit", "--limit", "0"]).exit_code == 1


def test_audit_since_without_offset_is_read_in_the_local_zone():
    from riskgrid.audit import parse_since

    at = parse_since("2024-08-23T10:00", "Asia/Shanghai")
    assert at.isoformat() == "2024-08-23T10:00:00+08:00"
    assert parse_since("2024-08-23T10:00Z", "Asia/Shanghai").utcoffset().total_seconds() == 0


def test_a_database_that_does_not_answer_exits_3(monkeypatch):
    from geo.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        r = runner.invoke(app, ["users", "list"])
    finally:
        get_settings.cache_clear()
    assert r.exit_code == 3 and "cannot connect to the database (" in r.output


def test_demo_writes_its_users_file_into_the_cluster_home(cli_env, monkeypatch, tmp_path):
    import boundaries.demo
    from geo.settings import get_settings

    asked = {}

    def load_demo(engine, out, tolerances, **kwargs):
        asked.update(kwargs, out=out)
        return {"users": {"added": 7}}

    monkeypatch.setattr(boundaries.demo, "load_demo", load_demo)
    monkeypatch.setenv("RISKGRID_CLUSTER__HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    r = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert r.exit_code == 0, r.output
    assert asked["users_file"] == tmp_path / "home" / "demo-users.txt"
    assert asked["auth"] == get_settings().auth and asked["out"] == tmp_path / "demo"
    assert "demo loaded in " in r.stdout


def test_db_backup_and_restore_refuse_without_force(cli_env, db, tmp_path):
    login_as(db, "admin", username="backup-admin")
    path = tmp_path / "riskgrid.dump"
    made = runner.invoke(app, ["db", "backup", str(path)])
    assert made.exit_code == 0, made.output
    assert "mode 0600" in made.output and "users 1" in made.output
    assert path.stat().st_mode & 0o777 == 0o600
    refused = runner.invoke(app, ["db", "restore", str(path)])
    assert refused.exit_code == 2 and "--force" in refused.output and "users" in refused.output
    done = runner.invoke(app, ["db", "restore", str(path), "--force"])
    assert done.exit_code == 0, done.output
    assert "users 1" in done.output and "no upgrade needed" in done.output
