"""A lost COMMIT acknowledgement: every writing command still tells the truth.

The proxy lets a command's COMMIT reach the server and commit, then cuts the connection
instead of passing the answer on. The unit of work is retried; the command must print
exactly what it prints when nothing goes wrong (same exit code, stdout and stderr) and
leave exactly the same rows. Each case runs twice on the same database: once with the
proxy disarmed (the reference), once armed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from budget_tracker import outcomes
from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.config import load_settings
from budget_tracker.models import Base, UnitOutcome, User
from budget_tracker.services.expenses import ExpenseChange, ExpenseRow
from budget_tracker.services.importer import Signs
from budget_tracker.services.users import FirstRun, acting_user
from budget_tracker.unit_of_work import Database
from tests.conftest import Backend
from tests.fault_proxy import CommitAckDropper

# Recorded outcomes are bookkeeping of the retry, not data the commands show.
COMPARED_TABLES = tuple(name for name in Base.metadata.tables if name != "unit_outcomes")
VOLATILE_COLUMNS = {"created_at", "idempotency_key"}


@dataclass(frozen=True)
class Case:
    setup: tuple[tuple[str, ...], ...]
    command: tuple[str, ...]
    first_run: bool = False
    """The command is the first on the empty database (it creates the default user)."""


IMPORT_CSV = (
    "date,amount,category,description\n2026-05-01,3.20,Food,bread\n2026-05-02,7,Books,novel\n"
)

CASES = {
    "add-expense": Case((), ("add-expense", "12.50", "Food", "lunch", "--date", "2026-05-14")),
    "add-expense, first run": Case(
        (), ("add-expense", "12.50", "Food", "lunch", "--date", "2026-05-14"), first_run=True
    ),
    "category add, first run": Case((), ("category", "add", "Books"), first_run=True),
    "import, first run": Case((), ("import", "{csv}", "--create-categories"), first_run=True),
    "transfer, first run": Case(
        (), ("transfer", "5", "--from", "Food", "--to", "Transport", "--allow-overdraw"), True
    ),
    "edit-expense": Case(
        (("add-expense", "12.50", "Food", "lunch", "--date", "2026-05-14"),),
        ("edit-expense", "1", "--amount", "20", "--description", "dinner"),
    ),
    "delete-expense": Case(
        (("add-expense", "12.50", "Food", "lunch", "--date", "2026-05-14"),),
        ("delete-expense", "1", "--yes"),
    ),
    "category add": Case((), ("category", "add", "Books", "--budget", "30")),
    "category rename": Case((), ("category", "rename", "Food", "Groceries")),
    "category set-budget": Case(
        (("category", "set-budget", "Food", "100", "--from", "2026-01"),),
        ("category", "set-budget", "Food", "250"),
    ),
    "category set-budget --month": Case(
        (), ("category", "set-budget", "Food", "80", "--month", "2026-05")
    ),
    "category set-rollover": Case(
        (("category", "set-rollover", "Food", "on", "--from", "2026-01"),),
        ("category", "set-rollover", "Food", "off"),
    ),
    "category delete": Case((), ("category", "delete", "Entertainment")),
    "category delete --move-to": Case(
        (("add-expense", "9", "Entertainment", "film", "--date", "2026-05-14"),),
        ("category", "delete", "Entertainment", "--move-to", "Utilities"),
    ),
    "category merge": Case(
        (
            ("category", "set-budget", "Food", "100", "--from", "2026-01"),
            ("category", "set-budget", "Transport", "40", "--from", "2026-01"),
            ("add-expense", "9", "Transport", "bus", "--date", "2026-05-14"),
        ),
        ("category", "merge", "Transport", "--into", "Food"),
    ),
    "user add": Case((), ("user", "add", "ana@example.com", "--name", "Ana")),
    "import": Case((), ("import", "{csv}", "--create-categories")),
    "transfer": Case(
        (("category", "set-budget", "Food", "100", "--from", "2026-01"),),
        ("transfer", "30", "--from", "Food", "--to", "Transport", "--month", "2026-05"),
    ),
    "transfer --undo": Case(
        (
            ("category", "set-budget", "Food", "100", "--from", "2026-01"),
            ("transfer", "30", "--from", "Food", "--to", "Transport", "--month", "2026-05"),
        ),
        ("transfer", "--undo", "1"),
    ),
    "add-income": Case((), ("add-income", "1000", "Salary", "--date", "2026-05-01")),
    "edit-income": Case(
        (("add-income", "1000", "Salary", "--date", "2026-05-01"),),
        ("edit-income", "1", "--amount", "1200", "--source", "Bonus"),
    ),
    "delete-income": Case(
        (("add-income", "1000", "Salary", "--date", "2026-05-01"),), ("delete-income", "1", "--yes")
    ),
    "user default": Case(
        (("user", "add", "ana@example.com", "--name", "Ana"),),
        ("user", "default", "ana@example.com"),
    ),
    "share": Case(
        (("user", "add", "ana@example.com", "--name", "Ana"),), ("share", "ana@example.com")
    ),
    "unshare": Case(
        (
            ("user", "add", "ana@example.com", "--name", "Ana"),
            ("share", "ana@example.com", "--read-only"),
        ),
        ("unshare", "ana@example.com"),
    ),
    "user link": Case(
        (("user", "add", "ana@example.com", "--name", "Ana"),),
        ("user", "link", "ana@example.com", "budget_alice"),
    ),
    "import-profile delete": Case(
        (("import", "{csv}", "--create-categories", "--save-profile", "bank"),),
        ("import-profile", "delete", "bank"),
    ),
}


def run(database: Database, args: Sequence[str], csv: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, [arg.replace("{csv}", str(csv)) for arg in args], obj=AppState(database)
    )
    assert not isinstance(result.exception, AssertionError), result.exception
    return result.exit_code, result.stdout, result.stderr


def reset(database: Database) -> None:
    with database.engine.begin() as connection:
        tables = ", ".join(Base.metadata.tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def rows(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    with database.engine.connect() as connection:
        for name in COMPARED_TABLES:
            table = Base.metadata.tables[name]
            columns = [column for column in table.columns if column.name not in VOLATILE_COLUMNS]
            statement = table.select().with_only_columns(*columns).order_by(*columns)
            found[name] = [tuple(row) for row in connection.execute(statement)]
    return found


def play(
    proxy: CommitAckDropper, database: Database, case: Case, csv: Path, *, lose_ack: bool
) -> tuple[tuple[int, str, str], dict[str, list[tuple[Any, ...]]]]:
    reset(database)
    if not case.first_run:
        with database.transaction() as session:  # the first run, on its own
            acting_user(session, user_email=None)
    for args in case.setup:
        code, _, err = run(database, args, csv)
        assert code == 0, err
    dropped = proxy.dropped
    if lose_ack:
        proxy.armed.set()
    outcome = run(database, case.command, csv)
    assert proxy.dropped == dropped + lose_ack
    proxy.armed.clear()
    return outcome, rows(database)


@pytest.mark.slow
@pytest.mark.xdist_group("pgbouncer")
@pytest.mark.parametrize("name", list(CASES))
def test_a_lost_commit_ack_changes_nothing_the_user_sees(
    name: str, lossy: tuple[CommitAckDropper, Database], tmp_path: Path
) -> None:
    proxy, database = lossy
    csv = tmp_path / "history.csv"
    csv.write_text(IMPORT_CSV, encoding="utf-8")
    case = CASES[name]
    reference, reference_rows = play(proxy, database, case, csv, lose_ack=False)
    assert reference[0] == 0, reference
    lost, lost_rows = play(proxy, database, case, csv, lose_ack=True)
    assert lost == reference
    assert lost_rows == reference_rows


# --- copy and restore: one transaction over the target ----------------------------------

SOURCE_STEPS: tuple[tuple[str, ...], ...] = (
    ("category", "add", "Books", "--budget", "300", "--from", "2026-05", "--color", "#ff8800"),
    ("add-expense", "12.50", "Books", "novel", "--date", "2026-05-14"),
    ("add-expense", "7", "Transport", "bus", "--date", "2026-06-01"),
    ("transfer", "30", "--from", "Books", "--to", "Transport", "--month", "2026-05"),
    ("add-income", "1000", "Salary", "--date", "2026-05-01"),
)


def sqlite_source(tmp_path: Path) -> tuple[Database, Path]:
    path = tmp_path / "source.db"
    database = Database(load_settings({"DATABASE_URL": f"sqlite:///{path}"}))
    for args in SOURCE_STEPS:
        code, _, err = run(database, args, path)
        assert code == 0, err
    return database, path


def move(
    proxy: CommitAckDropper,
    database: Database,
    command: Sequence[str],
    *,
    lose_ack: bool,
) -> tuple[tuple[int, str, str], dict[str, list[tuple[Any, ...]]]]:
    """Run a copy or restore into the emptied target behind the proxy."""
    reset(database)
    dropped = proxy.dropped
    if lose_ack:
        proxy.armed.set()
    outcome = run(database, command, Path())
    assert proxy.dropped == dropped + lose_ack
    proxy.armed.clear()
    return outcome, rows(database)


def copy_and_restore_commands(database: Database, tmp_path: Path) -> dict[str, tuple[str, ...]]:
    source, path = sqlite_source(tmp_path)
    backup = tmp_path / "budget.jsonl"
    code, _, err = run(source, ("backup", str(backup)), path)
    assert code == 0, err
    source.close()
    target = database.settings.database_url.render_as_string(hide_password=False)
    return {
        "copy": (
            "db",
            "copy",
            "--from",
            f"sqlite:///{path}",
            "--to",
            target,
            "--to-direct",
            target,
        ),
        "restore": ("restore", str(backup)),
    }


@pytest.mark.slow
@pytest.mark.xdist_group("pgbouncer")
@pytest.mark.parametrize("name", ["copy", "restore"])
def test_a_copy_or_restore_whose_commit_ack_is_lost_tells_the_truth(
    name: str, lossy: tuple[CommitAckDropper, Database], tmp_path: Path
) -> None:
    """The target's COMMIT succeeds but its answer is lost: the command looks at the
    target, finds the whole budget there, and says what it says when nothing goes wrong.
    Run again on that target, it finds the same budget and says so instead of refusing
    a non-empty target."""
    proxy, database = lossy
    command = copy_and_restore_commands(database, tmp_path)[name]
    reference, reference_rows = move(proxy, database, command, lose_ack=False)
    assert reference[0] == 0, reference
    assert reference_rows["expenses"]
    lost, lost_rows = move(proxy, database, command, lose_ack=True)
    assert lost == reference
    assert lost_rows == reference_rows

    code, out, err = run(database, command, Path())
    assert (code, err) == (0, ""), err
    assert "already holds this budget" in out
    assert "nothing was written" in out
    assert rows(database) == reference_rows


@pytest.mark.slow
@pytest.mark.xdist_group("pgbouncer")
@pytest.mark.parametrize("name", ["copy", "restore"])
def test_a_target_holding_other_data_is_still_refused(
    name: str, lossy: tuple[CommitAckDropper, Database], tmp_path: Path
) -> None:
    proxy, database = lossy
    command = copy_and_restore_commands(database, tmp_path)[name]
    assert move(proxy, database, command, lose_ack=False)[0][0] == 0
    code, _, err = run(database, ("add-expense", "1", "Food", "one more"), Path())
    assert code == 0, err
    before = rows(database)
    code, out, err = run(database, command, Path())
    assert code == 1, (out, err)
    assert "the target database is not empty" in err
    assert rows(database) == before


# --- the record itself -------------------------------------------------------------------


def test_outcomes_survive_the_round_trip_through_json() -> None:
    user = User(id=7, email="ana@example.com", name="Ana")
    first_run = FirstRun(user=user, categories=("Food", "Transport"))
    change = ExpenseChange(
        before=ExpenseRow(
            7, dt.date(2026, 5, 14), "Food", Decimal("12.50"), "lunch ☕", 7, "ana@example.com"
        ),
        after=None,
        first_run=first_run,
    )
    decoded = outcomes.decode(json.loads(json.dumps(outcomes.encode(change))))
    assert isinstance(decoded, ExpenseChange)
    assert decoded.before == change.before
    assert decoded.before.amount.as_tuple() == Decimal("12.50").as_tuple()  # exponent kept
    assert decoded.first_run is not None
    assert decoded.first_run.categories == ("Food", "Transport")
    assert (decoded.first_run.user.id, decoded.first_run.user.email) == (7, "ana@example.com")
    when = dt.datetime(2026, 5, 14, 12, 30, tzinfo=dt.UTC)
    for value in (
        None,
        3,
        "x",
        [1, (2, "3")],
        {"a": Decimal("0.01")},
        when,
        Signs.SPENDING_NEGATIVE,
    ):
        assert outcomes.decode(json.loads(json.dumps(outcomes.encode(value)))) == value


def test_only_this_packages_classes_are_rebuilt() -> None:
    with pytest.raises(ValueError, match="not part of budget_tracker"):
        outcomes.decode({"$dataclass": "subprocess:Popen", "fields": {"args": "true"}})
    with pytest.raises(TypeError):
        outcomes.encode(object())


def test_old_outcomes_are_pruned(backend: Backend) -> None:
    now = dt.datetime.now(dt.UTC)
    with backend.database.transaction() as session:
        for key, age in (("old", outcomes.KEEP_FOR * 2), ("new", dt.timedelta(minutes=1))):
            session.add(UnitOutcome(key=key, result="null", created_at=now - age))
    with backend.database.transaction() as session:
        assert outcomes.prune(session, before=now - outcomes.KEEP_FOR) == 1
    assert backend.rows("SELECT key FROM unit_outcomes") == [("new",)]


def test_a_writing_command_records_its_outcome_and_a_refusal_records_nothing(
    backend: Backend,
) -> None:
    assert backend.invoke(["category", "add", "Books"]).exit_code == 0
    assert backend.scalar("SELECT count(*) FROM unit_outcomes") == 1
    assert backend.invoke(["category", "add", "books"]).exit_code == 1
    assert backend.invoke(["expenses"]).exit_code == 0  # reading: nothing to record
    assert backend.scalar("SELECT count(*) FROM unit_outcomes") == 1
    # The hot commands' keyed rows already tell a retry what happened: no record.
    assert backend.invoke(["add-expense", "3", "Books"]).exit_code == 0
    assert backend.invoke(["transfer", "1", "--from", "Books", "--to", "Food", "--allow-overdraw"])
    assert backend.scalar("SELECT count(*) FROM unit_outcomes") == 1
