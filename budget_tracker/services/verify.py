"""Independent verification of a report: the same numbers by a second, simple path.

The report sums in SQL. Verification reads the raw rows instead — streamed from the
database in batches, or read line by line from an export file — and adds them up in
Python with `Decimal`, sharing none of the report's query code. Any difference, however
small, is a mismatch: money is exact, so the tolerance is zero. Memory stays flat because
no more than one batch of rows is held at a time.

Budgets are recomputed month by month from the raw budget-history rows
(`category_budgets`) and each category's opening budget; the period's income from the raw
income rows. Round trips: the budget history, the user's categories and the income are
plain queries (small); the period's transfers and expenses, which can be many, come
through one server-side cursor (`streaming.stream_rows`), so `verify --month` sends the
report's statements plus seven: history, categories, DECLARE, two FETCHes, CLOSE, income.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, literal, null, select, text, type_coerce, union_all
from sqlalchemy.orm import Session

from budget_tracker.errors import InvalidInput
from budget_tracker.models import (
    BudgetTransfer,
    Category,
    CategoryBudget,
    Expense,
    Income,
    name_key,
)
from budget_tracker.money import AmountError, from_cents, parse_amount
from budget_tracker.services.budgets import BudgetChange, Period, budget_in_month
from budget_tracker.services.reports import CategoryReport, category_report
from budget_tracker.services.streaming import stream_rows

EXPENSE_FILE_COLUMNS = ("date", "amount", "category", "description")
"""The expense CSV columns read by `--from-file` (the `budget export` format)."""

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Mismatch:
    category: str
    measure: str
    """`spent`, `budget` or `income`."""
    sql: Decimal | None
    independent: Decimal | None
    """None: no budget."""

    @property
    def difference(self) -> Decimal | None:
        """What the report says minus what the raw rows say (None when either has no budget)."""
        if self.sql is None or self.independent is None:
            return None
        return self.sql - self.independent


@dataclass(frozen=True)
class Verification:
    report: CategoryReport
    source: str
    """Where the independent expense rows came from: `database` or the file's path."""
    expenses: int
    """How many expense rows of the period the independent path added up."""
    budget: Decimal
    spent: Decimal
    mismatches: tuple[Mismatch, ...]

    @property
    def verified(self) -> bool:
        return not self.mismatches


@dataclass
class _Tally:
    name: str
    budget: Decimal = ZERO
    spent: Decimal = ZERO
    has_budget: bool = False
    """A monthly budget, or a transfer touched the category in the period."""

    @property
    def budget_or_none(self) -> Decimal | None:
        return self.budget if self.has_budget else None


def verify_report(
    session: Session,
    *,
    user_email: str | None,
    period: Period,
    from_file: Path | None = None,
) -> Verification:
    """Compare the SQL report for `period` with sums of the raw rows.

    Budgets always come from the database's category and transfer rows; spending comes
    from the database's expense rows or, with `from_file`, from an expense CSV export.
    Both passes read one snapshot (`one_snapshot`): writers committing meanwhile can
    never make them disagree.
    """
    one_snapshot(session, read_only=True)
    report = category_report(session, user_email=user_email, period=period)
    return check_report(session, report, from_file=from_file)


def check_report(
    session: Session, report: CategoryReport, *, from_file: Path | None = None
) -> Verification:
    """Compare a category report already computed with sums of the raw rows read now."""
    period = report.period
    user_id = report.user.id
    tallies: dict[int | str, _Tally] = {}
    by_key: dict[str, int | str] = {}
    changes: dict[int, list[BudgetChange]] = {}
    for category_id, month, cents, one_month in session.execute(
        select(
            CategoryBudget.category_id,
            CategoryBudget.month,
            _raw_cents(CategoryBudget.amount),
            CategoryBudget.one_month,
        ).where(CategoryBudget.user_id == user_id)
    ):
        changes.setdefault(category_id, []).append(
            BudgetChange(month, from_cents(cents), bool(one_month))
        )
    for category_id, name, opening_cents in session.execute(
        select(Category.id, Category.name, _raw_cents(Category.monthly_budget)).where(
            Category.user_id == user_id
        )
    ):
        # Month by month from the raw history rows, as the budget is defined.
        monthly = [
            budget_in_month(from_cents(opening_cents), changes.get(category_id, []), month)
            for month in period.month_starts()
        ]
        tallies[category_id] = _Tally(name=name, budget=sum(monthly, ZERO), has_budget=any(monthly))
        by_key[name_key(name)] = category_id
    # One streamed pass over the period's raw money rows: each transfer moves budget from
    # one category to another; each expense (unless they come from the file) is spending.
    transfers = select(
        literal("transfer"),
        BudgetTransfer.from_category_id,
        BudgetTransfer.to_category_id,
        _raw_cents(BudgetTransfer.amount),
    ).where(
        BudgetTransfer.user_id == user_id,
        BudgetTransfer.month >= period.first,
        BudgetTransfer.month < period.end,
    )
    expenses = select(
        literal("expense"), Expense.category_id, null(), _raw_cents(Expense.amount)
    ).where(
        Expense.user_id == user_id,
        Expense.spent_on >= period.first,
        Expense.spent_on < period.end,
    )
    count = 0
    raw = transfers if from_file is not None else union_all(transfers, expenses)
    for kind, category_id, to_id, cents in stream_rows(session, raw):
        amount = from_cents(cents)
        if kind == "expense":
            tallies[category_id].spent += amount
            count += 1
        else:
            tallies[category_id].budget -= amount
            tallies[to_id].budget += amount
            tallies[category_id].has_budget = tallies[to_id].has_budget = True
    if from_file is None:
        source = "database"
    else:
        source = str(from_file)
        for category, amount in _file_expenses(from_file, period):
            key = name_key(category)
            if key not in by_key:
                by_key[key] = key
                tallies[key] = _Tally(name=f"{category} (not in database)")
            tallies[by_key[key]].spent += amount
            count += 1
    return Verification(
        report=report,
        source=source,
        expenses=count,
        budget=sum((tally.budget for tally in tallies.values()), ZERO),
        spent=sum((tally.spent for tally in tallies.values()), ZERO),
        mismatches=_compare(report, tallies, by_key) + _compare_income(session, report),
    )


