"""`budget report` and `budget verify`: parse, run one service, format.

Services are imported inside the command bodies so `--help` stays free of SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from budget_tracker.cli.output import (
    Column,
    announce_first_run,
    column_widths,
    dump_json,
    entered_by_cell,
    entered_by_columns,
    expense_json,
    info,
    render_table,
    terminal_width,
    user_json,
    write_csv,
)
from budget_tracker.cli.params import (
    COUNT,
    MONTH,
    NAME,
    FilePath,
    entered_by_option,
    format_option,
    options_checked,
    user_option,
)
from budget_tracker.errors import BudgetError
from budget_tracker.money import format_amount

if TYPE_CHECKING:
    from budget_tracker.cli.state import AppState
    from budget_tracker.services.budgets import Figures, Period
    from budget_tracker.services.reports import (
        CategoryReport,
        MatrixCell,
        MatrixReport,
        MonthLine,
        PersonLine,
        PersonReport,
        ReportUser,
        TrendReport,
    )
    from budget_tracker.services.verify import Verification

BAR_WIDTH = 20
OVER_MARKER = "!"
OVER_STYLE: dict[str, Any] = {"fg": "red", "bold": True}


def period_options(f: Any) -> Any:
    """`--month` or `--from/--to` (months, inclusive)."""
    f = click.option("--to", "to_month", type=MONTH, help="Last month of a range (YYYY-MM).")(f)
    f = click.option("--from", "from_month", type=MONTH, help="First month of a range (YYYY-MM).")(
        f
    )
    return click.option("--month", type=MONTH, help="One month (YYYY-MM); default: this month.")(f)


def _period(
    today: dt.date,
    month: dt.date | None,
    from_month: dt.date | None,
    to_month: dt.date | None,
    *,
    default_months: int = 1,
) -> Period:
    from budget_tracker.services.budgets import resolve_period

    with options_checked():
        return resolve_period(
            today=today,
            month=month,
            from_month=from_month,
            to_month=to_month,
            default_months=default_months,
        )


@click.command("report")
@period_options
@click.option(
    "--by",
    type=click.Choice(["category", "month", "person"]),
    default="category",
    show_default=True,
    help="One row per category, a month-by-month trend (default range: the last 12 "
    "months), or spending per person who entered it.",
)
@click.option(
    "--matrix",
    is_flag=True,
    help="Categories as rows and months as columns (spent, ! when over budget), with totals "
    "both ways (default range: the last 12 months).",
)
@click.option("--category", type=NAME, metavar="NAME", help="Only this category.")
@click.option(
    "--top",
    type=COUNT,
    metavar="N",
    help="Also list the N largest expenses of the period (table and json).",
)
@entered_by_option
@user_option
@format_option
@click.pass_obj
def report(
    state: AppState,
    month: dt.date | None,
    from_month: dt.date | None,
    to_month: dt.date | None,
    by: str,
    matrix: bool,
    category: str | None,
    top: int | None,
    entered_by: str | None,
    user_email: str | None,
    fmt: str,
) -> None:
    """Budget against spending per category (or per month, or per person, with --by).

    A category's budget for a month is its monthly budget plus transfers in minus
    transfers out; over a range, the months' budgets are summed. A category that rolls
    over also has what was carried into the first month (a Carried column appears);
    available is budget + carried - spent. Rows over budget are marked with "!" (and red
    on a terminal). --matrix puts the months side by side: a table wider than
    the terminal is refused (exit 1) with how to narrow it.
    With --entered-by, spending and income count only what that user entered (budgets
    stay the budget's).

    \b
    Example:
      budget report
      budget report --month 2028-02 --top 5
      budget report --from 2028-01 --to 2028-03 --format json
      budget report --by month --category Food
      budget report --from 2028-01 --to 2028-06 --matrix
      budget report --by person --user alice@example.com
    """
    if matrix:
        clashes = [
            option
            for option, given in (
                (f"--by {by}", by != "category"),
                ("--top", top is not None),
                ("--entered-by", entered_by is not None),
            )
            if given
        ]
        if clashes:
            raise click.UsageError(f"--matrix cannot be combined with {' or '.join(clashes)}")
        from budget_tracker.services.reports import TREND_DEFAULT_MONTHS, month_matrix

        period = _period(
            state.today(), month, from_month, to_month, default_months=TREND_DEFAULT_MONTHS
        )
        grid = state.database.run(
            lambda session: month_matrix(
                session, user_email=user_email, period=period, category=category
            ),
            write=False,
        )
        announce_first_run(grid.first_run)
        _print_matrix(grid, fmt)
        return
    if top is not None and (by != "category" or fmt == "csv"):
        raise click.UsageError("--top works with the category report in table or json format")
    if by == "person":
        from budget_tracker.services.reports import person_report

        period = _period(state.today(), month, from_month, to_month)
        people = state.database.run(
            lambda session: person_report(
                session,
                user_email=user_email,
                period=period,
                category=category,
                entered_by=entered_by,
            ),
            write=False,
        )
        announce_first_run(people.first_run)
        _print_people(people, fmt)
        return
    if by == "month":
        from budget_tracker.services.reports import TREND_DEFAULT_MONTHS, monthly_trend

        period = _period(
            state.today(), month, from_month, to_month, default_months=TREND_DEFAULT_MONTHS
        )
        trend = state.database.run(
            lambda session: monthly_trend(
                session,
                user_email=user_email,
                period=period,
                category=category,
                entered_by=entered_by,
            ),
            write=False,
        )
        announce_first_run(trend.first_run)
        _print_trend(trend, fmt)
        return
    from budget_tracker.services.reports import category_report

    period = _period(state.today(), month, from_month, to_month)
    result = state.database.run(
        lambda session: category_report(
            session,
            user_email=user_email,
            period=period,
            category=category,
            top=top or 0,
            entered_by=entered_by,
        ),
        write=False,
    )
    announce_first_run(result.first_run)
    _print_category_report(result, fmt)


@click.command("verify")
@period_options
@click.option(
    "--from-file",
    type=FilePath(exists=True, dir_okay=False, path_type=Path),
    help="Take expenses from this CSV export (date,amount,category,description) "
    "instead of the database.",
)
@user_option
@click.pass_obj
def verify(
    state: AppState,
    month: dt.date | None,
    from_month: dt.date | None,
    to_month: dt.date | None,
    from_file: Path | None,
    user_email: str | None,
) -> None:
    """Check the report against an independent sum of the raw rows.

    Recomputes every category's budget and spending in Python from rows streamed from the
    database (or expenses read from an export file) and compares them with the report's
    SQL to the cent. Prints "verified" and the totals (exit 0), or the mismatches (exit 1).

    \b
    Example:
      budget verify --month 2028-02
      budget verify --from 2028-01 --to 2028-12 --from-file expenses.csv
    """
    from budget_tracker.services.verify import verify_report

    period = _period(state.today(), month, from_month, to_month)
    result = state.database.run(
        lambda session: verify_report(
            session, user_email=user_email, period=period, from_file=from_file
        ),
        write=False,
    )
    announce_first_run(result.report.first_run)
    _print_verification(result)
    if not result.verified:
        # The mismatches are the output (stdout); the verdict is the one error line.
        mismatches = _plural(len(result.mismatches), "mismatch", "mismatches")
        raise BudgetError(f"verification failed: {mismatches}")


# --- formatting -------------------------------------------------------------------------


def bar(spent: Decimal, budget: Decimal | None, width: int = BAR_WIDTH) -> str:
    """Spent against budget as `[####......]`; full when over budget or without a budget."""
    if spent <= 0:
        filled = 0
    elif budget is None or budget <= 0 or spent >= budget:
        filled = width
    else:
        filled = int((spent * width / budget).to_integral_value(rounding=ROUND_HALF_UP))
        filled = min(width, max(1, filled))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _percent_text(value: Decimal | None, spent: Decimal) -> str:
    if value is None:
        return "no budget" if spent > 0 else "-"
    return f"{value}%"


def _header(user: ReportUser, period: Period, category: str | None = None) -> str:
    what = f" ({category})" if category else ""
    return f"Budget report for {user.name} <{user.email}>{what}: {period.label}"


def _period_json(period: Period) -> dict[str, Any]:
    return {
        "from": f"{period.first:%Y-%m}",
        "to": f"{period.last:%Y-%m}",
        "months": period.months,
        "start_date": period.first,
        "end_date": period.end - dt.timedelta(days=1),
    }


def _summary_json(result: CategoryReport) -> dict[str, Any]:
    summary = result.summary
    rate = summary.savings_rate
    return {
        "income": summary.income,
        "budgeted": summary.budgeted,
        "spent": summary.spent,
        "saved": summary.saved,
        "unbudgeted": summary.unbudgeted,
        "savings_rate": str(rate) if rate is not None else None,
    }


def _summary_line(result: CategoryReport) -> str:
    summary = result.summary
    return (
        f"Income {format_amount(summary.income)}  Budgeted {format_amount(summary.budgeted)}  "
        f"Spent {format_amount(summary.spent)}  Saved {format_amount(summary.saved)}  "
        f"Unbudgeted {format_amount(summary.unbudgeted)}"
    )


def _amounts_json(amounts: Figures) -> dict[str, Any]:
    percent_used = amounts.percent_used
    return {
        "budget": amounts.budget,
        "carried": amounts.carried,
        "spent": amounts.spent,
        "available": amounts.available,
        "percent_used": str(percent_used) if percent_used is not None else None,
        "over_budget": amounts.over_budget,
        "unbudgeted": amounts.unbudgeted,
    }


CATEGORY_COLUMNS = (
    Column("category", "Category"),
    Column("budget", "Budget", ">"),
    Column("carried", "Carried", ">"),
    Column("spent", "Spent", ">"),
    Column("available", "Available", ">"),
    Column("used", "Used", ">"),
    Column("bar", "Spent vs budget"),
    Column("flag", ""),
)
CATEGORY_CSV_COLUMNS = (
    Column("row", "row"),
    Column("category", "category"),
    Column("base_budget", "base_budget"),
    Column("transfers_in", "transfers_in"),
    Column("transfers_out", "transfers_out"),
    Column("budget", "budget"),
    Column("carried", "carried"),
    Column("spent", "spent"),
    Column("available", "available"),
    Column("percent_used", "percent_used"),
    Column("over_budget", "over_budget"),
    Column("unbudgeted", "unbudgeted"),
)
TOP_COLUMNS = (
    Column("date", "Date"),
    Column("category", "Category"),
    Column("amount", "Amount", ">"),
    Column("description", "Description"),
)


def _columns(
    columns: tuple[Column, ...], rows: list[dict[str, Any]], *, carried: bool = False
) -> tuple[Column, ...]:
    """Leave out the over-budget marker column when nothing is over budget, and the
    carried column unless a category in view rolls over (`carried`)."""
    left_out = {"carried"} if not carried else set()
    if not any(row["flag"] for row in rows):
        left_out.add("flag")
    return tuple(column for column in columns if column.key not in left_out)


def _without_carried(columns: tuple[Column, ...], carried: bool) -> tuple[Column, ...]:
    return columns if carried else tuple(column for column in columns if column.key != "carried")


def _budget_text(budget: Decimal | None) -> Decimal | str:
    return "-" if budget is None else budget


def _table_row(name: str, amounts: Figures) -> dict[str, Any]:
    return {
        "category": name,
        "budget": _budget_text(amounts.budget),
        "carried": amounts.carried,
        "spent": amounts.spent,
        "available": amounts.available,
        "used": _percent_text(amounts.percent_used, amounts.spent),
        "bar": bar(amounts.spent, amounts.funds),
        "flag": OVER_MARKER if amounts.flagged else "",
    }


def _print_category_report(result: CategoryReport, fmt: str) -> None:
    totals = result.totals
    if fmt == "json":
        data = {
            "user": user_json(result.user),
            "period": _period_json(result.period),
            "categories": [
                {
                    "category": line.category,
                    "base_budget": line.base_budget,
                    "transfers_in": line.transfers_in,
                    "transfers_out": line.transfers_out,
                    **_amounts_json(line),
                }
                for line in result.lines
            ],
            "totals": _amounts_json(totals),
            "summary": _summary_json(result),
        }
        if result.top:
            data["top_expenses"] = [expense_json(item) for item in result.top]
        click.echo(dump_json(data))
        return
    if fmt == "csv":
        csv_rows = [
            {
                "row": "category",
                "category": line.category,
                "base_budget": line.base_budget,
                "transfers_in": line.transfers_in,
                "transfers_out": line.transfers_out,
                **_amounts_json(line),
            }
            for line in result.lines
        ]
        csv_rows.append({"row": "total", **_amounts_json(totals)})
        for row in csv_rows:
            row["over_budget"] = "true" if row["over_budget"] else "false"
            row["unbudgeted"] = "true" if row["unbudgeted"] else "false"
        columns = _without_carried(CATEGORY_CSV_COLUMNS, result.rollover_in_view)
        write_csv(csv_rows, columns, sys.stdout)
        sys.stdout.flush()
        return
    click.echo(_header(result.user, result.period))
    click.echo(_summary_line(result))
    click.echo()
    if not result.lines:
        info("no categories yet: add one with `budget category add NAME --budget AMOUNT`")
        return
    rows = [_table_row(line.category, line) for line in result.lines]
    footer = _table_row("Total", totals)
    styles = [OVER_STYLE if line.flagged else None for line in result.lines]
    columns = _columns(CATEGORY_COLUMNS, [*rows, footer], carried=result.rollover_in_view)
    click.echo(render_table(rows, columns, footer=footer, styles=styles))
    if result.top:
        click.echo()
        click.echo(f"Largest {_plural(len(result.top), 'expense')}")
        click.echo(
            render_table(
                [
                    {
                        "date": item.spent_on,
                        "category": item.category,
                        "amount": item.amount,
                        "description": item.description,
                        "entered_by": entered_by_cell(item, fmt),
                    }
                    for item in result.top
                ],
                entered_by_columns(TOP_COLUMNS, result.top, owner_id=result.user.id, fmt=fmt),
            )
        )


TREND_COLUMNS = (
    Column("month", "Month"),
    Column("budget", "Budget", ">"),
    Column("carried", "Carried", ">"),
    Column("spent", "Spent", ">"),
    Column("available", "Available", ">"),
    Column("bar", "Spent vs budget"),
    Column("flag", ""),
)
TREND_CSV_COLUMNS = (
    Column("month", "month"),
    Column("budget", "budget"),
    Column("carried", "carried"),
    Column("spent", "spent"),
    Column("available", "available"),
    Column("income", "income"),
    Column("savings_rate", "savings_rate"),
)
TREND_INCOME_COLUMNS = (
    Column("income", "Income", ">"),
    Column("savings_rate", "Saved", ">"),
)


def _trend_row(label: str, amounts: Figures) -> dict[str, Any]:
    return {
        "month": label,
        "budget": _budget_text(amounts.budget),
        "carried": amounts.carried,
        "spent": amounts.spent,
        "available": amounts.available,
        "bar": bar(amounts.spent, amounts.funds),
        "flag": OVER_MARKER if amounts.flagged else "",
    }


def _rate(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _print_trend(trend: TrendReport, fmt: str) -> None:
    def numbers(amounts: Figures) -> dict[str, Any]:
        return {
            "budget": amounts.budget,
            "carried": amounts.carried,
            "spent": amounts.spent,
            "available": amounts.available,
        }

    def month_numbers(line: MonthLine) -> dict[str, Any]:
        return {
            "month": f"{line.month:%Y-%m}",
            **numbers(line),
            "income": line.income,
            "savings_rate": _rate(line.savings_rate),
        }

    if fmt == "json":
        data = {
            "user": user_json(trend.user),
            "period": _period_json(trend.period),
            "category": trend.category,
            "months": [month_numbers(line) for line in trend.lines],
            "totals": {**numbers(trend.totals), "income": trend.income},
            "average": {**numbers(trend.average), "income": trend.average_income},
        }
        click.echo(dump_json(data))
        return
    if fmt == "csv":
        rows = [month_numbers(line) for line in trend.lines]
        rows.append({"month": "average", **numbers(trend.average), "income": trend.average_income})
        write_csv(rows, _without_carried(TREND_CSV_COLUMNS, trend.carries), sys.stdout)
        sys.stdout.flush()
        return
    click.echo(_header(trend.user, trend.period, trend.category))
    click.echo()
    rows = [_trend_row(f"{line.month:%Y-%m}", line) for line in trend.lines]
    footer = _trend_row("Average", trend.average)
    footer["carried"] = ""  # carried into a month is not averaged
    styles = [OVER_STYLE if line.flagged else None for line in trend.lines]
    columns = _columns(TREND_COLUMNS, [*rows, footer], carried=trend.carries)
    if trend.income:
        for row, line in zip(rows, trend.lines, strict=True):
            rate = line.savings_rate
            row.update(income=line.income, savings_rate="-" if rate is None else f"{rate}%")
        footer.update(income=trend.average_income, savings_rate="")
        after = [column.key for column in columns].index("available") + 1
        columns = (*columns[:after], *TREND_INCOME_COLUMNS, *columns[after:])
    click.echo(render_table(rows, columns, footer=footer, styles=styles))


def _month_label(month: dt.date) -> str:
    return f"{month:%Y-%m}"


MATRIX_LEGEND = "Spent per month; ! over budget or spent without a budget (Total: the period)"


def _matrix_json(matrix: MatrixReport) -> dict[str, Any]:
    def cells(line: tuple[MatrixCell, ...]) -> list[dict[str, Any]]:
        return [{"month": _month_label(cell.month), **_amounts_json(cell)} for cell in line]

    return {
        "user": user_json(matrix.user),
        "period": _period_json(matrix.period),
        "category": matrix.category,
        "months": [_month_label(month) for month in matrix.months],
        "categories": [
            {
                "category": row.category,
                "months": cells(row.cells),
                "total": _amounts_json(row.total),
            }
            for row in matrix.rows
        ],
        "totals": {"months": cells(matrix.month_totals), "total": _amounts_json(matrix.total)},
    }


def _matrix_csv(matrix: MatrixReport) -> None:
    """Wide, as the table: per month its spent and budget columns, then the period's."""
    labels = [_month_label(month) for month in matrix.months]
    columns = [Column("row", "row"), Column("category", "category")]
    for label in [*labels, "total"]:
        columns += [Column(f"{label}_spent", ""), Column(f"{label}_budget", "")]

    def figures(cells: tuple[MatrixCell, ...], total: Figures) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for label, cell in zip([*labels, "total"], [*cells, total], strict=True):
            out.update({f"{label}_spent": cell.spent, f"{label}_budget": cell.budget})
        return out

    rows = [
        {"row": "category", "category": row.category, **figures(row.cells, row.total)}
        for row in matrix.rows
    ]
    rows.append({"row": "total", **figures(matrix.month_totals, matrix.total)})
    write_csv(rows, columns, sys.stdout)
    sys.stdout.flush()


def _matrix_lines(
    matrix: MatrixReport,
) -> tuple[list[dict[str, Any]], dict[str, Any], list[Column]]:
    """The table's rows, footer and columns: each amount followed by `!` or a space when
    any is marked, so the amounts stay aligned."""
    everything = [*matrix.month_totals, matrix.total]
    for row in matrix.rows:
        everything += [*row.cells, row.total]
    marked = any(figures.flagged for figures in everything)

    def text(figures: Figures) -> str:
        amount = format_amount(figures.spent)
        if not marked:
            return amount
        return amount + (OVER_MARKER if figures.flagged else " ")

    def line(name: str, cells: tuple[MatrixCell, ...], total: Figures) -> dict[str, Any]:
        out = {"category": name, "total": text(total)}
        out.update({_month_label(cell.month): text(cell) for cell in cells})
        return out

    room = " " if marked else ""
    columns = [
        Column("category", "Category"),
        *(Column(_month_label(month), _month_label(month) + room, ">") for month in matrix.months),
        Column("total", "Total" + room, ">"),
    ]
    rows = [line(row.category, row.cells, row.total) for row in matrix.rows]
    return rows, line("Total", matrix.month_totals, matrix.total), columns


def _months_that_fit(widths: list[int], limit: int) -> int:
    """How many of the last months fit in `limit` columns beside the Category and Total
    columns (whose widths for the whole period are an upper bound for fewer months)."""
    used, count = widths[0] + 2 + widths[-1], 0
    for width in reversed(widths[1:-1]):
        used += width + 2
        if used > limit:
            break
        count += 1
    return count


def _print_matrix(matrix: MatrixReport, fmt: str) -> None:
    if fmt == "json":
        click.echo(dump_json(_matrix_json(matrix)))
        return
    if fmt == "csv":
        _matrix_csv(matrix)
        return
    if not matrix.rows:
        click.echo(_header(matrix.user, matrix.period))
        click.echo()
        info("no categories yet: add one with `budget category add NAME --budget AMOUNT`")
        return
    rows, footer, columns = _matrix_lines(matrix)
    widths = column_widths(rows, columns, footer=footer)
    limit, width = terminal_width(), sum(widths) + 2 * (len(widths) - 1)
    if limit is not None and width > limit:
        fitting = _months_that_fit(widths, limit)
        if fitting:
            first = _month_label(matrix.months[-fitting])
            how = (
                f"the last {fitting} months fit (--from {first})"
                if fitting > 1
                else f"only the last month fits (--from {first})"
            )
        else:
            how = "not even one month fits"
        raise click.ClickException(
            f"the month-by-month table is {width} columns wide and the terminal {limit}: "
            f"{how}, or use --format csv"
        )
    click.echo(_header(matrix.user, matrix.period, matrix.category))
    click.echo()
    click.echo(render_table(rows, columns, footer=footer))
    click.echo(MATRIX_LEGEND)


PERSON_COLUMNS = (
    Column("person", "Entered by"),
    Column("expenses", "Expenses", ">"),
    Column("spent", "Spent", ">"),
    Column("share", "Share", ">"),
)
PERSON_CSV_COLUMNS = (
    Column("row", "row"),
    Column("email", "email"),
    Column("name", "name"),
    Column("expenses", "expenses"),
    Column("spent", "spent"),
)


def _person_label(line: PersonLine) -> str:
    if line.email is None:
        return f"(user {line.user_id})"  # one this connection may not see
    return f"{line.name} <{line.email}>"


def _share(spent: Decimal, total: Decimal) -> str:
    if not total:
        return "-"
    return f"{(spent * 100 / total).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def _print_people(people: PersonReport, fmt: str) -> None:
    def person_json(line: PersonLine) -> dict[str, Any]:
        return {
            "id": line.user_id,
            "email": line.email,
            "name": line.name,
            "expenses": line.expenses,
            "spent": line.spent,
        }

    if fmt == "json":
        data = {
            "user": user_json(people.user),
            "period": _period_json(people.period),
            "category": people.category,
            "people": [person_json(line) for line in people.lines],
            "totals": {"expenses": people.expenses, "spent": people.spent},
        }
        click.echo(dump_json(data))
        return
    if fmt == "csv":
        rows = [{"row": "person", **person_json(line)} for line in people.lines]
        rows.append({"row": "total", "expenses": people.expenses, "spent": people.spent})
        write_csv(rows, PERSON_CSV_COLUMNS, sys.stdout)
        sys.stdout.flush()
        return
    click.echo(_header(people.user, people.period, people.category))
    click.echo()
    if not people.lines:
        info("no expenses in this period")
        return
    rows = [
        {
            "person": _person_label(line),
            "expenses": line.expenses,
            "spent": line.spent,
            "share": _share(line.spent, people.spent),
        }
        for line in people.lines
    ]
    footer = {
        "person": "Total",
        "expenses": people.expenses,
        "spent": people.spent,
        "share": _share(people.spent, people.spent),
    }
    click.echo(render_table(rows, PERSON_COLUMNS, footer=footer))


MISMATCH_COLUMNS = (
    Column("category", "Category"),
    Column("measure", "Measure"),
    Column("sql", "SQL", ">"),
    Column("independent", "Independent", ">"),
    Column("difference", "Difference", ">"),
)


def _print_verification(result: Verification) -> None:
    report = result.report
    where = f"{report.user.email}, {report.period.label}"
    if result.verified:
        totals = report.totals
        click.echo(
            f"verified: {where}: {_plural(len(report.lines), 'category', 'categories')}, "
            f"budget {'none' if totals.budget is None else totals.budget}, spent {totals.spent} "
            f"({_plural(result.expenses, 'expense')} from {result.source})"
        )
        return
    click.echo(f"MISMATCH: {where}: the report and the raw rows ({result.source}) disagree")
    columns: tuple[Column, ...] = MISMATCH_COLUMNS
    if any(item.month is not None for item in result.mismatches):
        # Over a range, months are checked one by one too: say which month differs.
        columns = (columns[0], Column("month", "Month"), *columns[1:])
    click.echo(
        render_table(
            [
                {
                    "category": item.category,
                    "month": "period" if item.month is None else _month_label(item.month),
                    "measure": item.measure,
                    "sql": item.sql,
                    "independent": item.independent,
                    "difference": item.difference,
                }
                for item in result.mismatches
            ],
            columns,
        )
    )
