"""Reports: budget against spending per category or per month, aggregated in SQL.

The figures (budget, spent, available, "no budget") are defined in `services.budgets`;
over a range of months the budgets are summed.
A category that rolls over also shows what was carried into the period's first month
(`categories.carried_in`, read from the per-month spending the database keeps, so a
carry across ten years reads at most 120 small rows per category, never ten years of
expenses). Each report is one grouped statement whatever the number of categories (plus one for
`top` expenses when asked), so it costs the same few round trips on Neon for a user with
three categories or three hundred, and a month of a ten-year history reads only that month
through the `(user_id, spent_on, ...)` index.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Table,
    and_,
    column,
    func,
    null,
    select,
    true,
    type_coerce,
    values,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session

from budget_tracker.errors import NotFound
from budget_tracker.models import (
    Base,
    BudgetTransfer,
    Category,
    Expense,
    Income,
    Money,
    User,
    entered_by_person,
    name_key,
)
from budget_tracker.money import CENT
from budget_tracker.services.budgets import (
    ZERO,
    Figures,
    Period,
    add_months,
    budget_or_none,
    percent,
)
from budget_tracker.services.categories import (
    budget_in,
    carried_in,
    find_category,
    rolls_over_between,
)
from budget_tracker.services.income import income_in
from budget_tracker.services.users import (
    FirstRun,
    FoundUser,
    check_person,
    entered_by_condition,
    find_acting_user_and_default,
    with_entered_by,
)

TREND_DEFAULT_MONTHS = 12
"""The trend's default range, in months, ending with `--to`."""

_SPENDING_INDEX = next(
    index.name
    for index in Base.metadata.tables["expenses"].indexes
    if [column.name for column in index.columns] == ["user_id", "spent_on", "category_id", "amount"]
)
"""The covering index a period's spending per category is read from."""
_ON_SPENDING_INDEX = f"INDEXED BY {_SPENDING_INDEX}"
"""Named on SQLite: with planner statistics (`ANALYZE`, `PRAGMA optimize`) its planner
otherwise skip-scans `(category_id, spent_on)` across every user and reads each table
row, twenty times slower on a long history."""


@compiles(Table, "sqlite")
def _table_with_sqlite_hint(element: Table, compiler: Any, **kw: Any) -> str:
    """Render `with_hint(table, "INDEXED BY …", "sqlite")` after the table name, where
    SQLite reads it (SQLAlchemy's SQLite compiler takes no table hints of its own)."""
    rendered = str(compiler.visit_table(element, **kw))
    hints = kw.get("fromhints")
    if hints and element in hints:
        rendered += f" {hints[element]}"
    return rendered


@dataclass(frozen=True)
class CategoryLine(Figures):
    category: str
    base_budget: Decimal
    transfers_in: Decimal
    transfers_out: Decimal
    rolls_over: bool = False
    """Rollover is on in some month of the period."""


@dataclass(frozen=True)
class TopExpense:
    id: int
    spent_on: dt.date
    category: str
    amount: Decimal
    description: str
    entered_by_id: int
    """The user who entered it (see `Expense.entered_by`)."""
    entered_by: str | None
    """Their e-mail; None for a user this connection may not see (a former member)."""

    @property
    def date(self) -> dt.date:
        return self.spent_on


@dataclass(frozen=True)
class ReportUser:
    id: int
    email: str
    name: str
    default: bool = False


@dataclass(frozen=True)
class Summary:
    """Income beside budgets and spending (budgets need not be funded by income)."""

    income: Decimal
    budgeted: Decimal
    spent: Decimal

    @property
    def saved(self) -> Decimal:
        """Income minus spent (negative when spending exceeded income)."""
        return self.income - self.spent

    @property
    def unbudgeted(self) -> Decimal:
        """Income minus what was budgeted: income no budget claims."""
        return self.income - self.budgeted

    @property
    def savings_rate(self) -> Decimal | None:
        """Saved as a percentage of income; None without income."""
        return percent(self.saved, self.income)


@dataclass(frozen=True)
class CategoryReport:
    user: ReportUser
    period: Period
    lines: tuple[CategoryLine, ...]
    top: tuple[TopExpense, ...]
    first_run: FirstRun | None
    income: Decimal = ZERO

    @property
    def totals(self) -> Figures:
        return Figures.total(self.lines)

    @property
    def rollover_in_view(self) -> bool:
        """A category in view rolls over (or carries something): show what was carried."""
        return any(line.rolls_over or line.carried for line in self.lines)

    @property
    def summary(self) -> Summary:
        totals = self.totals
        return Summary(income=self.income, budgeted=totals.budget or ZERO, spent=totals.spent)