def _compare_income(session: Session, report: CategoryReport) -> tuple[Mismatch, ...]:
    """The report's income against the raw income rows of the period, summed in Python."""
    independent = sum(
        (
            from_cents(cents)
            for (cents,) in session.execute(
                select(_raw_cents(Income.amount)).where(
                    Income.user_id == report.user.id,
                    Income.received_on >= report.period.first,
                    Income.received_on < report.period.end,
                )
            )
        ),
        ZERO,
    )
    if independent == report.income:
        return ()
    return (Mismatch("(income)", "income", report.income, independent),)


def one_snapshot(session: Session, *, read_only: bool) -> None:
    """Make every statement of this transaction read the same snapshot.

    PostgreSQL's default READ COMMITTED takes a new snapshot per statement, so an expense
    committed between the report and the raw pass would show as a mismatch. REPEATABLE
    READ (READ ONLY: verification writes nothing) fixes one snapshot at the first query;
    `SET TRANSACTION` lasts for this transaction only, so it is safe through PgBouncer in
    transaction mode. It must come first, before any other statement of the transaction.
    A SQLite read transaction already reads one snapshot (WAL) from its first read.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    mode = ", READ ONLY" if read_only else ""
    session.execute(text(f"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ{mode}"))


def _compare(
    report: CategoryReport, tallies: dict[int | str, _Tally], by_key: dict[str, int | str]
) -> tuple[Mismatch, ...]:
    reported = {name_key(line.category): line for line in report.lines}
    mismatches: list[Mismatch] = []
    for key in sorted(set(reported) | set(by_key)):
        line = reported.get(key)
        tally = tallies[by_key[key]] if key in by_key else None
        name = line.category if line is not None else tally.name if tally is not None else key
        sql_budget = line.budget if line is not None else None
        independent_budget = tally.budget_or_none if tally is not None else None
        if sql_budget != independent_budget:
            mismatches.append(Mismatch(name, "budget", sql_budget, independent_budget))
        sql_spent = line.spent if line is not None else ZERO
        independent_spent = tally.spent if tally is not None else ZERO
        if sql_spent != independent_spent:
            mismatches.append(Mismatch(name, "spent", sql_spent, independent_spent))
    return tuple(mismatches)


def _raw_cents(column: Any) -> Any:
    # Read the stored integer cents, not the Money type's conversion: this path shares as
    # little as possible with the report.
    return type_coerce(column, BigInteger())


def _file_expenses(path: Path, period: Period) -> Iterator[tuple[str, Decimal]]:
    """(category, amount) of each expense in the file dated within `period`, streamed."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = [
            name for name in EXPENSE_FILE_COLUMNS[:3] if name not in (reader.fieldnames or [])
        ]
        if missing:
            raise InvalidInput(
                f"{path} has no {', '.join(missing)} column: expected the expense export "
                f"columns {','.join(EXPENSE_FILE_COLUMNS)}"
            )
        for row in reader:
            line = reader.line_num
            try:
                day = dt.date.fromisoformat((row["date"] or "").strip())
            except ValueError:
                raise InvalidInput(
                    f"{path}:{line}: {row['date']!r} is not a date (YYYY-MM-DD)"
                ) from None
            if not period.contains(day):
                continue
            try:
                amount = parse_amount(row["amount"] or "")
            except AmountError as exc:
                raise InvalidInput(f"{path}:{line}: {exc}") from None
            yield (row["category"] or "").strip(), amount
