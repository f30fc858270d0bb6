"""`budget add-income`, `income`, `edit-income`, `delete-income`."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from dataclasses import asdict
from decimal import Decimal
from typing import Any

import click

from budget_tracker.cli.output import (
    Column,
    announce_first_run,
    counted,
    emit,
    entered_by_cell,
    entered_by_columns,
    income_json,
    info,
    print_json,
    printable,
    result_format_option,
)
from budget_tracker.cli.params import (
    AMOUNT,
    DATE,
    DESCRIPTION,
    ID,
    entered_by_option,
    format_option,
    listing_options,
    listing_window,
    user_option,
)
from budget_tracker.cli.state import AppState
from budget_tracker.money import format_amount

INCOME_COLUMNS = (
    Column("id", "ID", ">"),
    Column("date", "Date"),
    Column("amount", "Amount", ">"),
    Column("source", "Source"),
)


def summary(row: Any) -> str:
    """One line describing an income entry (an `IncomeRow`)."""
    text = f"{format_amount(row.amount)} on {row.date.isoformat()}"
    return f"{text}: {printable(row.source)}" if row.source else text


@click.command("add-income")
@click.argument("amount", type=AMOUNT)
@click.argument("source", type=DESCRIPTION, required=False, default="")
@click.option("--date", "received_on", type=DATE, help="Day it was received (default: today).")
@user_option
@result_format_option
@click.pass_obj
def add_income(
    state: AppState,
    amount: Decimal,
    source: str,
    received_on: dt.date | None,
    user_email: str | None,
    fmt: str,
) -> None:
    """Record income of AMOUNT, optionally with its SOURCE.

    \b
    Example:
      budget add-income 3200 "Salary"
      budget add-income 150 "Side job" --date 2026-11-03
    """
    from budget_tracker.services.income import add_income as add

    day = received_on or state.today()
    key = uuid.uuid4().hex  # once per invocation: a retry recognises a committed write
    added = state.database.run(
        lambda session: add(
            session,
            user_email=user_email,
            amount=amount,
            received_on=day,
            source=source,
            idempotency_key=key,
        ),
        write=True,
    )
    announce_first_run(added.first_run)
    if fmt == "json":
        print_json(income_json(added.income))
    else:
        click.echo(f"Added income {added.income.id}: {summary(added.income)}")


@click.command("income")
@listing_options(searched="the source")
@entered_by_option
@format_option
@user_option
@click.pass_obj
def list_income(
    state: AppState,
    month: dt.date | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
    search: str | None,
    min_amount: Decimal | None,
    max_amount: Decimal | None,
    limit: int | None,
    entered_by: str | None,
    fmt: str,
    user_email: str | None,
) -> None:
    """List income, newest first, with a total line.

    The total and count cover every match, also those cut off by --limit.
    JSON output is an object: {"income": [...], "count": N, "total": "..."}.
    Who entered each entry is in JSON and CSV (entered_by); the table shows an
    "Entered by" column when someone other than the budget's own user entered one.

    \b
    Example:
      budget income --month 2026-03
      budget income --search salary --format csv
    """
    from budget_tracker.services.income import IncomeFilter
    from budget_tracker.services.income import list_income as list_

    start, end = listing_window(month, date_from, date_to, min_amount, max_amount)
    filters = IncomeFilter(
        date_from=start,
        date_to=end,
        search=search or None,
        min_amount=min_amount,
        max_amount=max_amount,
        limit=limit,
        entered_by=entered_by,
    )
    listing = state.database.run(
        lambda session: list_(session, user_email=user_email, filters=filters), write=False
    )
    announce_first_run(listing.first_run)
    rows = [{**asdict(row), "entered_by": entered_by_cell(row, fmt)} for row in listing.rows]
    emit(
        rows,
        entered_by_columns(INCOME_COLUMNS, listing.rows, owner_id=listing.user_id, fmt=fmt),
        fmt,
        footer={
            "date": "Total",
            "amount": listing.total,
            "source": counted(listing.count, "entry"),
        },
        json_data={
            "income": [income_json(row) for row in listing.rows],
            "count": listing.count,
            "total": listing.total,
        },
        empty_message="no income matches",
    )
    if fmt == "table" and len(rows) < listing.count:
        info(f"showing {len(rows)} of {listing.count} matching entries (--limit)")


@click.command("edit-income")
@click.argument("income_id", metavar="ID", type=ID)
@click.option("--amount", type=AMOUNT, help="New amount.")
@click.option("--source", type=DESCRIPTION, help='New source ("" clears it).')
@click.option("--date", "received_on", type=DATE, help="New day.")
@user_option
@result_format_option
@click.pass_obj
def edit_income(
    state: AppState,
    income_id: int,
    amount: Decimal | None,
    source: str | None,
    received_on: dt.date | None,
    user_email: str | None,
    fmt: str,
) -> None:
    """Change an income entry's amount, source or date.

    \b
    Example:
      budget edit-income 3 --amount 3250
    """
    from budget_tracker.services.income import edit_income as edit

    if amount is None and source is None and received_on is None:
        raise click.UsageError("nothing to change: give --amount, --source or --date")
    change = state.database.run(
        lambda session: edit(
            session,
            user_email=user_email,
            income_id=income_id,
            amount=amount,
            source=source,
            received_on=received_on,
        ),
        write=True,
    )
    announce_first_run(change.first_run)
    assert change.after is not None
    if fmt == "json":
        print_json(income_json(change.after))
    else:
        click.echo(f"Updated income {income_id}: {summary(change.after)}")
    info(f"was: {summary(change.before)}")


@click.command("delete-income")
@click.argument("income_id", metavar="ID", type=ID)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@user_option
@result_format_option
@click.pass_obj
def delete_income(
    state: AppState, income_id: int, yes: bool, user_email: str | None, fmt: str
) -> None:
    """Delete an income entry. Asks first when run on a terminal; --yes skips the question.

    \b
    Example:
      budget delete-income 3 --yes
    """
    from budget_tracker.services.income import delete_income as delete

    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete income {income_id}?", abort=True, err=True)
    change = state.database.run(
        lambda session: delete(session, user_email=user_email, income_id=income_id),
        write=True,
    )
    announce_first_run(change.first_run)
    if fmt == "json":
        print_json(income_json(change.before))
    else:
        click.echo(f"Deleted income {income_id}: {summary(change.before)}")
