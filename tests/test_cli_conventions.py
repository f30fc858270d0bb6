"""Command-line conventions: usage errors, `budget help`, closed pipes, undecodable bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click.testing
import pytest

from budget_tracker.cli import main
from tests.cli_helpers import category_id, execute, first_run, ok, user_id
from tests.conftest import Backend


def invoke(args: list[str], env: dict[str, str] | None = None) -> click.testing.Result:
    return click.testing.CliRunner().invoke(main, args, env=env)


@pytest.mark.parametrize(
    ("args", "usage", "error"),
    [
        (
            ["add-expense"],
            "Usage: budget add-expense [OPTIONS] AMOUNT CATEGORY [DESCRIPTION]",
            "Error: Missing argument 'AMOUNT'.",
        ),
        (
            ["category", "add", "Food", "--colour", "#fff"],
            "Usage: budget category add [OPTIONS] NAME",
            "Error: No such option '--colour'. Did you mean '--color'?",
        ),
        (
            ["expenses", "--month", "2026-01", "--from", "2026-01-01"],
            "Usage: budget expenses [OPTIONS]",
            "Error: use either --month or --from/--to, not both",
        ),
        (["xyzzy"], "Usage: budget [OPTIONS] COMMAND [ARGS]...", "Error: No such command 'xyzzy'."),
    ],
)
def test_usage_errors_show_the_usage_and_where_to_find_help(
    args: list[str], usage: str, error: str
) -> None:
    result = invoke(args)
    assert result.exit_code == 2
    command = usage.removeprefix("Usage: ").split(" [OPTIONS]")[0]
    lines = result.stderr.splitlines()
    assert lines[0] == usage
    assert lines[1] == f"Try '{command} -h' for help."
    assert lines[-1] == error


def test_an_invalid_value_stays_one_line() -> None:
    result = invoke(["add-expense", "x", "Food"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: Invalid value for 'AMOUNT': 'x' is not an amount (use digits, e.g. 12.50)\n"
    )


@pytest.mark.parametrize(
    ("args", "first"),
    [
        ([], "Usage: budget [OPTIONS] COMMAND [ARGS]..."),
        (["add-expense"], "Usage: budget add-expense [OPTIONS] AMOUNT CATEGORY [DESCRIPTION]"),
        (["category", "add"], "Usage: budget category add [OPTIONS] NAME"),
    ],
)
def test_help_command(args: list[str], first: str) -> None:
    result = invoke(["help", *args])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == first
    assert result.stdout == invoke([*args, "--help"]).stdout


def test_help_for_an_unknown_command_is_a_usage_error() -> None:
    result = invoke(["help", "category", "nope"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "Error: No such command 'category nope'."


def _run(backend: Backend, args: Sequence[str | bytes], **kwargs: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, **backend.env}
    process: subprocess.Popen[bytes] = subprocess.Popen(
        [sys.executable, "-m", "budget_tracker", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )
    return process


@pytest.mark.parametrize("command", [["expenses"], ["export"], ["expenses", "--format", "json"]])
def test_a_reader_that_stops_early_is_not_an_error(backend: Backend, command: list[str]) -> None:
    """`budget expenses | head -1`: the pipe closes long before the output ends; exit 0."""
    first_run(backend)
    food = category_id(backend, "Food")
    me = user_id(backend, "me@localhost")
    for day in range(1, 29):
        execute(
            backend,
            "INSERT INTO expenses (user_id, category_id, amount, spent_on, description) "
            "SELECT :user_id, :category_id, 1250, :day, :text FROM categories "
            "WHERE user_id = :user_id",
            user_id=me,
            category_id=food,
            day=f"2026-01-{day:02d}",
            text="x" * 150,
        )
    for _ in range(5):  # 28 days x 4 categories x 32: far more than a pipe buffer holds
        execute(
            backend,
            "INSERT INTO expenses (user_id, category_id, amount, spent_on, description) "
            "SELECT user_id, category_id, amount, spent_on, description FROM expenses",
        )
    process = _run(backend, command)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=120) == 0, stderr
    assert stderr == b""


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ([b"add-expense", b"1", b"Fo\xffod"], "Fo\\xffod"),
        ([b"add-expense", b"1", b"Food", b"--user", b"\xff@x"], "\\xff@x"),
        ([b"add-expense", b"1", b"Food", b"caf\xe9"], "caf\\xe9"),
    ],
)
def test_undecodable_arguments_are_bad_input(
    backend: Backend, args: list[str | bytes], shown: str
) -> None:
    first_run(backend)
    before = backend.snapshot()
    process = _run(backend, args)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert stdout == b""
    assert stderr.decode() == f"Error: argument '{shown}' is not valid UTF-8 text\n"
    assert backend.snapshot() == before


def test_undecodable_budget_user_is_bad_input(backend: Backend) -> None:
    first_run(backend)
    before = backend.snapshot()
    result = backend.invoke(["report"], env={"BUDGET_USER": "\udcff@x"})
    assert result.exit_code == 2
    assert result.stderr == "Error: BUDGET_USER '\\xff@x' is not valid UTF-8 text\n"
    assert backend.snapshot() == before


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "--from-file", "a\x00b"],
        ["import", "a\x00b"],
        ["backup", "a\x00b"],
        ["add-expense", "1", "Food", "a\x00b"],
    ],
)
def test_a_nul_character_in_an_argument_is_bad_input(backend: Backend, args: list[str]) -> None:
    """Only a program calling `main` with a list can pass one (a shell cannot)."""
    first_run(backend)
    before = backend.snapshot()
    result = backend.invoke(args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "Error: argument 'a\\x00b' contains a NUL character\n"
    assert backend.snapshot() == before


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["export", "-o", ""], "'-o' / '--output'"),
        (["export", "--transfers", "-o", ""], "'-o' / '--output'"),
        (["backup", ""], "'FILE'"),
        (["restore", ""], "'FILE'"),
        (["import", ""], "'FILE'"),
        (["verify", "--from-file", ""], "'--from-file'"),
    ],
)
def test_an_empty_file_name_is_bad_input(backend: Backend, args: list[str], name: str) -> None:
    """The operating system would read it as the current directory."""
    first_run(backend)
    before = backend.snapshot()
    result = backend.invoke(args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"Error: Invalid value for {name}: the file name is empty\n"
    assert backend.snapshot() == before


def test_export_dash_o_dash_is_stdout(backend: Backend, tmp_path: Path) -> None:
    first_run(backend)
    ok(backend.invoke(["add-expense", "12.50", "Food", "Lunch", "--date", "2026-03-02"]))
    result = ok(backend.invoke(["export", "-o", "-"]))
    assert result.stdout == "date,amount,category,description\n2026-03-02,12.50,Food,Lunch\n"
    assert not (tmp_path / "-").exists()


def test_domain_errors_carry_data_and_the_cli_adds_its_flags(backend: Backend) -> None:
    import datetime as dt
    from decimal import Decimal

    from budget_tracker.errors import InsufficientBudget
    from budget_tracker.services.transfers import transfer_budget

    first_run(backend)
    with pytest.raises(InsufficientBudget) as refused, backend.database.transaction() as s:
        transfer_budget(
            s,
            user_email=None,
            amount=Decimal("5"),
            source="Food",
            target="Transport",
            month=dt.date(2026, 3, 1),
            note="",
            allow_overdraw=False,
            idempotency_key=None,
        )
    error = refused.value
    assert (error.category, error.available, error.amount, error.month) == (
        "Food",
        Decimal("0.00"),
        Decimal("5"),
        dt.date(2026, 3, 1),
    )
    assert "--allow-overdraw" not in str(error)  # flags are the command line's words
    result = backend.invoke(["transfer", "5", "--from", "Food", "--to", "Transport"])
    assert result.exit_code == 1
    assert result.stderr.endswith("cannot move 5.00 (--allow-overdraw moves it anyway)\n")
