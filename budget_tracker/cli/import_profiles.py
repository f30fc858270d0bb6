"""`budget import-profile`: list, show and delete the saved `budget import` profiles."""

from __future__ import annotations

from typing import Any

import click

from budget_tracker.cli.output import Column, emit, info, printable
from budget_tracker.cli.params import format_option, user_option


@click.group("import-profile")
def import_profile_group() -> None:
    """List, show and delete saved import profiles (see `budget import --save-profile`).

    \b
    Example:
      budget import-profile list
      budget import-profile show mybank > mybank.toml
      budget import-profile delete mybank
    """


PROFILE_COLUMNS = (Column("name", "Name"),)


@import_profile_group.command("list")
@user_option
@format_option
@click.pass_obj
def list_command(state: Any, user_email: str | None, fmt: str) -> None:
    """List the saved import profiles, one name a line (json: `[{"name": ...}]`)."""
    from budget_tracker.services.import_profiles import list_profiles

    names = state.database.run(
        lambda session: list_profiles(session, user_email=user_email), write=False
    )
    if fmt != "table":
        emit([{"name": name} for name in names], PROFILE_COLUMNS, fmt)
        return
    if not names:
        info("No import profiles yet (save one with `budget import FILE --save-profile NAME`).")
    for name in names:
        click.echo(printable(name))


@import_profile_group.command("show")
@click.argument("name")
@user_option
@click.pass_obj
def show_command(state: Any, name: str, user_email: str | None) -> None:
    """Print the profile NAME as the TOML document `budget import --rules FILE` reads."""
    from budget_tracker.services.import_profiles import load_profile

    document = state.database.run(
        lambda session: load_profile(session, user_email=user_email, name=name), write=False
    )
    click.echo(document, nl=False)


@import_profile_group.command("delete")
@click.argument("name")
@user_option
@click.pass_obj
def delete_command(state: Any, name: str, user_email: str | None) -> None:
    """Delete the profile NAME."""
    from budget_tracker.services.import_profiles import delete_profile

    state.database.run(
        lambda session: delete_profile(session, user_email=user_email, name=name), write=True
    )
    info(f"Deleted import profile {name!r}.")
