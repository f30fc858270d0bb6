"""`budget db check|upgrade|current` on both backends, healthy and broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.config import load_settings
from budget_tracker.errors import EXIT_CONFIG, EXIT_DB_UNAVAILABLE, EXIT_SCHEMA
from budget_tracker.models import TABLE_NAMES
from budget_tracker.schema_version import SCHEMA_HEAD
from budget_tracker.services.health import endpoints_step, tls_step, url_step
from budget_tracker.unit_of_work import Database
from tests.conftest import (
    PG_PASSWORD,
    Backend,
    create_pg_database,
    drop_pg_database,
    pg_env,
)

STEPS = [
    "configuration",
    "url",
    "endpoints",
    "connection",
    "tls",
    "server",
    "role",
    "schema",
    "tables",
    "round-trip",
    "data",
    "pool",
]
NEON_POOLED = (
    "postgresql://alex:s3cret@ep-cool-rain-123456-pooler.us-east-2.aws.neon.tech/neondb"
    "?sslmode=require&channel_binding=require"
)


def marks(result: Result) -> dict[str, str]:
    """Step name -> PASS/FAIL/SKIP from the human output."""
    found = {}
    for line in result.stdout.splitlines():
        mark, name, _detail = line.split(maxsplit=2)
        found[name] = mark
    return found


def owner_warning(backend_name: str) -> dict[str, str]:
    """The tests connect as the tables' owner: on PostgreSQL the role step warns."""
    return {"role": "WARN"} if backend_name == "postgresql" else {}


def invoke(database: Database, args: list[str]) -> Result:
    return CliRunner().invoke(main, args, obj=AppState(database=database))


@pytest.fixture
def empty_pg(pg_server: None) -> Iterator[tuple[str, Database]]:
    """A PostgreSQL database with no schema, reached through PgBouncer."""
    name = create_pg_database("budget_dbcmd")
    database = Database(load_settings(pg_env(name)))
    try:
        yield name, database
    finally:
        database.close()
        drop_pg_database(name)


def test_check_passes_on_a_migrated_database(backend: Backend) -> None:
    result = backend.invoke(["db", "check"])
    assert result.exit_code == 0, result.output
    assert marks(result) == {name: "PASS" for name in STEPS} | owner_warning(backend.name)
    assert result.stderr == ""
    if backend.name == "postgresql":
        assert PG_PASSWORD not in result.stdout
        lines = result.stdout.splitlines()
        assert lines[1].startswith(
            "PASS  url            driver postgresql+psycopg2, user budget, password ***, "
            "host 127.0.0.1, port 6432, database budget_test_"
        )
        assert lines[2] == (
            "PASS  endpoints      not a Neon pooled endpoint; migrations use 127.0.0.1:5432 "
            "(DATABASE_URL_UNPOOLED)"
        )
        assert lines[4] == (
            "PASS  tls            app: not required on loopback (sslmode=unset); migrations: "
            "not required on loopback (sslmode=unset); connection encrypted: no"
        )
        assert lines[5].startswith("PASS  server         PostgreSQL ")
        assert lines[6].startswith("WARN  role           connected as budget, ")
        assert lines[6].endswith(
            ": row-level security does not apply to this connection (fine for one person; "
            "give each person a role with `budget db grant ROLE`)"
        )
    else:
        assert "PASS  endpoints      not applicable (SQLite: no pooler)" in result.stdout
    assert f"PASS  schema         revision {SCHEMA_HEAD} = code head {SCHEMA_HEAD}" in result.stdout
    # The round trip was rolled back: nothing was written.
    assert backend.snapshot()["users"] == []
    assert "PASS  data           rows: users 0, categories 0, expenses 0" in result.stdout


def test_check_counts_the_rows_of_every_table(backend: Backend) -> None:
    assert backend.invoke(["add-expense", "12.50", "Food"]).exit_code == 0
    result = backend.invoke(["db", "check", "--format", "json"])
    data = {step["step"]: step for step in json.loads(result.stdout)["steps"]}["data"]
    assert data["status"] == "pass"
    assert set(data["rows"]) == set(TABLE_NAMES)
    assert data["rows"] | {"users": 1, "categories": 4, "expenses": 1} == data["rows"]


