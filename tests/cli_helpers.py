"""Small helpers shared by the CLI tests."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click.testing
from sqlalchemy import event, text

from tests.conftest import TODAY as TODAY  # the fixed day the CLI tests run on
from tests.conftest import Backend


def execute(backend: Backend, sql: str, **params: Any) -> None:
    """Write directly with SQL (setting up data no command of this module creates)."""
    with backend.database.engine.begin() as connection:
        connection.execute(text(sql), params)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command (run in a subprocess) printed: no traceback."""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def ok(result: click.testing.Result) -> click.testing.Result:
    """Assert a command succeeded, showing its stderr when it did not."""
    assert result.exit_code == 0, result.stderr
    return result


def first_run(backend: Backend) -> None:
    """Bootstrap the default user and starter categories (the first writing command's
    side effect; read-only commands create nothing)."""
    from budget_tracker.services.users import create_first_user

    backend.database.run(create_first_user, write=True)


def category_id(backend: Backend, name: str, email: str = "me@localhost") -> int:
    return int(
        backend.scalar(
            "SELECT c.id FROM categories c JOIN users u ON u.id = c.user_id "
            "WHERE u.email = :email AND c.name = :name",
            email=email,
            name=name,
        )
    )


def user_id(backend: Backend, email: str) -> int:
    return int(backend.scalar("SELECT id FROM users WHERE email = :email", email=email))


def add_transfer(
    backend: Backend,
    *,
    source: str,
    target: str,
    cents: int,
    month: dt.date,
    email: str = "me@localhost",
) -> None:
    """A budget_transfers ledger entry, written directly (amounts are integer cents)."""
    execute(
        backend,
        "INSERT INTO budget_transfers (user_id, from_category_id, to_category_id, amount, month,"
        " note) VALUES (:user_id, :source, :target, :cents, :month, '')",
        user_id=user_id(backend, email),
        source=category_id(backend, source, email),
        target=category_id(backend, target, email),
        cents=cents,
        month=month,
    )


@contextmanager
def counted_statements(backend: Backend, *, transactions: bool = True) -> Iterator[list[str]]:
    """Record every round trip the engine makes: statements plus BEGIN and COMMIT.

    psycopg2 sends BEGIN implicitly, so it is counted from the `begin` event; on SQLite the
    `begin` listener in engine.py sends `BEGIN IMMEDIATE` itself as a statement, which is the
    same round trip and is therefore not counted twice. With `transactions=False`, only
    what goes through the cursor is recorded (SQLite's `BEGIN IMMEDIATE` included).
    """
    engine = backend.database.engine
    seen: list[str] = []

    def on_statement(*args: Any) -> None:
        statement = str(args[2])
        if not transactions or not statement.lstrip().upper().startswith("BEGIN"):
            seen.append(statement)

    def on_begin(_connection: Any) -> None:
        seen.append("BEGIN")

    def on_commit(_connection: Any) -> None:
        seen.append("COMMIT")

    def on_rollback(_connection: Any) -> None:
        seen.append("ROLLBACK")

    listeners: list[tuple[str, Any]] = [("before_cursor_execute", on_statement)]
    if transactions:
        listeners += [("begin", on_begin), ("commit", on_commit), ("rollback", on_rollback)]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield seen
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


def error_text(result: click.testing.Result) -> str:
    """stderr without the usage lines a usage error starts with (`Usage: ...`, `Try ...`)."""
    stderr = result.stderr
    if stderr.startswith("Usage: "):
        usage, _, rest = stderr.partition("\n\n")
        assert usage.splitlines()[-1].startswith("Try 'budget "), stderr
        return rest
    return stderr


def kept_sums_match_expenses(backend: Backend) -> None:
    """The per-month sums the triggers keep equal the expenses, row for row."""
    kept = backend.rows(
        "SELECT category_id, month, spent FROM category_month_spent WHERE spent <> 0 "
        "ORDER BY category_id, month"
    )
    expenses = backend.rows("SELECT category_id, spent_on, amount FROM expenses")
    sums: dict[tuple[int, str], int] = {}
    for category_id, day, cents in expenses:
        key = (category_id, str(day)[:7])
        sums[key] = sums.get(key, 0) + cents
    assert {(category_id, str(month)[:7]): cents for category_id, month, cents in kept} == {
        key: cents for key, cents in sums.items() if cents
    }
