"""`budget db copy`, `budget backup` and `budget restore` on real SQLite files and a real
PostgreSQL reached through PgBouncer: round trips of a budget that uses every feature,
with every report compared, and the refusals (nothing written, one line)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import pty
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import click.testing
import pytest
from alembic.script import ScriptDirectory
from hypothesis import given
from hypothesis import strategies as st

from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.config import load_settings
from budget_tracker.migrate import alembic_config, head_revision, upgrade
from budget_tracker.models import TABLE_NAMES
from budget_tracker.money import from_cents
from budget_tracker.services.portable import (
    _COPY_TEXT,
    NOT_COPIED,
    TableShape,
    engine_for,
    resolve_endpoint,
    row_encoder,
    write_backup,
)
from budget_tracker.unit_of_work import Database
from tests.cli_helpers import kept_sums_match_expenses, ok
from tests.conftest import (
    PG_DIRECT,
    PG_POOLED,
    Backend,
    create_pg_database,
    drop_pg_database,
    pg_env,
    pg_url,
)

EMAILS = ("ana@example.com", "ben@example.com")
MONTHS = ("2025-11", "2025-12", "2026-01", "2026-02", "2026-03")

CARRIED = sum(name not in NOT_COPIED for name in TABLE_NAMES)
"""How many tables a copy or backup carries: every table of the schema but bookkeeping."""


def budget(*args: str, input: str | None = None) -> click.testing.Result:
    """`budget ARGS` with the environment's settings (a fresh process-like state)."""
    return click.testing.CliRunner().invoke(
        main, list(args), input=input, obj=AppState(), catch_exceptions=False
    )


def sqlite_backend(path: Path) -> Backend:
    env = {"DATABASE_URL": f"sqlite:///{path}"}
    settings = load_settings(env)
    return Backend("sqlite", env, settings, Database(settings), settings.migration_url)


def pg_backend(name: str) -> Backend:
    env = pg_env(name)
    settings = load_settings(env)
    return Backend("postgresql", env, settings, Database(settings), settings.migration_url)