@dataclass(frozen=True)
class MonthLine(Figures):
    month: dt.date
    income: Decimal = ZERO

    @property
    def savings_rate(self) -> Decimal | None:
        """(income - spent) as a percentage of income; None without income."""
        return percent(self.income - self.spent, self.income)


@dataclass(frozen=True)
class TrendReport:
    user: ReportUser
    period: Period
    category: str | None
    lines: tuple[MonthLine, ...]
    first_run: FirstRun | None

    @property
    def totals(self) -> Figures:
        """The whole period: what was carried into its first month, not every month's
        carried added up."""
        carried = self.lines[0].carried if self.lines else ZERO
        return replace(Figures.total(self.lines), carried=carried)

    @property
    def carries(self) -> bool:
        """A month of the trend has something carried into it (show a Carried column)."""
        return any(line.carried for line in self.lines)

    @property
    def income(self) -> Decimal:
        return sum((line.income for line in self.lines), ZERO)

    @property
    def average_income(self) -> Decimal:
        count = Decimal(len(self.lines) or 1)
        return (self.income / count).quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def average(self) -> Figures:
        """Per-month average over every month of the period (empty months count), to the
        cent; months without a budget count as zero budget when any month has one."""
        totals, count = self.totals, Decimal(len(self.lines) or 1)

        def mean(amount: Decimal) -> Decimal:
            return (amount / count).quantize(CENT, rounding=ROUND_HALF_UP)

        return Figures(
            budget=None if totals.budget is None else mean(totals.budget),
            spent=mean(totals.spent),
        )


def _money(expression: Any) -> ColumnElement[Decimal]:
    """An expression over cents read back as a Decimal amount (through the Money type)."""
    return type_coerce(expression, Money())


def _cents(expression: Any) -> ColumnElement[int]:
    """A Money column as plain integer cents, for arithmetic with plain integers."""
    return type_coerce(expression, BigInteger())


def _report_user(found: FoundUser) -> ReportUser:
    """The report's user; `default`: whether this connection's commands act for it when
    none is named (see `FoundUser`)."""
    user = found.user
    return ReportUser(id=user.id, email=user.email, name=user.name, default=found.default)


def category_report(
    session: Session,
    *,
    user_email: str | None,
    period: Period,
    category: str | None = None,
    top: int = 0,
    entered_by: str | None = None,
) -> CategoryReport:
    """Budget, transfers and spending per category for `period`, in one grouped statement.

    With `entered_by` (an e-mail), spending, income and the top expenses count only the
    rows that user entered; budgets and transfers stay the budget's.
    """
    found, first_run = find_acting_user_and_default(session, user_email=user_email), None
    user = found.user
    lines, income = _lines_and_income(
        session, user_id=user.id, period=period, category=category, entered_by=entered_by
    )
    if category is not None and not lines:
        raise NotFound(f"no category {category!r} for {user.email}")
    if entered_by is not None and not income and not any(line.spent for line in lines):
        check_person(session, email=entered_by)
    expenses = (
        top_expenses(
            session,
            user_id=user.id,
            period=period,
            category=category,
            limit=top,
            entered_by=entered_by,
        )
        if top
        else ()
    )
    return CategoryReport(
        user=_report_user(found),
        period=period,
        lines=lines,
        top=expenses,
        first_run=first_run,
        income=income,
    )


def _months(period: Period) -> Any:
    """The period's months as a VALUES list (the same SQL on SQLite and PostgreSQL)."""
    return (
        values(
            column("month", Date),
            column("next_month", Date),
            column("last_month", Date),
            name="months",
        )
        .data(
            [
                (month, add_months(month, 1), add_months(month, -1))
                for month in period.month_starts()
            ]
        )
        .cte("months")
    )


def _budget_cents(period: Period, category: Any = Category) -> ColumnElement[int]:
    """A category's monthly budgets summed over `period`, in cents, correlated to the
    `categories` row (or alias) `category`: one index probe per month (budget history)."""
    if period.months == 1:
        return _cents(budget_in(category.id, category.monthly_budget, period.first))
    months = _months(period)
    return (
        select(func.sum(_cents(budget_in(category.id, category.monthly_budget, months.c.month))))
        .select_from(months)
        .scalar_subquery()
    )


