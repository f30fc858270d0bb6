"""The schema head, and every way a local SQLite file can be unusable: one line, an exit code.

Each case runs the real CLI in a subprocess on a real file (so start-up migration, the
top-level error boundary and the exit code are all the product's own).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import event

from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.config import load_settings
from budget_tracker.errors import EXIT_DB_UNAVAILABLE, EXIT_SCHEMA
from budget_tracker.schema_version import SCHEMA_HEAD, known_revisions, script_location
from budget_tracker.unit_of_work import Database
from tests.cli_helpers import one_error_line


def budget(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "budget_tracker", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_head_is_the_newest_revision_file() -> None:
    names = sorted(p.name for p in (script_location() / "versions").glob("[0-9]*_*.py"))
    assert names[-1].split("_")[0] == SCHEMA_HEAD
    assert known_revisions()[-1] == SCHEMA_HEAD


def test_a_new_database_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "budget.db"
    result = budget(["add-expense", "1.00", "Food", "x"], {"BUDGET_DB_PATH": str(path)})
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # SQLite gives its side files the database file's mode.
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            assert stat.S_IMODE(side.stat().st_mode) == 0o600, suffix


def test_db_check_warns_when_others_can_read_the_file(tmp_path: Path) -> None:
    path = tmp_path / "budget.db"
    env = {"BUDGET_DB_PATH": str(path)}
    assert budget(["report"], env).returncode == 0
    path.chmod(0o644)
    result = budget(["db", "check"], env)
    assert result.returncode == 0, result.stdout
    assert f"warning: other users can read this file (chmod 600 {path})" in result.stdout
    path.chmod(0o600)
    assert "warning" not in budget(["db", "check"], env).stdout


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 200)
    result = budget(["report"], {"BUDGET_DB_PATH": str(path)})
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert one_error_line(result) == (
        f"Error: {path} is not a usable Budget Tracker database (file is not a database): "
        "move it away, or set BUDGET_DB_PATH to another file"
    )
    assert path.read_text().startswith("these are my notes")  # untouched
    check = budget(["db", "check"], {"BUDGET_DB_PATH": str(path)})
    assert check.returncode == EXIT_DB_UNAVAILABLE
    assert "FAIL  connection     the SQLite file is not a usable Budget Tracker database" in (
        check.stdout
    )
    assert "Traceback" not in check.stderr


def test_a_directory(tmp_path: Path) -> None:
    result = budget(["report"], {"BUDGET_DB_PATH": str(tmp_path)})
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert one_error_line(result) == (
        f"Error: the database path {tmp_path} is a directory, not a file: set BUDGET_DB_PATH "
        "to a file name"
    )


def test_a_path_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    path = blocker / "budget.db"
    result = budget(["report"], {"BUDGET_DB_PATH": str(path)})
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert one_error_line(result) == (
        f"Error: cannot create the database file {path} (Not a directory): set BUDGET_DB_PATH "
        "to a writable location"
    )


def test_a_file_from_a_newer_version(tmp_path: Path) -> None:
    path = tmp_path / "budget.db"
    env = {"BUDGET_DB_PATH": str(path)}
    assert budget(["report"], env).returncode == 0
    newer = f"{int(SCHEMA_HEAD) + 1:04d}"
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (newer,))
    message = (
        f"the database was written by a newer version of budget (schema revision {newer}; "
        f"this version knows up to {SCHEMA_HEAD}): upgrade budget"
    )
    result = budget(["report"], env)
    assert result.returncode == EXIT_SCHEMA
    assert one_error_line(result) == f"Error: {message}"
    current = budget(["db", "current"], env)
    assert (current.returncode, current.stdout) == (EXIT_SCHEMA, f"{newer}\n")
    assert current.stderr == f"Error: {message}\n"
    check = budget(["db", "check"], env)
    assert check.returncode == EXIT_SCHEMA
    assert f"FAIL  schema         {message}" in check.stdout


def test_db_check_on_sqlite_never_migrates(tmp_path: Path) -> None:
    # A missing file stays missing, and an old one stays old: `db check` and `db current`
    # report the same revision.
    path = tmp_path / "budget.db"
    env = {"BUDGET_DB_PATH": str(path)}
    check = budget(["db", "check"], env)
    assert check.returncode == EXIT_SCHEMA
    assert f"FAIL  schema         revision none, code head {SCHEMA_HEAD}" in check.stdout
    assert not path.exists()
    current = budget(["db", "current"], env)
    assert (current.returncode, current.stdout) == (EXIT_SCHEMA, "none\n")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES ('0001')")
    check = budget(["db", "check"], env)
    assert check.returncode == EXIT_SCHEMA
    assert f"FAIL  schema         revision 0001, code head {SCHEMA_HEAD}" in check.stdout
    current = budget(["db", "current"], env)
    assert (current.returncode, current.stdout) == (EXIT_SCHEMA, "0001\n")


def test_a_full_disk_is_one_line_and_nothing_written(tmp_path: Path) -> None:
    # SQLite reports SQLITE_FULL when a write needs more pages than it may use, exactly as
    # when the disk itself is full; capping the page count produces it without a full disk.
    settings = load_settings({"BUDGET_DB_PATH": str(tmp_path / "budget.db")})
    database = Database(settings)
    try:
        CliRunner().invoke(main, ["report"], obj=AppState(database=database))

        @event.listens_for(database.engine, "connect")
        def _cap(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

        database.engine.dispose()
        # Pages already allocated still have room for a few rows; keep adding until the
        # file would have to grow.
        added = 0
        for _ in range(200):
            result = CliRunner().invoke(
                main, ["add-expense", "1.00", "Food", "x" * 200], obj=AppState(database=database)
            )
            if result.exit_code != 0:
                break
            added += 1
        assert result.exit_code == EXIT_DB_UNAVAILABLE, result.output
        assert result.stderr == (
            "Error: the disk holding the database is full: free some space, then run the "
            "command again (nothing was written) (database or disk is full)\n"
        )
        listing = CliRunner().invoke(
            main, ["expenses", "--format", "json"], obj=AppState(database=database)
        )
        assert listing.stdout.count('"id"') == added
    finally:
        database.close()
