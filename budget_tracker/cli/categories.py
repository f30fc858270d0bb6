"""`budget category add|list|rename|set-budget|set-rollover|budgets|delete|merge`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import click

from budget_tracker.cli.output import (
    Column,
    announce_first_run,
    category_json,
    counted,
    emit,
    info,
    print_json,
    printable,
    result_format_option,
)
from budget_tracker.cli.params import (
    BUDGET_AMOUNT,
    COLOR,
    MONTH,
    NAME,
    format_option,
    user_option,
)
from budget_tracker.cli.state import AppState
from budget_tracker.money import format_amount

CATEGORY_COLUMNS = (
    Column("id", "ID", ">"),
    Column("name", "Category"),
    Column("color", "Colour"),
    Column("budget", "Budget", ">"),
    Column("carried", "Carried", ">"),
    Column("spent", "Spent", ">"),
    Column("available", "Available", ">"),
)


@click.group("category")
def category() -> None:
    """Spending categories and their monthly budgets (names match in any case).

    \b
    Example:
      budget category add Rent --budget 900 --color "#C0392B"
      budget category list
    """


@category.command("add")
@click.argument("name", type=NAME)
@click.option(
    "--budget", type=BUDGET_AMOUNT, default="0", show_default=True, help="Monthly budget."
)
@click.option(
    "--from",
    "from_month",
    type=MONTH,
    help="The budget starts this month (YYYY-MM); no budget before. Default: this month.",
)
@click.option("--color", type=COLOR, help="Colour as #RRGGBB.")
@result_format_option
@user_option
@click.pass_obj
def add(
    state: AppState,
    name: str,
    budget: Decimal,
    from_month: dt.date | None,
    color: str | None,
    fmt: str,
    user_email: str | None,
) -> None:
    """Add a category, optionally with a monthly budget and a colour.

    The budget starts this month (or the --from month): earlier months have no budget
    for it; `category set-budget --from` changes that later.

    \b
    Example:
      budget category add Rent --budget 900 --color "#C0392B"
      budget category add Gym --budget 40 --from 2026-09
    """
    from budget_tracker.services.categories import add_category

    added = state.database.run(
        lambda session: add_category(
            session,
            user_email=user_email,
            name=name,
            monthly_budget=budget,
            color=color,
            from_month=from_month or state.today(),
        ),
        write=True,
    )
    announce_first_run(added.first_run)
    if fmt == "json":
        print_json(category_json(added))
        return
    since = f" from {added.month:%Y-%m}" if added.month is not None else ""
    click.echo(
        f"Added category {added.id}: {added.name} "
        f"(monthly budget {format_amount(added.monthly_budget)}{since})"
    )


@category.command("list")
@click.option("--month", type=MONTH, help="Budget and spending of this month (default: now).")
@format_option
@user_option
@click.pass_obj
def list_(state: AppState, month: dt.date | None, fmt: str, user_email: str | None) -> None:
    """List categories with this month's budget (transfers included), what was carried in
    (rollover), spending and what is available.

    JSON output is an object: {"month": "YYYY-MM", "categories": [...]}.

    \b
    Example:
      budget category list
      budget category list --month 2026-03 --format json
    """
    from budget_tracker.services.budgets import Figures
    from budget_tracker.services.categories import list_categories

    day = month or state.today()
    listing = state.database.run(
        lambda session: list_categories(session, user_email=user_email, today=day), write=False
    )
    announce_first_run(listing.first_run)
    rows: list[dict[str, Any]] = [
        {
            **category_json(row),
            "budget": row.budget,
            "carried": row.carried,
            "spent": row.spent,
            "available": row.available,
        }
        for row in listing.rows
    ]
    total = Figures.total(listing.rows)
    footer = {
        "name": f"Total {listing.month:%Y-%m}",
        "budget": total.budget,
        "carried": total.carried,
        "spent": total.spent,
        "available": total.available,
    }
    # What was carried in is shown only when some category carries something.
    carrying = any(row.carried for row in listing.rows)
    emit(
        rows,
        CATEGORY_COLUMNS
        if carrying
        else tuple(column for column in CATEGORY_COLUMNS if column.key != "carried"),
        fmt,
        footer=footer,
        json_data={"month": f"{listing.month:%Y-%m}", "categories": rows},
        empty_message="no categories yet: add one with `budget category add NAME`",
    )


@category.command("rename")
@click.argument("name", type=NAME)
@click.argument("new_name", metavar="NEW_NAME", type=NAME)
@user_option
@click.pass_obj
def rename(state: AppState, name: str, new_name: str, user_email: str | None) -> None:
    """Rename a category (its expenses, budget and transfers stay with it).

    \b
    Example:
      budget category rename food Groceries
    """
    from budget_tracker.services.categories import rename_category

    changed = state.database.run(
        lambda session: rename_category(
            session, user_email=user_email, name=name, new_name=new_name
        ),
        write=True,
    )
    announce_first_run(changed.first_run)
    click.echo(f"Renamed category {printable(changed.old_name or '')} to {printable(changed.name)}")


@category.command("set-budget")
@click.argument("name", type=NAME)
@click.argument("amount", type=BUDGET_AMOUNT)
@click.option(
    "--from",
    "from_month",
    type=MONTH,
    help="From this month on (YYYY-MM), until a later change; default: this month.",
)
@click.option("--month", "one_month", type=MONTH, help="For this one month only (YYYY-MM).")
@user_option
@click.pass_obj
def set_budget(
    state: AppState,
    name: str,
    amount: Decimal,
    from_month: dt.date | None,
    one_month: dt.date | None,
    user_email: str | None,
) -> None:
    """Set a category's monthly budget from a month on (0 removes it; transfers still count).

    Earlier months keep their budgets; a later change that already exists stays in force
    from its own month. With --month the budget applies to that one month only, and the
    month after returns to the standing budget.

    \b
    Example:
      budget category set-budget Food 400
      budget category set-budget Food 350 --from 2026-01
      budget category set-budget Gifts 200 --month 2026-12
    """
    from budget_tracker.services.categories import set_category_budget

    if from_month is not None and one_month is not None:
        raise click.UsageError("use either --from or --month, not both")
    month = one_month or from_month or state.today()
    changed = state.database.run(
        lambda session: set_category_budget(
            session,
            user_email=user_email,
            name=name,
            monthly_budget=amount,
            month=month,
            one_month=one_month is not None,
        ),
        write=True,
    )
    announce_first_run(changed.first_run)
    old = format_amount(changed.old_budget or Decimal(0))
    when = f"for {month:%Y-%m} only" if changed.one_month else f"from {month:%Y-%m} on"
    click.echo(
        f"Set the monthly budget of {changed.name} to "
        f"{format_amount(changed.monthly_budget)} {when} (was {old})"
    )


HISTORY_COLUMNS = (
    Column("from", "From"),
    Column("to", "To"),
    Column("amount", "Budget", ">"),
    Column("kind", "Kind"),
)


@category.command("set-rollover")
@click.argument("name", type=NAME)
@click.argument("setting", type=click.Choice(["on", "off"]), metavar="on|off")
@click.option(
    "--from",
    "from_month",
    type=MONTH,
    help="From this month on (YYYY-MM), until a later change; default: this month.",
)
@user_option
@click.pass_obj
def set_rollover(
    state: AppState, name: str, setting: str, from_month: dt.date | None, user_email: str | None
) -> None:
    """Carry what is left of a category's month into the next month (on), or stop (off).

    What is left of a month is its budget plus what was carried in, plus transfers in,
    minus transfers out, minus what was spent; negative when overspent, and then the
    next month starts short. Switched off from a month, that month keeps what was carried
    into it, but nothing is carried out of it; switched on again, it starts from nothing
    carried. A later change that already exists stays in force from its own month.

    \b
    Example:
      budget category set-rollover Food on --from 2026-01
      budget category set-rollover Food off
    """
    from budget_tracker.services.categories import set_rollover as set_category_rollover

    month = from_month or state.today()
    changed = state.database.run(
        lambda session: set_category_rollover(
            session, user_email=user_email, name=name, enabled=setting == "on", month=month
        ),
        write=True,
    )
    announce_first_run(changed.first_run)
    click.echo(
        f"Rollover of {printable(changed.category)} is {'on' if changed.enabled else 'off'} "
        f"from {changed.month:%Y-%m} on (was {'on' if changed.was_enabled else 'off'})"
    )


@category.command("budgets")
@click.argument("name", type=NAME)
@format_option
@user_option
@click.pass_obj
def budgets(state: AppState, name: str, fmt: str, user_email: str | None) -> None:
    """List a category's monthly budgets over time, its one-month overrides, and when it
    rolls over.

    `from` empty: since the beginning; `to` empty: until further notice. Rollover lines
    have the kind `rollover on` or `rollover off` and no amount. JSON output is an
    object: {"category": NAME, "budgets": [{"from", "to", "amount", "one_month"}],
    "rollover": [{"from", "to", "enabled"}]}.

    \b
    Example:
      budget category budgets Food
      budget category budgets Food --format json
    """
    from budget_tracker.services.categories import budget_history

    result = state.database.run(
        lambda session: budget_history(session, user_email=user_email, name=name), write=False
    )
    announce_first_run(result.first_run)

    def month(value: dt.date | None) -> str | None:
        return f"{value:%Y-%m}" if value else None

    rows: list[dict[str, Any]] = [
        {
            "from": month(period.first),
            "to": month(period.last),
            "amount": period.amount,
            "kind": "one month" if period.one_month else "standing",
            "one_month": period.one_month,
        }
        for period in result.periods
    ]
    rollover = [
        {"from": month(period.first), "to": month(period.last), "enabled": period.enabled}
        for period in result.rollover
    ]
    listed = [{key: value for key, value in row.items() if key != "one_month"} for row in rows]
    listed += [
        {
            "from": period["from"],
            "to": period["to"],
            "amount": "",
            "kind": f"rollover {'on' if period['enabled'] else 'off'}",
        }
        for period in rollover
    ]
    emit(
        listed,
        HISTORY_COLUMNS,
        fmt,
        json_data={
            "category": result.category,
            "budgets": [{k: v for k, v in row.items() if k != "kind"} for row in rows],
            "rollover": rollover,
        },
        empty_message=f"{result.category} has no budget",
    )


def _moved(removal: Any) -> str:
    text = (
        f"moved {counted(removal.expenses_moved, 'expense')} and "
        f"{counted(removal.transfers_moved, 'transfer')} to {removal.target}"
    )
    if removal.transfers_netted:
        text += (
            f"; removed {counted(removal.transfers_netted, 'transfer')} between "
            f"{removal.source} and {removal.target}, which net out once they are one category"
        )
    return text


@category.command("delete")
@click.argument("name", type=NAME)
@click.option(
    "--move-to",
    "move_to",
    metavar="OTHER",
    type=NAME,
    help="Fold it into OTHER: its expenses, transfers and budget move there (as merge).",
)
@click.option(
    "--allow-overdraw",
    is_flag=True,
    help="Move it even if OTHER would be left with a budget below zero in some month.",
)
@user_option
@click.pass_obj
def delete(
    state: AppState,
    name: str,
    move_to: str | None,
    allow_overdraw: bool,
    user_email: str | None,
) -> None:
    """Delete a category. Refused while it has expenses or transfers, unless --move-to.

    With --move-to OTHER it is folded into OTHER exactly as `budget category merge` does:
    budgets are combined, so no month of OTHER loses budget. Refused (exit 1) when OTHER
    would be left with a budget below zero in some month, unless --allow-overdraw.

    \b
    Example:
      budget category delete Entertainment
      budget category delete Takeaway --move-to Food
    """
    from budget_tracker.services.categories import delete_category

    removal = state.database.run(
        lambda session: delete_category(
            session,
            user_email=user_email,
            name=name,
            move_to=move_to,
            today=state.today(),
            allow_overdraw=allow_overdraw,
        ),
        write=True,
    )
    announce_first_run(removal.first_run)
    if removal.target is None:
        click.echo(f"Deleted category {printable(removal.source)}")
    else:
        click.echo(f"Deleted category {printable(removal.source)}; {_moved(removal)}")
        info(
            f"{removal.target}'s monthly budget is now "
            f"{format_amount(removal.target_budget or Decimal(0))}"
        )


@category.command("merge")
@click.argument("source", type=NAME)
@click.option("--into", "target", required=True, metavar="TARGET", type=NAME, help="Keep this one.")
@click.option(
    "--allow-overdraw",
    is_flag=True,
    help="Merge even if TARGET would be left with a budget below zero in some month.",
)
@user_option
@click.pass_obj
def merge(
    state: AppState, source: str, target: str, allow_overdraw: bool, user_email: str | None
) -> None:
    """Merge SOURCE into TARGET: move every expense and transfer, add SOURCE's monthly
    budget to TARGET's, and remove SOURCE, all in one transaction.

    Transfers between the two net out inside the merged category and are removed.
    Refused (exit 1) when TARGET would be left with a budget below zero in some month
    (only an overdrawn transfer makes that possible), unless --allow-overdraw.

    \b
    Example:
      budget category merge Takeaway --into Food
    """
    from budget_tracker.services.categories import merge_categories

    removal = state.database.run(
        lambda session: merge_categories(
            session,
            user_email=user_email,
            source=source,
            target=target,
            today=state.today(),
            allow_overdraw=allow_overdraw,
        ),
        write=True,
    )
    announce_first_run(removal.first_run)
    click.echo(
        f"Merged {printable(removal.source)} into {printable(removal.target or '')}: "
        f"{_moved(removal)}"
    )
    info(
        f"{removal.target}'s monthly budget is now "
        f"{format_amount(removal.target_budget or Decimal(0))}"
    )