def test_check_json(backend: Backend) -> None:
    result = backend.invoke(["db", "check", "--format", "json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["exit_code"] == 0
    assert [step["step"] for step in report["steps"]] == STEPS
    statuses = {step["step"]: step["status"] for step in report["steps"]}
    assert statuses == {name: "pass" for name in STEPS} | {
        name: mark.lower() for name, mark in owner_warning(backend.name).items()
    }
    by_name = {step["step"]: step for step in report["steps"]}
    assert by_name["schema"]["revision"] == SCHEMA_HEAD
    assert isinstance(by_name["connection"]["select_1_ms"], float)
    pool = by_name["pool"]
    assert pool["checked_out"] == 0
    if backend.name == "postgresql":
        assert by_name["url"]["url"]["password"] == "***"
        assert by_name["url"]["url"]["port"] == 6432
        assert pool["configured"]["size"] == 5
        assert PG_PASSWORD not in result.stdout


def test_check_on_an_unmigrated_database(empty_pg: tuple[str, Database]) -> None:
    _name, database = empty_pg
    result = invoke(database, ["db", "check"])
    assert result.exit_code == EXIT_SCHEMA
    assert marks(result) == {
        **{name: "PASS" for name in STEPS},
        "schema": "FAIL",
        "tables": "FAIL",
        "round-trip": "SKIP",
        "data": "SKIP",
    }
    assert (
        f"FAIL  schema         revision none, code head {SCHEMA_HEAD}: run `budget db upgrade`"
        in result.stdout
    )
    assert (
        f"FAIL  tables         missing: {', '.join(TABLE_NAMES)}: run `budget db upgrade`"
        in result.stdout
    )
    steps = json.loads(invoke(database, ["db", "check", "--format", "json"]).stdout)["steps"]
    schema = {step["step"]: step for step in steps}["schema"]
    assert schema["detail"] == f"revision none, code head {SCHEMA_HEAD}: run `budget db upgrade`"


def test_check_when_the_server_is_unreachable(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "budget_tracker", "db", "check", "--format", "json"],
        env={**os.environ, "DATABASE_URL": "postgresql://budget:s3cret@127.0.0.1:1/budget"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == EXIT_DB_UNAVAILABLE
    report = json.loads(result.stdout)
    statuses = {step["step"]: step["status"] for step in report["steps"]}
    assert statuses == {
        "configuration": "pass",
        "url": "pass",
        "endpoints": "pass",
        "connection": "fail",
        "tls": "pass",
        "server": "skip",
        "role": "skip",
        "schema": "skip",
        "tables": "skip",
        "round-trip": "skip",
        "data": "skip",
        "pool": "pass",
    }
    assert report["steps"][3]["detail"].startswith("cannot reach the database server")
    assert "s3cret" not in result.stdout + result.stderr


def test_upgrade_and_current_on_postgresql(empty_pg: tuple[str, Database]) -> None:
    name, database = empty_pg
    current = invoke(database, ["db", "current"])
    assert current.exit_code == EXIT_SCHEMA
    assert current.stdout == "none\n"
    assert current.stderr == (
        f"Error: the database is at revision none, this version's head is {SCHEMA_HEAD}: "
        "run `budget db upgrade`\n"
    )

    upgraded = invoke(database, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stderr == (
        f"upgraded postgresql+psycopg2://budget:***@127.0.0.1:5432/{name} from revision none "
        f"to {SCHEMA_HEAD} (head)\n"
    )
    again = invoke(database, ["db", "upgrade"])
    assert again.exit_code == 0
    assert again.stderr == (
        f"postgresql+psycopg2://budget:***@127.0.0.1:5432/{name} is already at revision "
        f"{SCHEMA_HEAD} (head)\n"
    )

    current = invoke(database, ["db", "current"])
    assert (current.exit_code, current.stdout) == (0, f"{SCHEMA_HEAD} (head)\n")
    assert invoke(database, ["db", "check"]).exit_code == 0


def test_upgrade_and_current_on_a_new_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "budget.db"
    database = Database(load_settings({"BUDGET_DB_PATH": str(path)}))
    try:
        current = invoke(database, ["db", "current"])
        assert (current.exit_code, current.stdout) == (EXIT_SCHEMA, "none\n")
        assert not path.exists()  # looking did not create the file
        assert invoke(database, ["db", "upgrade"]).exit_code == 0
        current = invoke(database, ["db", "current"])
        assert (current.exit_code, current.stdout) == (0, f"{SCHEMA_HEAD} (head)\n")
    finally:
        database.close()


# --- steps that need no connection -------------------------------------------------------


def test_endpoints_neon_pooled_with_a_derived_direct_url() -> None:
    step = endpoints_step(load_settings({"DATABASE_URL": NEON_POOLED}))
    assert step.status == "pass"
    assert step.detail == (
        "app uses Neon's pooled endpoint; migrations use direct "
        "ep-cool-rain-123456.us-east-2.aws.neon.tech:5432 (derived by dropping -pooler)"
    )


def test_endpoints_refuse_migrations_through_the_pooler() -> None:
    settings = load_settings({"DATABASE_URL": NEON_POOLED, "DATABASE_URL_UNPOOLED": NEON_POOLED})
    step = endpoints_step(settings)
    assert (step.status, step.exit_code) == ("fail", EXIT_CONFIG)
    assert step.detail.startswith("migrations would run through the pooler")


def test_endpoints_neon_direct_app_url_passes_with_advice() -> None:
    direct = NEON_POOLED.replace("-pooler", "")
    step = endpoints_step(load_settings({"DATABASE_URL": direct}))
    assert step.status == "pass"
    assert step.detail.startswith("app uses Neon's direct endpoint (works; the -pooler URL")


def test_tls_for_neon_without_a_connection() -> None:
    step = tls_step(load_settings({"DATABASE_URL": NEON_POOLED}), None)
    assert step.status == "pass"
    assert step.detail == "app: sslmode=require; migrations: sslmode=require"


def test_url_step_masks_the_password() -> None:
    step = url_step(load_settings({"DATABASE_URL": NEON_POOLED}).database_url)
    assert "s3cret" not in step.detail + repr(step.data)
    assert step.detail == (
        "driver postgresql+psycopg2, user alex, password ***, host "
        "ep-cool-rain-123456-pooler.us-east-2.aws.neon.tech, port 5432, database neondb, "
        "parameters sslmode=require channel_binding=require"
    )


def test_check_names_the_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = tmp_path / "from-dotenv.db"
    (tmp_path / ".env").write_text(f"BUDGET_DB_PATH={db_path}\n")
    monkeypatch.chdir(tmp_path)

    def budget(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "budget_tracker", *args],
            env={k: v for k, v in os.environ.items() if k != "BUDGET_DB_PATH"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )

    assert budget("db", "upgrade").returncode == 0  # `db check` itself never migrates
    result = budget("db", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == (
        f"PASS  configuration  variables set: BUDGET_DB_PATH; .env file: {tmp_path / '.env'} "
        f"(DATABASE_URL unset: local SQLite file {db_path})"
    )
