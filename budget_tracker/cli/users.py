"""`budget user add` and `budget user list`."""

from __future__ import annotations

from dataclasses import asdict

import click

from budget_tracker.cli.output import Column, emit
from budget_tracker.cli.params import EMAIL, USER_NAME, format_option
from budget_tracker.cli.state import AppState

USER_COLUMNS = (
    Column("id", "ID", ">"),
    Column("email", "E-mail"),
    Column("name", "Name"),
    Column("categories", "Categories", ">"),
    Column("expenses", "Expenses", ">"),
)


@click.group("user")
def user() -> None:
    """People whose spending is tracked (each sees only their own data).

    \b
    Example:
      budget user add ana@example.com --name "Ana"
      budget user list
    """


@user.command("add")
@click.argument("email", type=EMAIL)
@click.option("--name", required=True, type=USER_NAME, help="Display name.")
@click.pass_obj
def add(state: AppState, email: str, name: str) -> None:
    """Add a user. Choose who a command acts for with --user EMAIL or BUDGET_USER.

    A new user starts with no categories: add some with `budget category add`.

    \b
    Example:
      budget user add ana@example.com --name "Ana"
      budget category add Food --user ana@example.com
    """
    from budget_tracker.services.users import add_user

    added = state.database.run(
        lambda session: add_user(session, email=email, name=name), write=True
    )
    click.echo(f"Added user {added.id}: {added.email} ({added.name})")


@user.command("list")
@format_option
@click.pass_obj
def list_(state: AppState, fmt: str) -> None:
    """List users with how many categories and expenses each has.

    \b
    Example:
      budget user list --format json
    """
    from budget_tracker.services.users import list_users

    rows = state.database.run(list_users, write=False)
    emit(
        [asdict(row) for row in rows],
        USER_COLUMNS,
        fmt,
        empty_message="no users yet: add one with `budget user add EMAIL --name NAME`",
    )