def category_lines(
    session: Session, *, user_id: int, period: Period, category: str | None = None
) -> tuple[CategoryLine, ...]:
    """One row per category (narrowed to `category` when given), ordered by name."""
    return _lines_and_income(
        session, user_id=user_id, period=period, category=category, entered_by=None
    )[0]


def _lines_and_income(
    session: Session,
    *,
    user_id: int,
    period: Period,
    category: str | None,
    entered_by: str | None,
) -> tuple[tuple[CategoryLine, ...], Decimal]:
    """The category lines and the period's income, in one statement (the income is an
    uncorrelated subquery: computed once, not once per row)."""
    e, t = Expense, BudgetTransfer
    spending = [e.user_id == user_id, e.spent_on >= period.first, e.spent_on < period.end]
    if entered_by is not None:
        spending.append(entered_by_condition(e, entered_by))
    spent = (
        select(e.category_id, func.sum(e.amount).label("amount"))
        .where(*spending)
        .group_by(e.category_id)
        .with_hint(e, _ON_SPENDING_INDEX, "sqlite")
        .cte("spent")
    )
    transfers_in = (
        select(t.to_category_id.label("category_id"), func.sum(t.amount).label("amount"))
        .where(t.user_id == user_id, t.month >= period.first, t.month < period.end)
        .group_by(t.to_category_id)
        .cte("transfers_in")
    )
    transfers_out = (
        select(t.from_category_id.label("category_id"), func.sum(t.amount).label("amount"))
        .where(t.user_id == user_id, t.month >= period.first, t.month < period.end)
        .group_by(t.from_category_id)
        .cte("transfers_out")
    )
    base = _budget_cents(period)
    moved_in = func.coalesce(_cents(transfers_in.c.amount), 0)
    moved_out = func.coalesce(_cents(transfers_out.c.amount), 0)
    statement = (
        select(
            Category.name,
            _money(base).label("base_budget"),
            _money(moved_in).label("transfers_in"),
            _money(moved_out).label("transfers_out"),
            _money(func.coalesce(_cents(spent.c.amount), 0)).label("spent"),
            carried_in(Category.id, Category.monthly_budget, add_months(period.first, -1)).label(
                "carried"
            ),
            rolls_over_between(Category.id, period.first, period.last).label("rolls_over"),
            income_in(user_id, period.first, period.end, entered_by=entered_by).label("income"),
        )
        .outerjoin(spent, spent.c.category_id == Category.id)
        .outerjoin(transfers_in, transfers_in.c.category_id == Category.id)
        .outerjoin(transfers_out, transfers_out.c.category_id == Category.id)
        .where(Category.user_id == user_id)
        .order_by(Category.name_key)
    )
    if category is not None:
        statement = statement.where(Category.name_key == name_key(category))
    rows = session.execute(statement).all()
    if rows:
        income = rows[0].income
    else:  # no category: ask for the income alone
        income = (
            session.scalar(
                select(income_in(user_id, period.first, period.end, entered_by=entered_by))
            )
            or ZERO
        )
    lines = tuple(
        CategoryLine(
            category=row.name,
            base_budget=row.base_budget,
            transfers_in=row.transfers_in,
            transfers_out=row.transfers_out,
            budget=budget_or_none(
                row.base_budget,
                row.transfers_in - row.transfers_out,
                transferred=bool(row.transfers_in or row.transfers_out),
            ),
            spent=row.spent,
            carried=row.carried,
            rolls_over=bool(row.rolls_over),
        )
        for row in rows
    )
    return lines, income


def top_expenses(
    session: Session,
    *,
    user_id: int,
    period: Period,
    category: str | None,
    limit: int,
    entered_by: str | None = None,
) -> tuple[TopExpense, ...]:
    """The `limit` largest expenses of the period (ties: earliest first)."""
    statement = (
        with_entered_by(
            select(
                Expense.id, Expense.spent_on, Category.name, Expense.amount, Expense.description
            ).join(Category, Category.id == Expense.category_id),
            Expense,
        )
        .where(
            Expense.user_id == user_id,
            Expense.spent_on >= period.first,
            Expense.spent_on < period.end,
        )
        .order_by(Expense.amount.desc(), Expense.spent_on, Expense.id)
        .limit(limit)
    )
    if category is not None:
        statement = statement.where(Category.name_key == name_key(category))
    if entered_by is not None:
        statement = statement.where(entered_by_condition(Expense, entered_by))
    return tuple(TopExpense(*row) for row in session.execute(statement))


