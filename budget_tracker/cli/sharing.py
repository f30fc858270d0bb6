"""`budget share`, `budget unshare` and `budget shares`: budgets a household shares."""

from __future__ import annotations

from dataclasses import asdict

import click

from budget_tracker.cli.output import Column, emit
from budget_tracker.cli.params import EMAIL, format_option, user_option
from budget_tracker.cli.state import AppState

SHARE_COLUMNS = (
    Column("direction", "Direction"),
    Column("owner", "Owner"),
    Column("member", "Member"),
    Column("access", "Access"),
)


@click.command("share")
@click.argument("email", type=EMAIL)
@click.option("--read-only", is_flag=True, help="The member may read the budget, not change it.")
@user_option
@click.pass_obj
def share_command(state: AppState, email: str, read_only: bool, user_email: str | None) -> None:
    """Let the user EMAIL work in your budget (or only read it, with --read-only).

    A member records expenses in your categories, sees your reports and moves budget,
    acting on your budget with --user YOUR_EMAIL. On PostgreSQL the database enforces it
    (row-level security): a read-only member's writes are refused. Sharing again changes
    the access.

    \b
    Example:
      budget share bob@example.com
      budget share carol@example.com --read-only
    """
    from sqlalchemy.orm import Session

    from budget_tracker.services.sharing import ShareChange, share
    from budget_tracker.services.users import acting_user

    def work(session: Session) -> ShareChange:
        owner = acting_user(session, user_email=user_email).user
        return share(session, owner=owner, email=email, read_only=read_only)

    change = state.database.run(work, write=True)
    access = "read-only" if read_only else "read-write"
    verb = "Changed the share of" if change.existed else "Shared"
    click.echo(f"{verb} {change.owner}'s budget with {change.member} ({access})")


@click.command("unshare")
@click.argument("email", type=EMAIL)
@user_option
@click.pass_obj
def unshare_command(state: AppState, email: str, user_email: str | None) -> None:
    """Stop sharing your budget with the user EMAIL.

    \b
    Example:
      budget unshare bob@example.com
    """
    from sqlalchemy.orm import Session

    from budget_tracker.services.sharing import ShareChange, unshare
    from budget_tracker.services.users import acting_user

    def work(session: Session) -> ShareChange:
        owner = acting_user(session, user_email=user_email).user
        return unshare(session, owner=owner, email=email)

    change = state.database.run(work, write=True)
    click.echo(f"{change.owner}'s budget is no longer shared with {change.member}")


@click.command("shares")
@user_option
@format_option
@click.pass_obj
def shares_command(state: AppState, user_email: str | None, fmt: str) -> None:
    """List the budgets you share and those shared with you.

    \b
    Example:
      budget shares --format json
    """
    from sqlalchemy.orm import Session

    from budget_tracker.services.sharing import list_shares
    from budget_tracker.services.users import find_acting_user

    def work(session: Session) -> list[dict[str, str]]:
        user = find_acting_user(session, user_email=user_email)
        return [asdict(row) for row in list_shares(session, user=user)]

    rows = state.database.run(work, write=False)
    emit(rows, SHARE_COLUMNS, fmt, empty_message="no shared budgets")
