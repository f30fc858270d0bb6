"""`budget user add`, `budget user list` and `budget user default`."""

from __future__ import annotations

from dataclasses import asdict

import click

from budget_tracker.cli.output import Column, emit, print_json, result_format_option, user_json
from budget_tracker.cli.params import EMAIL, USER_NAME, format_option
from budget_tracker.cli.state import AppState

USER_COLUMNS = (
    Column("id", "ID", ">"),
    Column("email", "E-mail"),
    Column("name", "Name"),
    Column("role", "Role"),
    Column("categories", "Categories", ">"),
    Column("expenses", "Expenses", ">"),
    Column("shown_default", "Default"),
)


@click.group("user")
def user() -> None:
    """People whose spending is tracked (each sees only their own data).

    \b
    Example:
      budget user add ana@example.com --name "Ana"
      budget user list
      budget user default ana@example.com
    """


@user.command("add")
@click.argument("email", type=EMAIL)
@click.option("--name", required=True, type=USER_NAME, help="Display name.")
@click.option(
    "--role",
    "role",
    metavar="ROLE",
    help="The PostgreSQL role this person connects as (row-level security).",
)
@result_format_option
@click.pass_obj
def add(state: AppState, email: str, name: str, role: str | None, fmt: str) -> None:
    """Add a user. Choose who a command acts for with --user EMAIL or BUDGET_USER.

    A new user starts with no categories: add some with `budget category add`. On
    PostgreSQL, --role links the user to the role the person connects as: that role then
    sees this user's data, and only its own and what is shared with it.

    \b
    Example:
      budget user add ana@example.com --name "Ana"
      budget user add bob@example.com --name "Bob" --role bob
      budget category add Food --user ana@example.com
    """
    from budget_tracker.services.users import add_user

    added = state.database.run(
        lambda session: add_user(session, email=email, name=name, role=role), write=True
    )
    if fmt == "json":
        print_json(user_json(added))
    else:
        linked = f", role {added.role}" if added.role else ""
        click.echo(f"Added user {added.id}: {added.email} ({added.name}{linked})")


@user.command("link")
@click.argument("email", type=EMAIL)
@click.argument("role")
@click.pass_obj
def link(state: AppState, email: str, role: str) -> None:
    """Link a user to the PostgreSQL role ROLE the person connects as.

    Run it as the tables' owner (or as ROLE itself for a user it already sees).

    \b
    Example:
      budget user link bob@example.com bob
    """
    from budget_tracker.services.sharing import link_user

    linked = state.database.run(
        lambda session: link_user(session, email=email, role=role), write=True
    )
    click.echo(f"Linked user {linked.email} to role {linked.role}")


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
    columns: tuple[Column, ...] = USER_COLUMNS
    if fmt == "table" and not any(row.role for row in rows):
        # Without PostgreSQL roles (SQLite, one role for everything) the column is empty.
        columns = tuple(column for column in USER_COLUMNS if column.key != "role")
    emit(
        [{**asdict(row), "shown_default": "yes" if row.default else ""} for row in rows],
        columns,
        fmt,
        empty_message="no users yet: add one with `budget user add EMAIL --name NAME`",
        json_data=[
            {**user_json(row), "categories": row.categories, "expenses": row.expenses}
            for row in rows
        ],
    )


@user.command("default")
@click.argument("email", type=EMAIL)
@result_format_option
@click.pass_obj
def default(state: AppState, email: str, fmt: str) -> None:
    """Act for EMAIL when a command names no user (no --user, no BUDGET_USER).

    The choice is stored in the database, so it holds for everyone using it.

    \b
    Example:
      budget user default ana@example.com
    """
    from budget_tracker.services.users import set_default_user

    chosen = state.database.run(
        lambda session: set_default_user(session, user_email=email), write=True
    )
    if fmt == "json":
        print_json(user_json(chosen))
    else:
        click.echo(f"Commands now act for {chosen.email} ({chosen.name}) unless told otherwise")