def monthly_trend(
    session: Session,
    *,
    user_email: str | None,
    period: Period,
    category: str | None = None,
    entered_by: str | None = None,
) -> TrendReport:
    """Budget and spending per month of `period` (all categories, or one), one statement.

    The months come from a VALUES list, so each month is an index range scan on
    `(user_id, spent_on, ...)` and the SQL is the same on SQLite and PostgreSQL (no backend
    date functions).
    """
    found, first_run = find_acting_user_and_default(session, user_email=user_email), None
    user = found.user
    e, t = Expense, BudgetTransfer
    months = _months(period)
    chosen = select(Category.id, Category.name, Category.monthly_budget).where(
        Category.user_id == user.id
    )
    if category is not None:
        chosen = chosen.where(Category.name_key == name_key(category))
    chosen_cte = chosen.cte("chosen")
    chosen_ids = select(chosen_cte.c.id)
    names = select(func.count().label("categories"), func.max(chosen_cte.c.name).label("name")).cte(
        "names"
    )
    budgets = (
        select(
            months.c.month,
            func.sum(
                _cents(budget_in(chosen_cte.c.id, chosen_cte.c.monthly_budget, months.c.month))
            ).label("cents"),
            func.sum(
                _cents(
                    carried_in(chosen_cte.c.id, chosen_cte.c.monthly_budget, months.c.last_month)
                )
            ).label("carried"),
        )
        .select_from(months)
        .join(chosen_cte, true())
        .group_by(months.c.month)
        .cte("budgets")
    )
    in_month = and_(
        e.user_id == user.id, e.spent_on >= months.c.month, e.spent_on < months.c.next_month
    )
    if category is not None:
        in_month = and_(in_month, e.category_id.in_(chosen_ids))
    if entered_by is not None:
        in_month = and_(in_month, entered_by_condition(e, entered_by))
    spent = (
        select(months.c.month, func.sum(_cents(e.amount)).label("cents"))
        .join(e, in_month)
        .group_by(months.c.month)
        .cte("spent")
    )

    def moved(side: Any, name: str) -> Any:
        return (
            select(t.month, func.sum(_cents(t.amount)).label("cents"))
            .where(
                t.user_id == user.id,
                t.month >= period.first,
                t.month < period.end,
                side.in_(chosen_ids),
            )
            .group_by(t.month)
            .cte(name)
        )

    moved_in = moved(t.to_category_id, "moved_in")
    moved_out = moved(t.from_category_id, "moved_out")
    received = (
        select(months.c.month, func.sum(_cents(Income.amount)).label("cents"))
        .join(
            Income,
            and_(
                Income.user_id == user.id,
                Income.received_on >= months.c.month,
                Income.received_on < months.c.next_month,
                true() if entered_by is None else entered_by_condition(Income, entered_by),
            ),
        )
        .group_by(months.c.month)
        .cte("received")
    )
    statement = (
        select(
            _money(func.coalesce(received.c.cents, 0)).label("income"),
            months.c.month,
            names.c.categories,
            names.c.name,
            _money(func.coalesce(budgets.c.cents, 0)).label("base"),
            _money(func.coalesce(budgets.c.carried, 0)).label("carried"),
            _money(func.coalesce(moved_in.c.cents, 0)).label("moved_in"),
            _money(func.coalesce(moved_out.c.cents, 0)).label("moved_out"),
            _money(func.coalesce(spent.c.cents, 0)).label("spent"),
        )
        .select_from(months)
        .join(names, true())
        .outerjoin(budgets, budgets.c.month == months.c.month)
        .outerjoin(received, received.c.month == months.c.month)
        .outerjoin(spent, spent.c.month == months.c.month)
        .outerjoin(moved_in, moved_in.c.month == months.c.month)
        .outerjoin(moved_out, moved_out.c.month == months.c.month)
        .order_by(months.c.month)
    )
    rows = session.execute(statement).all()
    if category is not None and rows and rows[0].categories == 0:
        raise NotFound(f"no category {category!r} for {user.email}")
    if entered_by is not None and not any(row.spent or row.income for row in rows):
        check_person(session, email=entered_by)
    lines = tuple(
        MonthLine(
            month=row.month,
            budget=budget_or_none(
                row.base,
                row.moved_in - row.moved_out,
                transferred=bool(row.moved_in or row.moved_out),
            ),
            spent=row.spent,
            carried=row.carried,
            income=row.income,
        )
        for row in rows
    )
    return TrendReport(
        user=_report_user(found),
        period=period,
        category=rows[0].name if category is not None else None,
        lines=lines,
        first_run=first_run,
    )


