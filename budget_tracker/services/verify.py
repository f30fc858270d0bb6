"""Independent verification of a report: the same numbers by a second, simple path.

The report sums in SQL. Verification reads the raw rows instead — streamed from the
database in batches, or read line by line from an export file — and adds them up in
Python with `Decimal`, sharing none of the report's query code. Any difference, however
small, is a mismatch: money is exact, so the tolerance is zero. Memory stays flat because
no more than one batch of rows is held at a time.

Budgets are recomputed month by month from the raw budget-history rows
(`category_budgets`) and each category's opening budget; the period's income from the raw
income rows. What a category that rolls over carries into the period is recomputed from
the raw rollover settings, budgets, transfers and expenses of its run of months (never
from the per-month sums the database keeps), and those kept sums are compared with the
expense rows of every month read. Round trips: the budget history, the rollover
settings, the kept sums, the user's categories and the income are plain queries (small);
the transfers and expenses, which can be many, come through one server-side cursor
(`streaming.stream_rows`), so `verify --month` sends the report's statements plus nine:
history, rollover, kept sums, categories, DECLARE, two FETCHes, CLOSE, income.
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
    CategoryMonthSpent,
    CategoryRollover,
    Expense,
    Income,
    name_key,
)
from budget_tracker.money import AmountError, from_cents, parse_amount
from budget_tracker.services.budgets import (
    BudgetChange,
    Period,
    RolloverChange,
    add_months,
    budget_in_month,
    month_start,
    rollover_run,
)
from budget_tracker.services.reports import CategoryReport, category_report
from budget_tracker.services.streaming import stream_rows

EXPENSE_FILE_COLUMNS = ("date", "amount", "category", "description")
"""The expense CSV columns read by `--from-file` (the `budget export` format)."""

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Mismatch:
    category: str
    measure: str
    """`spent`, `budget`, `carried`, `income`, or `spent in YYYY-MM (kept)` (the per-month
    sum the database keeps, against that month's expenses)."""
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
    carried: Decimal = ZERO
    """Carried into the period: budget + in - out - spent over its run of months."""
    run: dt.date | None = None
    """First month of the run of months rolling over that ends before the period."""

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
    switches: dict[int, list[RolloverChange]] = {}
    for category_id, month, enabled in session.execute(
        select(
            CategoryRollover.category_id, CategoryRollover.month, CategoryRollover.enabled
        ).where(CategoryRollover.user_id == user_id)
    ):
        switches.setdefault(category_id, []).append(RolloverChange(month, bool(enabled)))
    before = add_months(period.first, -1)
    runs = {
        category_id: start
        for category_id, changed in switches.items()
        if (start := rollover_run(changed, before)) is not None
    }
    # Expenses are read from `earliest` on: the runs carried into the period need theirs.
    earliest = min([period.first, *runs.values()])
    checked_end = period.end if from_file is None else period.first
    kept: dict[tuple[int, dt.date], Decimal] = {
        (category_id, month): from_cents(cents)
        for category_id, month, cents in session.execute(
            select(
                CategoryMonthSpent.category_id,
                CategoryMonthSpent.month,
                _raw_cents(CategoryMonthSpent.spent),
            ).where(
                CategoryMonthSpent.user_id == user_id,
                CategoryMonthSpent.month >= earliest,
                CategoryMonthSpent.month < checked_end,
            )
        )
    }
    for category_id, name, opening_cents in session.execute(
        select(Category.id, Category.name, _raw_cents(Category.monthly_budget)).where(
            Category.user_id == user_id
        )
    ):
        opening, history = from_cents(opening_cents), changes.get(category_id, [])
        # Month by month from the raw history rows, as the budget is defined.
        monthly = [budget_in_month(opening, history, month) for month in period.month_starts()]
        tally = _Tally(name=name, budget=sum(monthly, ZERO), has_budget=any(monthly))
        tally.run = runs.get(category_id)
        if tally.run is not None:
            months = Period(tally.run, before).month_starts()
            tally.carried = sum((budget_in_month(opening, history, m) for m in months), ZERO)
        tallies[category_id] = tally
        by_key[name_key(name)] = category_id
    # One streamed pass over the raw money rows: each transfer moves budget from one
    # category to another; each expense (unless the period's come from the file) is
    # spending. Rows before the period count only in a run carried into it.
    transfers = select(
        literal("transfer"),
        BudgetTransfer.from_category_id,
        BudgetTransfer.to_category_id,
        _raw_cents(BudgetTransfer.amount),
        BudgetTransfer.month,
    ).where(
        BudgetTransfer.user_id == user_id,
        BudgetTransfer.month >= earliest,
        BudgetTransfer.month < period.end,
    )
    expenses = select(
        literal("expense"),
        Expense.category_id,
        null(),
        _raw_cents(Expense.amount),
        Expense.spent_on,
    ).where(
        Expense.user_id == user_id,
        Expense.spent_on >= earliest,
        Expense.spent_on < checked_end,
    )
    count = 0
    raw_months: dict[tuple[int, dt.date], Decimal] = {}

    def in_run(category_id: int, month: dt.date) -> _Tally | None:
        tally = tallies[category_id]
        return tally if tally.run is not None and tally.run <= month < period.first else None

    for kind, category_id, to_id, cents, day in stream_rows(
        session, union_all(transfers, expenses)
    ):
        amount = from_cents(cents)
        month = month_start(day)
        if kind == "expense":
            raw_months[category_id, month] = raw_months.get((category_id, month), ZERO) + amount
            if month >= period.first:
                tallies[category_id].spent += amount
                count += 1
            elif (carrying := in_run(category_id, month)) is not None:
                carrying.carried -= amount
        elif month >= period.first:
            tallies[category_id].budget -= amount
            tallies[to_id].budget += amount
            tallies[category_id].has_budget = tallies[to_id].has_budget = True
        else:
            if (carrying := in_run(category_id, month)) is not None:
                carrying.carried -= amount
            if (carrying := in_run(to_id, month)) is not None:
                carrying.carried += amount
    mismatches = _compare_kept(tallies, kept, raw_months)
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
        mismatches=_compare(report, tallies, by_key)
        + mismatches
        + _compare_income(session, report),
    )


def _compare_kept(
    tallies: dict[int | str, _Tally],
    kept: dict[tuple[int, dt.date], Decimal],
    raw: dict[tuple[int, dt.date], Decimal],
) -> tuple[Mismatch, ...]:
    """The per-month sums the database keeps against the expense rows of those months."""
    mismatches = []
    for category_id, month in sorted(set(kept) | set(raw)):
        sql, independent = kept.get((category_id, month), ZERO), raw.get((category_id, month), ZERO)
        if sql != independent:
            name = tallies[category_id].name
            mismatches.append(Mismatch(name, f"spent in {month:%Y-%m} (kept)", sql, independent))
    return tuple(mismatches)


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
        sql_carried = line.carried if line is not None else ZERO
        independent_carried = tally.carried if tally is not None else ZERO
        if sql_carried != independent_carried:
            mismatches.append(Mismatch(name, "carried", sql_carried, independent_carried))
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
