"""The services' words at the command line: options named by keyword become the running
command's flags, and refusals that call for another command say which."""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

import budget_tracker.services
from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.cli.wording import flag, for_people, said
from budget_tracker.errors import (
    InvalidInput,
    NoCategories,
    UnknownCategories,
    UnknownPerson,
    UnknownUser,
    UserNotChosen,
    option,
)
from tests.cli_helpers import first_run
from tests.conftest import Backend


@click.group()
@click.option("--user", "user_email")
@click.option("-v", "--verbose", count=True)
def outer(user_email: str | None, verbose: int) -> None:
    """A group with an option of its own."""


@outer.command()
@click.option("--from", "date_from")
@click.argument("month")
def inner(date_from: str | None, month: str) -> None:
    """A command under it."""


def contexts() -> click.Context:
    parent = click.Context(outer, info_name="outer")
    return click.Context(inner, info_name="inner", parent=parent)


def test_a_keyword_is_the_flag_of_the_command_or_of_a_group_around_it() -> None:
    ctx = contexts()
    assert flag(ctx, "date_from") == "--from"
    assert flag(ctx, "user_email") == "--user"
    assert flag(ctx, "verbose") == "--verbose"
    # An argument is no flag, and an option no command has is left as its keyword.
    assert flag(ctx, "month") == "month"
    assert flag(ctx, "date_format") == "date_format"
    assert flag(None, "date_from") == "date_from"


def test_said_spells_the_options_of_the_running_command() -> None:
    text = option("date_from") + " 2026-03-02 is after " + option("date_to")
    with contexts():
        assert said(text) == "--from 2026-03-02 is after date_to"
    assert said("plain") == "plain"


def test_refusals_that_call_for_another_command_say_which() -> None:
    ctx = contexts()
    assert for_people(UnknownUser("a@b"), ctx) == (
        "no user 'a@b': see `budget user list`, or add one with `budget user add EMAIL --name NAME`"
    )
    assert for_people(UnknownPerson("a@b"), ctx) == "no user 'a@b': see `budget user list`"
    assert for_people(NoCategories("Food"), ctx) == (
        "no category 'Food': there are no categories yet; add one with `budget category add NAME`"
    )
    assert for_people(UserNotChosen(), ctx).startswith(
        "there are several users: choose one with --user EMAIL or the BUDGET_USER variable"
    )
    assert for_people(UnknownCategories("a.csv", ["X", "Y", "Z"], shown=2), None) == (
        "a.csv uses 3 unknown categories: X, Y and 1 more; add them with "
        "`budget category add NAME` or import with create_categories; nothing was imported"
    )
    assert for_people(InvalidInput("use " + option("date_from")), ctx) == "use --from"


def option_keywords() -> Iterator[tuple[str, str]]:
    """(module, keyword) of every `option("keyword")` in the services."""
    root = Path(budget_tracker.services.__file__).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "option"
            ):
                (argument,) = node.args
                assert isinstance(argument, ast.Constant), f"{path.name}:{node.lineno}"
                yield path.name, str(argument.value)


def command_options(command: click.Command) -> Iterator[str]:
    yield from (param.name or "" for param in command.params if isinstance(param, click.Option))
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            subcommand = command.get_command(click.Context(command), name)
            assert subcommand is not None
            yield from command_options(subcommand)


def test_every_option_the_services_name_is_a_flag_of_some_command() -> None:
    keywords = sorted(set(option_keywords()))
    assert ("budgets.py", "from_month") in keywords  # the scan sees the services
    known = set(command_options(main))
    assert [(module, keyword) for module, keyword in keywords if keyword not in known] == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_each_invocation_spells_the_flags_of_its_own_command(
    backend: Backend, tmp_path: Path
) -> None:
    """One `AppState` across invocations (as tests and embedding programs use it): the
    second refusal is worded with the import's flags, not the failed transfer's."""
    first_run(backend)
    state = AppState(database=backend.database, today=lambda: dt.date(2026, 3, 9))
    transfer = backend.runner.invoke(
        main, ["transfer", "5", "--from", "Food", "--to", "food"], obj=state
    )
    assert transfer.stderr == (
        "Error: cannot transfer from 'Food' to itself: --from and --to must be different "
        "categories\n"
    )
    csv_file = tmp_path / "dates.csv"
    csv_file.write_text("date,amount,category,description\n03/01/2026,1,Food,x\n")
    imported = backend.runner.invoke(main, ["import", str(csv_file)], obj=state)
    assert imported.stderr.splitlines()[1] == (
        "  line 2, column date: '03/01/2026' is not a date (use YYYY-MM-DD or --date-format)"
    )