@pytest.fixture
def pg_names(pg_server: None) -> Iterator[list[str]]:
    """Empty, unmigrated PostgreSQL databases made by the test; dropped afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        drop_pg_database(name)


def new_pg(names: list[str]) -> str:
    name = create_pg_database("budget_portable")
    names.append(name)
    return name


def pooled(name: str) -> str:
    return pg_url(PG_POOLED, name).render_as_string(hide_password=False)


def direct(name: str) -> str:
    return pg_url(PG_DIRECT, name).render_as_string(hide_password=False)


def seed_every_feature(backend: Backend, tmp_path: Path) -> None:
    """Two users; budgets, colours, edits, deletions, transfers and undos, renames,
    a merge, an import with fingerprints, and text that is not plain ASCII."""
    ana = ("--user", EMAILS[0])
    ben = ("--user", EMAILS[1])
    steps: list[tuple[str, ...]] = [
        ("user", "add", EMAILS[0], "--name", "Ana"),
        ("user", "add", EMAILS[1], "--name", "Ben Ünal"),
        ("category", "add", "Food", "--budget", "300", "--from", "2025-11", "--color", "#ff8800",
         *ana),
        ("category", "add", "Rent", "--budget", "960", "--from", "2025-11", *ana),
        ("category", "add", "Fun", "--budget", "50.25", "--from", "2025-11", *ana),
        ("category", "add", "Gifts", *ana),
        ("category", "add", "Food", "--budget", "120.10", "--from", "2025-11", *ben),
        ("category", "add", "Travel", *ben),
        ("add-expense", "12.50", "Food", "Lunch", "--date", "2025-11-03", *ana),
        ("add-expense", "900", "rent", "November", "--date", "2025-11-01", *ana),
        ("add-expense", "3.99", "Fun", "to be deleted", "--date", "2025-12-24", *ana),
        ("add-expense", "45.10", "Gifts", "Geschenk für Oma 🎁", "--date", "2025-12-20", *ana),
        ("add-expense", "19.99", "Fun", "it's \"quoted\"; DROP TABLE x", "--date", "2026-01-09",
         *ana),
        ("add-expense", "7", "food", "", "--date", "2026-02-28", *ben),
        ("add-expense", "250", "Travel", "Zug – Zürich 🚆", "--date", "2026-03-01", *ben),
        ("edit-expense", "1", "--amount", "13.20", "--description", "Lunch with Ben", *ana),
        ("delete-expense", "3", "--yes", *ana),
        ("transfer", "40", "--from", "Rent", "--to", "Food", "--month", "2026-02",
         "--note", "birthday dinner", *ana),
        ("transfer", "10", "--from", "Fun", "--to", "Gifts", "--month", "2025-12",
         "--allow-overdraw", *ana),
        ("transfer", "--undo", "1", *ana),
        ("transfer", "5", "--from", "Food", "--to", "Travel", "--month", "2026-03", *ben),
        ("category", "set-rollover", "Food", "on", "--from", "2025-11", *ana),
        ("category", "set-rollover", "Food", "off", "--from", "2026-02", *ana),
        ("category", "set-rollover", "Fun", "on", "--from", "2025-12", *ana),
        ("category", "rename", "Fun", "Leisure", *ana),
        ("category", "set-budget", "Travel", "80", *ben),
    ]  # fmt: skip
    for args in steps:
        ok(backend.invoke(args))
    statement = tmp_path / "bank.csv"
    statement.write_text(
        "date,amount,category,description\n"
        "2026-01-15,23.40,Food,Market\n"
        "2026-01-15,23.40,Food,Market\n"
        "2026-02-02,60.00,Books,New category\n",
        encoding="utf-8",
    )
    ok(backend.invoke(["import", str(statement), "--create-categories", *ana]))
    # An import profile travels with the user's data.
    ok(backend.invoke(["import", str(statement), "--date-format", "%Y-%m-%d", "--save-profile",
                       "Sparkasse Girokonto", *ana]))  # fmt: skip
    ok(backend.invoke(["category", "merge", "Gifts", "--into", "Leisure", *ana]))
    # The newest expense deleted: where ids are never reused, the next id stays past it.
    added = ok(backend.invoke(["add-expense", "1.11", "Food", "gone", *ana])).stdout
    ok(backend.invoke(["delete-expense", added.split(":")[0].split()[-1], "--yes", *ana]))


def every_report(backend: Backend) -> dict[str, Any]:
    """Everything a user can read: every month's report, the trend, listings, users, import
    profiles."""
    out: dict[str, Any] = {"users": backend.invoke(["user", "list"]).stdout}
    for email in EMAILS:
        user = ("--user", email)
        out[f"{email} import profiles"] = [
            ok(backend.invoke(["import-profile", "list", *user])).stdout,
            backend.invoke(["import-profile", "show", "Sparkasse Girokonto", *user]).output,
        ]
        for month in MONTHS:
            out[f"{email} {month}"] = json.loads(
                ok(backend.invoke(["report", "--month", month, "--top", "5", "--format", "json",
                                   *user])).stdout
            )  # fmt: skip
            out[f"{email} categories {month}"] = json.loads(
                ok(backend.invoke(["category", "list", "--month", month, "--format", "json",
                                   *user])).stdout
            )  # fmt: skip
        out[f"{email} trend"] = json.loads(
            ok(backend.invoke(["report", "--by", "month", "--from", MONTHS[0], "--to",
                               MONTHS[-1], "--format", "json", *user])).stdout
        )  # fmt: skip
        for listing in ("expenses", "transfers"):
            # The transfer listing shows created_at as the driver returns it: naive UTC
            # from SQLite, "+00:00" from PostgreSQL; the same instant either way.
            text = ok(backend.invoke([listing, "--format", "json", *user])).stdout
            out[f"{email} {listing}"] = json.loads(text.replace('+00:00"', '"'))
    return out


def backup_bytes(backend: Backend) -> bytes:
    engine = engine_for(backend.settings, backend.url)
    out = _Sink()
    try:
        write_backup(engine, out)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    return out.data


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        return len(chunk)


def copy(source: str, target: str, *extra: str) -> click.testing.Result:
    return budget("db", "copy", "--from", source, "--to", target, *extra)


def test_sqlite_to_postgresql_through_pgbouncer_and_back(
    tmp_path: Path, pg_names: list[str]
) -> None:
    origin = sqlite_backend(tmp_path / "origin.db")
    seed_every_feature(origin, tmp_path)
    before = every_report(origin)
    name = new_pg(pg_names)

    result = copy(f"sqlite:///{tmp_path / 'origin.db'}", pooled(name), "--to-direct", direct(name))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("Copied sqlite+pysqlite:///")
    assert "budget:***@127.0.0.1:6432/" in result.stdout.splitlines()[0]
    assert "budget-test" not in result.output
    assert result.stdout.splitlines()[-1].startswith(
        f"Verified: row counts and checksums of {CARRIED} tables, and "
    )
    assert "  expenses  " in result.stdout or "expenses" in result.stdout
    assert result.stderr == ""  # no progress bar off a terminal

    remote = pg_backend(name)
    assert every_report(remote) == before
    # The per-month sums were rebuilt from the loaded expenses, not copied besides them.
    kept_sums_match_expenses(remote)

    back = tmp_path / "back.db"
    result = copy(pooled(name), f"sqlite:///{back}")
    assert result.exit_code == 0, result.stderr
    returned = sqlite_backend(back)
    assert every_report(returned) == before
    kept_sums_match_expenses(returned)
    # The same bytes from all three: ids, keys, timestamps and sequences carried.
    assert backup_bytes(origin) == backup_bytes(remote) == backup_bytes(returned)

    # Ids were kept and the sequences moved past them: the next ids are the same.
    added = [
        ok(db.invoke(["add-expense", "1", "Food", "--user", EMAILS[0]])).stdout
        for db in (origin, remote, returned)
    ]
    assert added[0].split(":")[0] == added[1].split(":")[0] == added[2].split(":")[0]
    for db in (origin, remote, returned):
        db.database.close()


def test_backup_restore_backup_is_byte_identical_on_both_backends(
    tmp_path: Path, pg_names: list[str]
) -> None:
    origin = sqlite_backend(tmp_path / "origin.db")
    seed_every_feature(origin, tmp_path)
    before = every_report(origin)
    first = tmp_path / "first.jsonl.gz"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", origin.env["DATABASE_URL"])
        result = budget("backup", str(first))
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("Backed up ")
    assert f"of {CARRIED} tables (schema revision {head_revision()}) to {first}" in result.stderr
    lines = gzip.decompress(first.read_bytes()).splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "budget-tracker-backup"
    assert header["schema_revision"] == head_revision()
    assert b'"13.20"' in gzip.decompress(first.read_bytes())  # amounts are strings

    name = new_pg(pg_names)
    targets = {
        "postgresql": (pg_env(name), pg_backend(name)),
        "sqlite": ({"DATABASE_URL": f"sqlite:///{tmp_path / 'restored.db'}"}, None),
    }
    for kind, (env_vars, _backend) in targets.items():
        with pytest.MonkeyPatch.context() as env:
            for key, value in env_vars.items():
                env.setenv(key, value)
            result = budget("restore", str(first))
            assert result.exit_code == 0, (kind, result.stderr)
            assert result.stdout.splitlines()[-1] == (
                f"Verified: row counts and checksums of {CARRIED} tables equal the backup's."
            )
            again = tmp_path / f"again-{kind}.jsonl.gz"
            assert budget("backup", str(again)).exit_code == 0
        assert again.read_bytes() == first.read_bytes(), kind
    assert every_report(pg_backend(name)) == before
    assert every_report(sqlite_backend(tmp_path / "restored.db")) == before


def test_backup_to_stdout_and_restore_from_stdin(tmp_path: Path, pg_names: list[str]) -> None:
    origin = sqlite_backend(tmp_path / "origin.db")
    ok(origin.invoke(["add-expense", "12.50", "Food", "Lunch"]))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", origin.env["DATABASE_URL"])
        dumped = budget("backup", "-")
    assert dumped.exit_code == 0
    assert dumped.stdout.startswith('{"format":"budget-tracker-backup","version":1,')
    name = new_pg(pg_names)
    with pytest.MonkeyPatch.context() as env:
        for key, value in pg_env(name).items():
            env.setenv(key, value)
        restored = budget("restore", "-", input=dumped.stdout)
    assert restored.exit_code == 0, restored.stderr
    assert pg_backend(name).scalar("SELECT description FROM expenses WHERE id = 1") == "Lunch"


def previous_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config())
    down = script.get_revision(head_revision()).down_revision
    assert isinstance(down, str)
    return down


def test_restore_of_a_backup_written_at_the_previous_schema_revision(
    tmp_path: Path, pg_names: list[str]
) -> None:
    old = tmp_path / "old.db"
    upgrade(load_settings({"DATABASE_URL": f"sqlite:///{old}"}).migration_url, previous_revision())
    import sqlite3

    connection = sqlite3.connect(old)
    connection.executescript(
        "INSERT INTO users (id, email, name) VALUES (1, 'ana@example.com', 'Ana');"
        "INSERT INTO categories (id, user_id, name, name_key, monthly_budget) "
        "VALUES (1, 1, 'Food', 'food', 30000), (2, 1, 'Rent', 'rent', 96000);"
        "INSERT INTO expenses (id, user_id, category_id, amount, description, spent_on) "
        "VALUES (1, 1, 1, 1250, 'Lunch', '2026-01-05'), (7, 1, 2, 90000, 'Rent', '2026-01-01');"
    )
    connection.commit()
    connection.close()
    settings = load_settings({"DATABASE_URL": f"sqlite:///{old}"})
    engine = engine_for(settings, settings.database_url)
    path = tmp_path / "old.jsonl"
    with path.open("wb") as out:
        write_backup(engine, out)
    engine.dispose()
    assert json.loads(path.read_text().splitlines()[0])["schema_revision"] == previous_revision()

    name = new_pg(pg_names)
    for env_vars in (pg_env(name), {"DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}):
        with pytest.MonkeyPatch.context() as env:
            for key, value in env_vars.items():
                env.setenv(key, value)
            result = budget("restore", str(path))
            assert result.exit_code == 0, result.stderr
            assert (
                f"(schema revision {previous_revision()}, upgraded to {head_revision()})"
                in result.stdout
            )
            assert budget("db", "current").stdout == f"{head_revision()} (head)\n"
            report = json.loads(
                ok(budget("report", "--month", "2026-01", "--format", "json")).stdout
            )
            assert report["totals"]["spent"] == "912.50"
            assert ok(budget("add-expense", "1", "Food")).stdout.startswith("Added expense 8:")


# --- Refusals: one line, the right code, nothing written ---------------------------------


def test_copy_into_a_database_with_data_is_refused(backend: Backend, tmp_path: Path) -> None:
    ok(backend.invoke(["add-expense", "5", "Food", "theirs"]))
    before = backend.snapshot()
    origin = sqlite_backend(tmp_path / "origin.db")
    ok(origin.invoke(["add-expense", "7", "Food", "mine"]))
    target = str(backend.url.render_as_string(hide_password=False))
    result = copy(f"sqlite:///{tmp_path / 'origin.db'}", target)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the target database is not empty (")
    assert "users 1, categories 4, expenses 1" in result.stderr
    assert result.stderr.endswith(
        "): copying into it would merge two budgets, which is not supported; use an empty "
        "database\n"
    )
    assert result.stdout == ""
    assert backend.snapshot() == before


def test_restore_into_a_database_with_data_is_refused(backend: Backend, tmp_path: Path) -> None:
    origin = sqlite_backend(tmp_path / "origin.db")
    ok(origin.invoke(["add-expense", "7", "Food", "mine"]))
    path = tmp_path / "b.jsonl"
    path.write_bytes(backup_bytes(origin))
    ok(backend.invoke(["add-expense", "5", "Food", "theirs"]))
    before = backend.snapshot()
    result = budget("restore", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the target database is not empty (")
    assert "users 1, " in result.stderr
    assert result.stderr.count("\n") == 1
    assert backend.snapshot() == before


def test_copy_to_an_unreachable_server_is_refused(tmp_path: Path) -> None:
    origin = sqlite_backend(tmp_path / "origin.db")
    ok(origin.invoke(["add-expense", "7", "Food"]))
    result = copy(
        f"sqlite:///{tmp_path / 'origin.db'}", "postgresql://budget:s3cret@127.0.0.1:1/nowhere"
    )
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: cannot reach the database server")
    assert result.stderr.count("\n") == 1
    assert "s3cret" not in result.output


def test_copy_needs_two_different_databases(tmp_path: Path) -> None:
    origin = sqlite_backend(tmp_path / "origin.db")
    ok(origin.invoke(["add-expense", "7", "Food"]))
    url = f"sqlite:///{tmp_path / 'origin.db'}"
    result = copy(url, url)
    assert result.exit_code == 2
    assert result.stderr == "Error: --from and --to name the same database\n"


def test_copy_from_a_database_behind_this_version_says_to_upgrade_it(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    upgrade(load_settings({"DATABASE_URL": f"sqlite:///{old}"}).migration_url, previous_revision())
    result = copy(f"sqlite:///{old}", f"sqlite:///{tmp_path / 'target.db'}")
    assert (result.exit_code, result.stderr) == (
        4,
        f"Error: the source database is at schema revision {previous_revision()}, this "
        f"version's head is {head_revision()}: run `budget db upgrade` on it first\n",
    )


def test_copy_from_a_missing_local_file_is_refused(tmp_path: Path) -> None:
    result = copy("local", f"sqlite:///{tmp_path / 'target.db'}")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the source SQLite file ")
    assert not (tmp_path / "target.db").exists()


def damaged_backups(good: bytes) -> dict[str, tuple[bytes, str]]:
    lines = good.splitlines(keepends=True)
    return {
        "cut between lines": (b"".join(lines[:-3]), "is truncated (its end record is missing)"),
        "cut inside a line": (good[: len(good) - len(lines[-1]) - 5], "is truncated"),
        "a changed amount": (good.replace(b'"7.00"', b'"8.00"'), "do not match the counts"),
        "gzip cut short": (gzip.compress(good, mtime=0)[:-30], "is damaged"),
        "a CSV file": (b"date,amount,category\n2026-01-01,3.00,Food\n", "is not a Budget"),
        "an empty file": (b"", "is empty"),
        "another JSON file": (b'{"expenses": []}\n', "is not a Budget Tracker backup"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "cut between lines",
        "cut inside a line",
        "a changed amount",
        "gzip cut short",
        "a CSV file",
        "an empty file",
        "another JSON file",
    ],
)
def test_a_damaged_or_foreign_file_is_refused_and_nothing_is_written(
    case: str, tmp_path: Path, pg_names: list[str]
) -> None:
    origin = sqlite_backend(tmp_path / "origin.db")
    ok(origin.invoke(["add-expense", "7", "Food"]))
    data, message = damaged_backups(backup_bytes(origin))[case]
    path = tmp_path / "file"
    path.write_bytes(data)
    name = new_pg(pg_names)
    for env_vars in (pg_env(name), {"DATABASE_URL": f"sqlite:///{tmp_path / 'target.db'}"}):
        with pytest.MonkeyPatch.context() as env:
            for key, value in env_vars.items():
                env.setenv(key, value)
            result = budget("restore", str(path))
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"Error: {path} "), result.stderr
        assert message in result.stderr
        assert result.stderr.count("\n") == 1
    # Not even the schema: the migration shared the transaction that rolled back.
    assert (
        pg_backend(name).scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    )
    target = tmp_path / "target.db"
    if target.exists():
        import sqlite3

        connection = sqlite3.connect(target)
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        connection.close()
        assert tables == []


def test_restore_of_a_missing_file(tmp_path: Path) -> None:
    result = budget("restore", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2
    assert "nope.jsonl" in result.stderr


def test_a_failed_backup_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://budget:s3cret@127.0.0.1:1/nowhere")
    result = budget("backup", str(tmp_path / "b.jsonl"))
    assert result.exit_code == 3
    assert list(tmp_path.iterdir()) == []


def test_a_new_backup_file_is_private_and_an_existing_one_keeps_its_bits(
    backend: Backend, tmp_path: Path
) -> None:
    ok(backend.invoke(["add-expense", "5", "Food", "lunch"]))
    target = tmp_path / "budget.jsonl"
    previous = os.umask(0o022)  # a plainly created file would be 0644
    try:
        ok(backend.invoke(["backup", str(target)]))
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        target.chmod(0o644)
        ok(backend.invoke(["backup", str(target)]))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert target.read_bytes() == backup_bytes(backend)
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_copy_into_the_local_file(tmp_path: Path) -> None:
    """`local` names the embedded SQLite file on either side of a copy."""
    origin = sqlite_backend(tmp_path / "origin.db")
    ok(origin.invoke(["add-expense", "7", "Food"]))
    shutil.copy(tmp_path / "origin.db", tmp_path / "spare.db")
    result = copy(f"sqlite:///{tmp_path / 'origin.db'}", "local")
    assert result.exit_code == 0, result.stderr
    assert "budget-tracker/budget.db" in result.stdout.splitlines()[0]
    local = budget("expenses", "--format", "json")
    assert json.loads(local.stdout)["count"] == 1


@given(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.text(),
    st.dates(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.booleans(),
)
def test_a_row_line_is_compact_json(
    cents: int, words: str, day: dt.date, moment: dt.datetime, flag: bool
) -> None:
    """Row lines are built by hand for speed; they are exactly json.dumps's compact form."""
    shape = TableShape(
        "t",
        ("a", "b", "c", "d", "e", "f", "g"),
        ("integer", "money", "string", "date", "timestamp", "boolean", "string"),
        ("a",),
        "a",
    )
    row = (cents, cents, words, day, moment, flag, None)
    line = shape.encode(row)
    amount = f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"
    stamp = moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    expected = [cents, amount, words, day.isoformat(), stamp, flag, None]
    assert line == (json.dumps(expected, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    assert json.loads(line)[1] == str(from_cents(cents))
    # A copy encodes each row once for both the checksum and COPY: the same line, and the
    # COPY text that the per-value spelling (used for a restore's rows) gives.
    both = row_encoder(shape.kinds, copy_text=True)(row)
    spelled = [
        "\\N" if value is None else _COPY_TEXT[kind](value)
        for kind, value in zip(shape.kinds, row, strict=True)
    ]
    assert both == (line, "\t".join(spelled) + "\n")


def test_sqlite_text_values_are_encoded_as_their_python_values() -> None:
    """A copy reads SQLite's stored text (dates, times, flags) without building Python
    values for every row; the lines are those of the values SQLAlchemy would build,
    also for timestamps stored without microseconds (CURRENT_TIMESTAMP's form)."""
    from sqlalchemy import Boolean, Date, DateTime, Numeric
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    kinds = ("date", "timestamp", "timestamp", "boolean", "decimal", "decimal")
    types = (Date(), DateTime(), DateTime(), Boolean(), Numeric(10, 2), Numeric(10, 2))
    processors = [kind.dialect_impl(dialect).result_processor(dialect, None) for kind in types]
    raw = ("2026-02-28", "2026-03-01 09:15:00", "2026-03-01 09:15:00.000250", 1, 1.5, 1.25)
    values = tuple(
        value if process is None else process(value)
        for process, value in zip(processors, raw, strict=True)
    )
    shape = TableShape("t", tuple("abcdef"), kinds, ("a",), None)
    encode = row_encoder(kinds, processors, copy_text=True)
    for _ in range(2):  # the second time from the memo
        line, copy = encode(raw)
        assert line == shape.encode(values)
        assert json.loads(line) == [
            "2026-02-28",
            "2026-03-01T09:15:00.000000Z",
            "2026-03-01T09:15:00.000250Z",
            True,
            "1.50",
            "1.25",
        ]
        stamps = "2026-03-01T09:15:00+00:00\t2026-03-01T09:15:00.000250+00:00"
        assert copy == f"2026-02-28\t{stamps}\tt\t1.50\t1.25\n"


def test_equal_decimals_keep_their_own_spelling() -> None:
    """1.0 and 1.00 are equal (and hash alike): a memo of encoded values would write the
    second as the first."""
    encode = row_encoder(("decimal",))
    assert [encode((Decimal(text),)) for text in ("1.0", "1.00")] == [b'["1.0"]\n', b'["1.00"]\n']


NEON = "postgresql://alex:pw@ep-cool-rain-123456{}.us-east-2.aws.neon.tech/neondb?sslmode=require"


def test_the_target_direct_url_follows_the_migration_rules(tmp_path: Path) -> None:
    configured = load_settings(
        {"DATABASE_URL": NEON.format("-pooler"), "DATABASE_URL_UNPOOLED": NEON.format("-direct")}
    )
    # --to is the configured DATABASE_URL: DATABASE_URL_UNPOOLED.
    same = resolve_endpoint(configured, NEON.format("-pooler"), label="target")
    assert same.direct_url.host == "ep-cool-rain-123456-direct.us-east-2.aws.neon.tech"
    # Another Neon pooled URL: derived by dropping -pooler.
    other = resolve_endpoint(
        configured, NEON.format("-pooler").replace("123456", "999"), label="target"
    )
    assert other.direct_url.host == "ep-cool-rain-999.us-east-2.aws.neon.tech"
    # --to-direct wins.
    given = resolve_endpoint(
        configured,
        NEON.format("-pooler"),
        label="target",
        direct=NEON.format("-given"),
        direct_label="target_direct",
    )
    assert given.direct_url.host == "ep-cool-rain-123456-given.us-east-2.aws.neon.tech"
    # No option: the database in use; `local`: the embedded file, whatever DATABASE_URL is.
    assert resolve_endpoint(configured, None, label="source").url == configured.database_url
    local = resolve_endpoint(configured, "local", label="source")
    assert local.url.database == str(tmp_path / "home/.config/budget-tracker/budget.db")
    assert "pw" not in other.label


def test_a_bad_url_is_bad_input() -> None:
    result = copy("local", "mysql://x@h/db")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --to uses 'mysql'")
    result = copy("local", NEON.format("-pooler").replace("?sslmode=require", ""))
    assert result.exit_code == 2
    assert "without TLS" in result.stderr


def on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `budget ARGS` in a subprocess whose stderr is a terminal: exit code and what
    the terminal showed."""
    controller, terminal = pty.openpty()
    shown = b""
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "budget_tracker", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=terminal,
            env={**os.environ, **env, "NO_COLOR": "1"},
        )
        os.close(terminal)
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process has ended
                break
            if not chunk:
                break
            shown += chunk
        code = process.wait(timeout=120)
    finally:
        os.close(controller)
    return code, shown.decode(errors="replace")


def test_copy_and_backup_show_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    origin = sqlite_backend(tmp_path / "origin.db")
    seed_every_feature(origin, tmp_path)
    origin.database.close()
    code, shown = on_terminal(["backup", str(tmp_path / "b.jsonl")], origin.env)
    assert code == 0, shown
    assert "Backing up" in shown
    assert "100%" in shown
    assert "Backed up" in shown
    source = f"sqlite:///{tmp_path / 'origin.db'}"
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    code, shown = on_terminal(["db", "copy", "--from", source, "--to", target], {})
    assert code == 0, shown
    assert "Copying" in shown
    assert "100%" in shown


def test_the_verification_finds_a_difference(tmp_path: Path) -> None:
    """The copy compares what it wrote with what the target's app URL reads back: loaded
    over one URL (`--to-direct`), read back over another that holds one amount changed,
    the copy reports the table and the reports as different and fails."""
    origin = sqlite_backend(tmp_path / "origin.db")
    seed_every_feature(origin, tmp_path)
    origin.database.close()
    shutil.copy(tmp_path / "origin.db", tmp_path / "altered.db")
    altered = sqlite_backend(tmp_path / "altered.db")
    with altered.database.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE expenses SET amount = amount + 1 WHERE id = 2")
    altered.database.close()
    result = copy(
        f"sqlite:///{tmp_path / 'origin.db'}",
        f"sqlite:///{tmp_path / 'altered.db'}",
        "--to-direct",
        f"sqlite:///{tmp_path / 'loaded.db'}",
    )
    assert result.exit_code == 1
    assert [line for line in result.stdout.splitlines() if "DIFFERENT" in line] == [
        line for line in result.stdout.splitlines() if line.startswith("  expenses ")
    ]
    assert result.stderr.startswith("Error: verification failed after COMMIT: table expenses ")


def test_a_malformed_url_is_named_by_the_option_it_came_from(tmp_path: Path) -> None:
    origin = f"sqlite:///{tmp_path / 'origin.db'}"
    bad = "postgresql://someone:secret@db.example.com:port/budget"
    for extra, option in (
        (("--to", bad), "--to"),
        (("--to", origin, "--to-direct", bad), "--to-direct"),
    ):
        result = budget("db", "copy", "--from", origin, *extra)
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"Error: {option} is not a valid database URL"), (
            result.output
        )
        assert "secret" not in result.output