@dataclass(frozen=True)
class PersonLine:
    """What one person entered into the budget in the period."""

    user_id: int
    email: str | None
    """None: a user this connection may not see (on PostgreSQL, e.g. a member the budget
    is no longer shared with)."""
    name: str | None
    expenses: int
    spent: Decimal


@dataclass(frozen=True)
class PersonReport:
    user: ReportUser
    period: Period
    category: str | None
    lines: tuple[PersonLine, ...]
    first_run: FirstRun | None

    @property
    def expenses(self) -> int:
        return sum(line.expenses for line in self.lines)

    @property
    def spent(self) -> Decimal:
        return sum((line.spent for line in self.lines), ZERO)


def person_report(
    session: Session,
    *,
    user_email: str | None,
    period: Period,
    category: str | None = None,
    entered_by: str | None = None,
) -> PersonReport:
    """Spending in the acting user's budget per person who entered it (most first), one
    grouped statement. A row with no recorded person counts as the budget's own user's."""
    found, first_run = find_acting_user_and_default(session, user_email=user_email), None
    user = found.user
    person = entered_by_person(Expense).label("person")
    conditions = [
        Expense.user_id == user.id,
        Expense.spent_on >= period.first,
        Expense.spent_on < period.end,
    ]
    category_name: Any = null()
    if category is not None:
        chosen = select(Category.id).where(
            Category.user_id == user.id, Category.name_key == name_key(category)
        )
        conditions.append(Expense.category_id.in_(chosen))
        category_name = (
            select(Category.name)
            .where(Category.user_id == user.id, Category.name_key == name_key(category))
            .scalar_subquery()
        )
    if entered_by is not None:
        conditions.append(entered_by_condition(Expense, entered_by))
    spent = (
        select(
            person,
            func.count().label("expenses"),
            func.sum(Expense.amount).label("spent"),
        )
        .where(*conditions)
        .group_by(person)
        .cte("by_person")
    )
    rows = session.execute(
        select(
            spent.c.person,
            User.email,
            User.name,
            spent.c.expenses,
            spent.c.spent,
            category_name.label("category"),
        )
        .outerjoin(User, User.id == spent.c.person)
        .order_by(spent.c.spent.desc(), User.email, spent.c.person)
    ).all()
    if not rows:
        # Nothing spent: an unknown category or person is refused, not shown as nothing.
        if category is not None:
            category = find_category(session, user_id=user.id, name=category).name
        if entered_by is not None:
            check_person(session, email=entered_by)
    else:
        category = rows[0].category
    return PersonReport(
        user=_report_user(found),
        period=period,
        category=category,
        lines=tuple(
            PersonLine(
                user_id=row.person,
                email=row.email,
                name=row.name,
                expenses=row.expenses,
                spent=row.spent,
            )
            for row in rows
        ),
        first_run=first_run,
    )


# --- months side by side ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MatrixCell(Figures):
    """One category's figures for one month of the matrix (keyword-only, so `Figures`
    may gain fields with defaults)."""

    month: dt.date


@dataclass(frozen=True)
class MatrixRow:
    """A category and its figures for every month of the period, in month order."""

    category: str
    cells: tuple[MatrixCell, ...]

    @property
    def total(self) -> Figures:
        """The category over the whole period: what the report for the range shows (what
        was carried into its first month, not every month's carried added up)."""
        carried = self.cells[0].carried if self.cells else ZERO
        return replace(Figures.total(self.cells), carried=carried)


