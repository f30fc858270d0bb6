"""`budget add-expense`, `expenses`, `edit-expense`, `delete-expense`."""

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
    expense_json,
    info,
    print_json,
    printable,
    result_format_option,
    warn,
)
from budget_tracker.cli.params import (
    AMOUNT,
    DATE,
    DESCRIPTION,
    ID,
    NAME,
    entered_by_option,
    format_option,
    listing_options,
    listing_window,
    user_option,
)
from budget_tracker.cli.state import AppState
from budget_tracker.money import format_amount

EXPENSE_COLUMNS = (
    Column("id", "ID", ">"),
    Column("date", "Date"),
    Column("category", "Category"),
    Column("amount", "Amount", ">"),
    Column("description", "Description"),
)


def summary(row: Any) -> str:
    """One line describing an expense (an `ExpenseRow`)."""
    text = f"{format_amount(row.amount)} {printable(row.category)} on {row.date.isoformat()}"
    return f"{text}: {printable(row.description)}" if row.description else text


@click.command("add-expense")
@click.argument("amount", type=AMOUNT)
@click.argument("category", type=NAME)
@click.argument("description", type=DESCRIPTION, required=False, default="")
@click.option("--date", "spent_on", type=DATE, help="Day of the expense (default: today).")
@result_format_option
@user_option
@click.pass_obj
def add_expense(
    state: AppState,
    amount: Decimal,
    category: str,
    description: str,
    spent_on: dt.date | None,
    fmt: str,
    user_email: str | None,
) -> None:
    """Record an expense of AMOUNT in CATEGORY (matched in any case).

    Prints the new expense's id and a summary; warns on stderr, without failing, when the
    expense takes the category over its budget for the month.

    \b
    Example:
      budget add-expense 12.50 Food "Lunch"
      budget add-expense 40 transport --date yesterday
    """
    from budget_tracker.services.expenses import add_expense as add

    day = spent_on or state.today()
    # Generated once per invocation, outside the retry loop: every retry of this unit of
    # work carries the same key, so a write that did commit can be recognised.
    key = uuid.uuid4().hex
    added = state.database.run(
        lambda session: add(
            session,
            user_email=user_email,
            category=category,
            amount=amount,
            spent_on=day,
            description=description,
            idempotency_key=key,
        ),
        write=True,
    )
    announce_first_run(added.first_run)
    if fmt == "json":
        print_json(expense_json(added.expense))
    else:
        click.echo(f"Added expense {added.expense.id}: {summary(added.expense)}")
    warn_if_over_budget(added.expense.category, added.month)


def warn_if_over_budget(category: str, month: Any) -> None:
    """The over-budget warning of add-expense and edit-expense (`month`: a `MonthBudget`),
    by the one over-budget rule of `services.budgets`."""
    figures = month.figures
    if figures.over_budget:
        warn(
            f"{category} is over its {month.month:%Y-%m} budget: spent "
            f"{format_amount(figures.spent)} of {format_amount(figures.spent + figures.available)} "
            f"({format_amount(-figures.available)} over)"
        )


@click.command("expenses")
@listing_options(searched="the description")
@click.option("--category", type=NAME, help="Only this category.")
@entered_by_option
@format_option
@user_option
@click.pass_obj
def list_expenses(
    state: AppState,
    month: dt.date | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
    category: str | None,
    search: str | None,
    min_amount: Decimal | None,
    max_amount: Decimal | None,
    limit: int | None,
    entered_by: str | None,
    fmt: str,
    user_email: str | None,
) -> None:
    """List expenses, newest first, with a total line.

    The total and count cover every matching expense, also those cut off by --limit.
    JSON output is an object: {"expenses": [...], "count": N, "total": "..."}.
    Who entered each expense is in JSON and CSV (entered_by); the table shows an
    "Entered by" column when someone other than the budget's own user entered one.

    \b
    Example:
      budget expenses --month 2026-03 --category food
      budget expenses --search lunch --min 10 --format csv
      budget expenses --entered-by bob@example.com --user alice@example.com
    """
    from budget_tracker.services.expenses import ExpenseFilter
    from budget_tracker.services.expenses import list_expenses as list_

    start, end = listing_window(month, date_from, date_to, min_amount, max_amount)
    filters = ExpenseFilter(
        date_from=start,
        date_to=end,
        category=category,
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
        entered_by_columns(EXPENSE_COLUMNS, listing.rows, owner_id=listing.user_id, fmt=fmt),
        fmt,
        footer={
            "date": "Total",
            "category": counted(listing.count, "expense"),
            "amount": listing.total,
        },
        json_data={
            "expenses": [expense_json(row) for row in listing.rows],
            "count": listing.count,
            "total": listing.total,
        },
        empty_message="no expenses match",
    )
    if fmt == "table" and len(rows) < listing.count:
        info(f"showing {len(rows)} of {listing.count} matching expenses (--limit)")


@click.command("edit-expense")
@click.argument("expense_id", metavar="ID", type=ID)
@click.option("--amount", type=AMOUNT, help="New amount.")
@click.option("--category", type=NAME, help="New category (any case).")
@click.option("--description", type=DESCRIPTION, help='New description ("" clears it).')
@click.option("--date", "spent_on", type=DATE, help="New day.")
@result_format_option
@user_option
@click.pass_obj
def edit_expense(
    state: AppState,
    expense_id: int,
    amount: Decimal | None,
    category: str | None,
    description: str | None,
    spent_on: dt.date | None,
    fmt: str,
    user_email: str | None,
) -> None:
    """Change an expense's amount, category, description or date.

    \b
    Example:
      budget edit-expense 42 --amount 13.20 --category transport
    """
    from budget_tracker.services.expenses import edit_expense as edit

    if amount is None and category is None and description is None and spent_on is None:
        raise click.UsageError(
            "nothing to change: give --amount, --category, --description or --date"
        )
    change = state.database.run(
        lambda session: edit(
            session,
            user_email=user_email,
            expense_id=expense_id,
            amount=amount,
            category=category,
            description=description,
            spent_on=spent_on,
        ),
        write=True,
    )
    announce_first_run(change.first_run)
    assert change.after is not None
    if fmt == "json":
        print_json(expense_json(change.after))
    else:
        click.echo(f"Updated expense {expense_id}: {summary(change.after)}")
    info(f"was: {summary(change.before)}")
    if change.month is not None:
        warn_if_over_budget(change.after.category, change.month)


@click.command("delete-expense")
@click.argument("expense_id", metavar="ID", type=ID)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@result_format_option
@user_option
@click.pass_obj
def delete_expense(
    state: AppState, expense_id: int, yes: bool, fmt: str, user_email: str | None
) -> None:
    """Delete an expense. Asks first when run on a terminal; --yes skips the question.

    \b
    Example:
      budget delete-expense 42 --yes
    """
    from budget_tracker.services.expenses import delete_expense as delete
    from budget_tracker.services.expenses import get_expense

    if not yes and sys.stdin.isatty():
        row = state.database.run(
            lambda session: get_expense(session, user_email=user_email, expense_id=expense_id),
            write=False,
        )
        click.confirm(f"Delete expense {expense_id} ({summary(row)})?", abort=True, err=True)
    change = state.database.run(
        lambda session: delete(session, user_email=user_email, expense_id=expense_id),
        write=True,
    )
    announce_first_run(change.first_run)
    if fmt == "json":
        print_json(expense_json(change.before))
    else:
        click.echo(f"Deleted expense {expense_id}: {summary(change.before)}")
