"""Two commands at once on PostgreSQL through PgBouncer: each read-modify-write is atomic.

Every test stages the same race with `race()`: the first unit of work runs until it has
executed its read (a statement matching a pattern) and is held there; the second then
runs until it finishes or waits for a lock the first holds; then the first goes on. An
operation whose read is not protected lets the second act on what the first is about to
change (both "delete" one expense, both "rename" one category, both create the default
user); a protected one makes the second wait and then see the first's result.

SQLite takes its one write lock at BEGIN (`BEGIN IMMEDIATE`), so two writers never
interleave there; these races exist on PostgreSQL only.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from budget_tracker.errors import Conflict, NotFound
from budget_tracker.services.expenses import add_expense, delete_expense, edit_expense
from budget_tracker.services.importer import ImportOptions, import_expenses
from budget_tracker.services.transfers import transfer_budget, undo_transfer
from budget_tracker.services.users import add_user, set_default_user
from tests.cli_helpers import first_run
from tests.conftest import Backend

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

DAY = dt.date(2026, 5, 14)
PATIENCE = 30.0
"""Seconds any step of a race may take before the test fails (never reached when green)."""


@dataclass
class Finished:
    value: Any = None
    error: BaseException | None = None


def _run(database: Any, work: Callable[[Session], Any], into: Finished) -> None:
    try:
        into.value = database.run(work, write=True)
    except BaseException as exc:  # reported to the test, which asserts on it
        into.error = exc


def _waiting_for_a_lock(backend: Backend) -> bool:
    """Whether some session of the test database waits for a row or table lock."""
    return bool(
        backend.scalar(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )


def race(
    backend: Backend,
    first: Callable[[Session], Any],
    second: Callable[[Session], Any],
    *,
    hold_after: str,
) -> tuple[Finished, Finished]:
    """Run `first` up to its statement matching `hold_after`, then `second`, then the rest."""
    pattern = re.compile(hold_after, re.IGNORECASE | re.DOTALL)
    held, release = threading.Event(), threading.Event()
    first_thread: list[threading.Thread] = []

    def hold(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        mine = threading.current_thread() in first_thread and not held.is_set()
        if mine and pattern.search(statement):
            held.set()
            assert release.wait(PATIENCE), "the race was never released"

    engine = backend.database.engine
    event.listen(engine, "after_cursor_execute", hold)
    results = (Finished(), Finished())
    try:
        one = threading.Thread(target=_run, args=(backend.database, first, results[0]))
        first_thread.append(one)
        one.start()
        deadline = time.monotonic() + PATIENCE
        while not held.is_set():
            assert one.is_alive(), f"the first unit never ran {hold_after!r}: {results[0]}"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        two = threading.Thread(target=_run, args=(backend.database, second, results[1]))
        two.start()
        # The second either completes (nothing stops it) or waits for the first's lock.
        while two.is_alive() and not _waiting_for_a_lock(backend):
            assert time.monotonic() < deadline, "the second unit neither ended nor waited"
            time.sleep(0.005)
        release.set()
        one.join(PATIENCE)
        two.join(PATIENCE)
        assert not one.is_alive() and not two.is_alive()
    finally:
        release.set()
        event.remove(engine, "after_cursor_execute", hold)
    return results


def ok(backend: Backend, *args: str) -> None:
    result = backend.invoke(list(args))
    assert result.exit_code == 0, result.stderr


@contextmanager
def no_warnings_text(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    yield
    captured = capsys.readouterr()
    assert "Warning" not in captured.out + captured.err


def expense(amount: str = "12.50") -> Callable[[Session], Any]:
    return lambda session: add_expense(
        session,
        user_email=None,
        category="Food",
        amount=Decimal(amount),
        spent_on=DAY,
        description="lunch",
        idempotency_key=None,
    )


# --- creating what must exist once -------------------------------------------------------


def test_concurrent_first_commands_on_an_empty_database_both_succeed(backend: Backend) -> None:
    first, second = race(
        backend,
        expense("1"),
        expense("2"),
        hold_after=r"FROM users ORDER BY mine DESC, users.is_default DESC, users.id\s+LIMIT",
    )
    assert first.error is None and second.error is None, (first.error, second.error)
    assert backend.scalar("SELECT count(*) FROM users") == 1
    assert backend.scalar("SELECT count(*) FROM categories") == 4
    assert backend.scalar("SELECT count(*) FROM expenses") == 2
    # Whichever created the default user says so; the other does not.
    assert [first.value.first_run is None, second.value.first_run is None].count(False) == 1


def test_concurrent_first_commands_naming_different_users_both_succeed(
    backend: Backend,
) -> None:
    def as_user(email: str) -> Callable[[Session], Any]:
        return lambda session: add_expense(
            session,
            user_email=email,
            category="Food",
            amount=Decimal("3"),
            spent_on=DAY,
            description="lunch",
            idempotency_key=None,
        )

    # Held after creating its user (uncommitted): the other creates a different user, and
    # both would be the default, which only one user can be.
    first, second = race(
        backend,
        as_user("ana@example.com"),
        as_user("ben@example.com"),
        hold_after=r"INSERT INTO users",
    )
    assert first.error is None and second.error is None, (first.error, second.error)
    assert backend.scalar("SELECT count(*) FROM users") == 2
    assert backend.scalar("SELECT count(*) FROM users WHERE is_default") == 1
    assert backend.scalar("SELECT count(*) FROM expenses") == 2


def test_concurrent_imports_creating_the_same_category_both_succeed(
    backend: Backend, tmp_path: Path
) -> None:
    first_run(backend)
    path = tmp_path / "books.csv"
    path.write_text("date,amount,category,description\n2026-05-01,7,Books,novel\n")
    options = ImportOptions(create_categories=True)

    def importing(session: Session) -> Any:
        return import_expenses(session, user_email=None, path=path, options=options)

    first, second = race(
        backend, importing, importing, hold_after=r"SELECT categories.name_key\s+FROM categories"
    )
    assert first.error is None and second.error is None, (first.error, second.error)
    assert backend.scalar("SELECT count(*) FROM categories WHERE name = 'Books'") == 1
    assert backend.scalar("SELECT count(*) FROM expenses") == 1
    assert sorted([first.value.created_categories, second.value.created_categories]) == [
        (),
        ("Books",),
    ]


def test_concurrent_user_adds_one_succeeds_one_is_refused(backend: Backend) -> None:
    def adding(session: Session) -> Any:
        return add_user(session, email="ana@example.com", name="Ana")

    first, second = race(backend, adding, adding, hold_after=r"(FROM|INTO) users")
    assert first.error is None
    assert isinstance(second.error, Conflict), second.error
    assert str(second.error) == "a user 'ana@example.com' already exists"


def test_concurrent_choices_of_the_default_user_act_one_after_the_other(
    backend: Backend,
) -> None:
    for email in ("ana@example.com", "bob@example.com", "cy@example.com"):
        ok(backend, "user", "add", email, "--name", email[:3])

    def choosing(email: str) -> Callable[[Session], Any]:
        return lambda session: set_default_user(session, user_email=email)

    first, second = race(
        backend,
        choosing("bob@example.com"),
        choosing("cy@example.com"),
        hold_after=r"UPDATE users SET is_default",
    )
    assert (first.error, second.error) == (None, None)
    assert backend.rows("SELECT email FROM users WHERE is_default") == [("cy@example.com",)]


# --- changing or removing one row --------------------------------------------------------


def test_two_concurrent_deletes_of_one_expense(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    ok(backend, "add-expense", "12.50", "Food", "lunch")

    def deleting(session: Session) -> Any:
        return delete_expense(session, user_email=None, expense_id=1)

    with no_warnings_text(capsys):
        first, second = race(backend, deleting, deleting, hold_after=r"FROM expenses")
    assert first.error is None and first.value.before.amount == Decimal("12.50")
    assert isinstance(second.error, NotFound), second.error
    assert str(second.error) == "no expense with id 1"
    assert backend.scalar("SELECT count(*) FROM expenses") == 0


def test_concurrent_edits_of_one_expense_see_each_other(backend: Backend) -> None:
    ok(backend, "add-expense", "12.50", "Food", "lunch")

    def editing(amount: str, description: str) -> Callable[[Session], Any]:
        return lambda session: edit_expense(
            session,
            user_email=None,
            expense_id=1,
            amount=Decimal(amount),
            description=description,
        )

    first, second = race(
        backend, editing("20", "dinner"), editing("30", "feast"), hold_after=r"FROM expenses"
    )
    assert first.error is None and second.error is None
    # One after the other: the second's "before" is the first's "after".
    assert first.value.before.amount == Decimal("12.50")
    assert second.value.before == first.value.after
    assert backend.rows("SELECT amount, description FROM expenses") == [(3000, "feast")]


def test_concurrent_renames_of_one_category(backend: Backend) -> None:
    from budget_tracker.services.categories import rename_category

    first_run(backend)

    def renaming(new_name: str) -> Callable[[Session], Any]:
        return lambda session: rename_category(
            session, user_email=None, name="Food", new_name=new_name
        )

    first, second = race(
        backend, renaming("Groceries"), renaming("Meals"), hold_after=r"FROM categories"
    )
    assert first.error is None and first.value.old_name == "Food"
    assert isinstance(second.error, NotFound), second.error
    assert str(second.error).startswith("no category 'Food' (categories: ")
    names = {row[0] for row in backend.rows("SELECT name FROM categories")}
    assert names == {"Groceries", "Transport", "Entertainment", "Utilities"}


def test_concurrent_renames_to_one_new_name(backend: Backend) -> None:
    from budget_tracker.services.categories import rename_category

    first_run(backend)

    def renaming(name: str) -> Callable[[Session], Any]:
        return lambda session: rename_category(
            session, user_email=None, name=name, new_name="Leisure"
        )

    # Held after checking that the new name is free: the other takes it meanwhile.
    first, second = race(
        backend,
        renaming("Food"),
        renaming("Entertainment"),
        hold_after=r"categories.name_key = .* AND categories.id !=",
    )
    assert second.error is None
    assert isinstance(first.error, Conflict), first.error
    assert str(first.error) == "a category named 'Leisure' already exists"


def test_concurrent_undos_of_one_transfer(backend: Backend) -> None:
    ok(backend, "category", "set-budget", "Food", "100", "--from", "2026-01")
    with backend.database.transaction() as session:
        transfer_budget(
            session,
            user_email=None,
            source="Food",
            target="Transport",
            amount=Decimal("30"),
            month=DAY,
        )

    def undoing(session: Session) -> Any:
        return undo_transfer(session, user_email=None, transfer_id=1)

    first, second = race(backend, undoing, undoing, hold_after=r"FROM budget_transfers")
    # Held after reading the original: the other undoes it meanwhile.
    assert second.error is None and second.value.transfer.reverses_id == 1
    assert isinstance(first.error, Conflict), first.error
    assert str(first.error) == "transfer 1 was already undone by transfer 2"
    assert backend.scalar("SELECT count(*) FROM budget_transfers") == 2


# --- reading one snapshot ----------------------------------------------------------------


def test_verify_is_not_fooled_by_writers_committing_meanwhile(backend: Backend) -> None:
    from budget_tracker.services.budgets import Period
    from budget_tracker.services.reports import category_report
    from budget_tracker.services.verify import check_report, one_snapshot

    ok(backend, "category", "set-budget", "Food", "100", "--from", "2026-01")
    ok(backend, "add-expense", "12.50", "Food", "lunch", "--date", "2026-05-14")
    commits = 0

    def others_write(_session: Session) -> None:
        # Between the report and the raw pass, other commands commit an expense and a
        # transfer in the verified month (on their own connections).
        nonlocal commits
        ok(backend, "add-expense", "7", "Food", "dinner", "--date", "2026-05-20")
        ok(backend, "transfer", "5", "--from", "Food", "--to", "Transport", "--month", "2026-05")
        commits += 2

    may = Period(dt.date(2026, 5, 1), dt.date(2026, 5, 1))

    def verifying(session: Session) -> Any:
        # verify_report's steps, with other writers committing between its two passes.
        one_snapshot(session, read_only=True)
        report = category_report(session, user_email=None, period=may)
        others_write(session)
        return check_report(session, report)

    result = backend.database.run(verifying, write=False)
    assert commits == 2
    assert result.mismatches == ()
    assert (result.spent, result.expenses) == (Decimal("12.50"), 1)
    assert ok_output(backend, "verify", "--month", "2026-05").startswith("verified: ")


def test_verify_reads_in_a_read_only_transaction(backend: Backend) -> None:
    from budget_tracker.services.budgets import Period
    from budget_tracker.services.verify import verify_report

    first_run(backend)
    may = Period(dt.date(2026, 5, 1), dt.date(2026, 5, 1))

    def verifying(session: Session) -> Any:
        verify_report(session, user_email=None, period=may)
        return session.execute(text("SHOW transaction_isolation")).scalar(), session.execute(
            text("SHOW transaction_read_only")
        ).scalar()

    assert backend.database.run(verifying, write=False) == ("repeatable read", "on")


def ok_output(backend: Backend, *args: str) -> str:
    result = backend.invoke(list(args))
    assert result.exit_code == 0, result.stderr
    return result.stdout