@dataclass(frozen=True)
class MatrixReport:
    """Categories as rows, months as columns, totals both ways (the months' budgets and
    spending side by side, as `hledger balance --budget -M` shows them)."""

    user: ReportUser
    period: Period
    category: str | None
    rows: tuple[MatrixRow, ...]
    first_run: FirstRun | None

    @property
    def months(self) -> list[dt.date]:
        return self.period.month_starts()

    @property
    def month_totals(self) -> tuple[MatrixCell, ...]:
        """Every category added up per month: what that month's report totals."""
        totals = []
        for index, month in enumerate(self.months):
            total = Figures.total(row.cells[index] for row in self.rows)
            totals.append(
                MatrixCell(
                    budget=total.budget, spent=total.spent, carried=total.carried, month=month
                )
            )
        return tuple(totals)

    @property
    def total(self) -> Figures:
        """The whole period, every category."""
        return Figures.total(row.total for row in self.rows)


def month_matrix(
    session: Session, *, user_email: str | None, period: Period, category: str | None = None
) -> MatrixReport:
    """Each category's budget and spending for every month of `period`, in one grouped
    statement: the category × month grid from the months VALUES list, each cell's monthly
    budget from the budget history (`budget_in`, an index probe), and spending and
    transfers grouped by category and month (each month an index range scan)."""
    found, first_run = find_acting_user_and_default(session, user_email=user_email), None
    user = found.user
    e, t = Expense, BudgetTransfer
    months = _months(period)
    chosen = select(Category.id, Category.name, Category.name_key, Category.monthly_budget).where(
        Category.user_id == user.id
    )
    if category is not None:
        chosen = chosen.where(Category.name_key == name_key(category))
    chosen_cte = chosen.cte("chosen")
    in_month = and_(
        e.user_id == user.id, e.spent_on >= months.c.month, e.spent_on < months.c.next_month
    )
    if category is not None:
        in_month = and_(in_month, e.category_id.in_(select(chosen_cte.c.id)))
    spent = (
        select(e.category_id, months.c.month, func.sum(_cents(e.amount)).label("cents"))
        .select_from(months)
        .join(e, in_month)
        .group_by(e.category_id, months.c.month)
        .cte("spent")
    )

    def moved(side: Any, name: str) -> Any:
        return (
            select(side.label("category_id"), t.month, func.sum(_cents(t.amount)).label("cents"))
            .where(t.user_id == user.id, t.month >= period.first, t.month < period.end)
            .group_by(side, t.month)
            .cte(name)
        )

    moved_in = moved(t.to_category_id, "moved_in")
    moved_out = moved(t.from_category_id, "moved_out")

    def same_cell(aggregate: Any) -> ColumnElement[bool]:
        return and_(aggregate.c.category_id == chosen_cte.c.id, aggregate.c.month == months.c.month)

    statement = (
        select(
            chosen_cte.c.name,
            months.c.month,
            budget_in(chosen_cte.c.id, chosen_cte.c.monthly_budget, months.c.month).label("base"),
            _money(func.coalesce(moved_in.c.cents, 0)).label("moved_in"),
            _money(func.coalesce(moved_out.c.cents, 0)).label("moved_out"),
            _money(func.coalesce(spent.c.cents, 0)).label("spent"),
            carried_in(chosen_cte.c.id, chosen_cte.c.monthly_budget, months.c.last_month).label(
                "carried"
            ),
        )
        .select_from(chosen_cte)
        .join(months, true())
        .outerjoin(spent, same_cell(spent))
        .outerjoin(moved_in, same_cell(moved_in))
        .outerjoin(moved_out, same_cell(moved_out))
        .order_by(chosen_cte.c.name_key, chosen_cte.c.id, months.c.month)
    )
    cells: dict[str, list[MatrixCell]] = {}
    for row in session.execute(statement):
        cells.setdefault(row.name, []).append(
            MatrixCell(
                month=row.month,
                budget=budget_or_none(
                    row.base,
                    row.moved_in - row.moved_out,
                    transferred=bool(row.moved_in or row.moved_out),
                ),
                spent=row.spent,
                carried=row.carried,
            )
        )
    if category is not None and not cells:
        raise NotFound(f"no category {category!r} for {user.email}")
    rows = tuple(MatrixRow(category=name, cells=tuple(line)) for name, line in cells.items())
    return MatrixReport(
        user=_report_user(found),
        period=period,
        category=rows[0].category if category is not None else None,
        rows=rows,
        first_run=first_run,
    )
