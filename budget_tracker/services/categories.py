"""Categories: lookup by name (case-insensitive), budgets per month, and their CRUD rules.

What a budget, spent and available mean is defined in `services.budgets`; the SQL pieces
that compute a category's month figures (`spent_in`, `transfers_net`) live here so every
command (add-expense's warning, `category list`, transfers) computes them the same way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CursorResult,
    Integer,
    ScalarSelect,
    SQLColumnExpression,
    case,
    delete,
    exists,
    false,
    func,
    or_,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from budget_tracker import rules
from budget_tracker.errors import BudgetBelowZero, CategoryInUse, Conflict, NoCategories, NotFound
from budget_tracker.models import (
    BudgetTransfer,
    Category,
    CategoryBudget,
    CategoryMonthSpent,
    CategoryRollover,
    Expense,
    Money,
    name_key,
)
from budget_tracker.money import from_cents
from budget_tracker.services.budgets import (
    ZERO,
    BudgetChange,
    Figures,
    RolloverChange,
    add_months,
    budget_in_month,
    budget_or_none,
    combined_history,
    month_span,
    month_start,
    rollover_on,
)
from budget_tracker.services.users import FirstRun, acting_user, find_acting_user


def _cents(column: SQLColumnExpression[Decimal]) -> ColumnElement[int]:
    """A Money column as its stored integer cents, for arithmetic with plain integers."""
    return type_coerce(column, BigInteger())


def _money(expression: ColumnElement[Any]) -> ColumnElement[Decimal]:
    """`coalesce(expression, 0)` read back as money (integer cents -> Decimal)."""
    return func.coalesce(expression, 0, type_=Money)


# A date given as a value, or as a bound parameter of a statement built once and reused.
DateArgument = dt.date | ColumnElement[dt.date]


def spent_in(
    category_id: SQLColumnExpression[int], start: DateArgument, end: DateArgument
) -> ScalarSelect[Decimal]:
    """Correlated subquery: what was spent in the category on days start <= d < end."""
    return (
        select(_money(func.sum(Expense.amount)))
        .where(
            Expense.category_id == category_id,
            Expense.spent_on >= start,
            Expense.spent_on < end,
        )
        .scalar_subquery()
    )


def budget_in(
    category_id: SQLColumnExpression[int],
    opening: SQLColumnExpression[Decimal],
    month: DateArgument,
) -> ColumnElement[Decimal]:
    """The category's monthly budget for `month` (zero: none), as a SQL expression: its
    one-month override, else the standing change in force (latest `month` <= the month,
    one index probe of `(category_id, one_month, month)` however long the history), else
    its opening budget `opening` (`categories.monthly_budget`)."""
    override = (
        select(CategoryBudget.amount)
        .where(
            CategoryBudget.category_id == category_id,
            CategoryBudget.one_month == true(),
            CategoryBudget.month == month,
        )
        .correlate_except(CategoryBudget)  # the category may be two levels out
        .scalar_subquery()
    )
    standing = (
        select(CategoryBudget.amount)
        .where(
            CategoryBudget.category_id == category_id,
            CategoryBudget.one_month == false(),
            CategoryBudget.month <= month,
        )
        .order_by(CategoryBudget.month.desc())
        .limit(1)
        .correlate_except(CategoryBudget)
        .scalar_subquery()
    )
    return func.coalesce(override, standing, opening, type_=Money)


def transfers_net(
    category_id: SQLColumnExpression[int],
    month: DateArgument,
    *,
    except_key: ColumnElement[str] | None = None,
) -> ScalarSelect[Decimal]:
    """Correlated subquery: budget transferred into the category minus out of it, that month.

    `except_key` leaves out the ledger row with that idempotency key. In the RETURNING
    clause of the INSERT that writes that row, this is the net before the new row on every
    backend (PostgreSQL's subquery would not see the new row, SQLite's would).
    """
    signed = case(
        (BudgetTransfer.to_category_id == category_id, BudgetTransfer.amount),
        else_=-BudgetTransfer.amount,
    )
    statement = select(_money(func.sum(signed))).where(
        or_(
            BudgetTransfer.to_category_id == category_id,
            BudgetTransfer.from_category_id == category_id,
        ),
        BudgetTransfer.month == month,
    )
    if except_key is not None:
        statement = statement.where(func.coalesce(BudgetTransfer.idempotency_key, "") != except_key)
    return statement.scalar_subquery()


def transferred_in(
    category_id: SQLColumnExpression[int], month: DateArgument
) -> ColumnElement[bool]:
    """Correlated EXISTS: a transfer moved budget into or out of the category that month.

    Such a category has a budget that month even when its transfers net to zero (the
    transfers, not their sum, decide "no budget": see `budget_or_none`).
    """
    return (
        exists()
        .where(
            or_(
                BudgetTransfer.to_category_id == category_id,
                BudgetTransfer.from_category_id == category_id,
            ),
            BudgetTransfer.month == month,
        )
        .correlate_except(BudgetTransfer)
    )


class month_number(FunctionElement[int]):
    """SQL: a date's month as a count of months (year * 12 + month), so the number of
    months between two dates is a subtraction on either backend."""

    type = Integer()
    inherit_cache = True


@compiles(month_number, "postgresql")
def _month_number_postgresql(element: month_number, compiler: SQLCompiler, **kw: Any) -> str:
    day = compiler.process(element.clauses, **kw)
    return (
        f"(CAST(EXTRACT(YEAR FROM {day}) AS INTEGER) * 12 "
        f"+ CAST(EXTRACT(MONTH FROM {day}) AS INTEGER))"
    )


@compiles(month_number)
def _month_number_sqlite(element: month_number, compiler: SQLCompiler, **kw: Any) -> str:
    day = compiler.process(element.clauses, **kw)
    return f"(CAST(strftime('%Y', {day}) AS INTEGER) * 12 + CAST(strftime('%m', {day}) AS INTEGER))"


def _greater(a: ColumnElement[int], b: ColumnElement[int] | int) -> ColumnElement[int]:
    return case((a > b, a), else_=b)


def _lesser(a: ColumnElement[int], b: ColumnElement[int] | int) -> ColumnElement[int]:
    return case((a < b, a), else_=b)


def budget_total(
    category_id: SQLColumnExpression[int],
    opening: SQLColumnExpression[Decimal],
    first: DateArgument,
    last: DateArgument,
) -> ColumnElement[int]:
    """The category's monthly budgets summed over the months `first` to `last` (inclusive),
    in cents: `budget_in` of each month added up, computed from the history rows rather
    than month by month — each standing budget times the months it is in force within the
    range, plus each one-month override's difference from the standing budget it
    replaces. Its cost follows the number of budget changes, not of months."""
    low, high = month_number(first), month_number(last)
    change, following = aliased(CategoryBudget), aliased(CategoryBudget)
    standing = (change.category_id == category_id) & (change.one_month == false())
    next_change = (
        select(func.min(following.month))
        .where(
            following.category_id == change.category_id,
            following.one_month == false(),
            following.month > change.month,
        )
        .correlate_except(following)
        .scalar_subquery()
    )
    until = _lesser(func.coalesce(month_number(next_change) - 1, high), high)
    months_in_force = _greater(until - _greater(month_number(change.month), low) + 1, 0)
    changes = (
        select(func.coalesce(func.sum(_cents(change.amount) * months_in_force), 0))
        .where(standing, change.month <= last)
        .correlate_except(change, following)
        .scalar_subquery()
    )
    first_change = (
        select(func.min(change.month)).where(standing).correlate_except(change).scalar_subquery()
    )
    opening_until = _lesser(func.coalesce(month_number(first_change) - 1, high), high)
    opening_part = _cents(opening) * _greater(opening_until - low + 1, 0)
    override, replaced = aliased(CategoryBudget), aliased(CategoryBudget)
    replaced_amount = (
        select(replaced.amount)
        .where(
            replaced.category_id == override.category_id,
            replaced.one_month == false(),
            replaced.month <= override.month,
        )
        .order_by(replaced.month.desc())
        .limit(1)
        .correlate_except(replaced)
        .scalar_subquery()
    )
    overrides = (
        select(
            func.coalesce(
                func.sum(
                    _cents(override.amount)
                    - _cents(func.coalesce(replaced_amount, opening, type_=Money))
                ),
                0,
            )
        )
        .where(
            override.category_id == category_id,
            override.one_month == true(),
            override.month >= first,
            override.month <= last,
        )
        .correlate_except(override, replaced)
        .scalar_subquery()
    )
    return opening_part + changes + overrides


def rollover_run_start(
    category_id: SQLColumnExpression[int], last: DateArgument
) -> ColumnElement[dt.date]:
    """Correlated subquery: the first month of the unbroken run of months rolling over
    that ends with `last`; NULL when the category does not roll over in `last`
    (`budgets.rollover_run`). A few index probes of `(category_id, month)`."""
    on, off = aliased(CategoryRollover), aliased(CategoryRollover)
    switched_off_since = (
        select(off.id)
        .where(
            off.category_id == on.category_id,
            off.enabled == false(),
            off.month > on.month,
            off.month <= last,
        )
        .correlate_except(off)
        .exists()
    )
    return (
        select(func.min(on.month))
        .where(
            on.category_id == category_id,
            on.enabled == true(),
            on.month <= last,
            ~switched_off_since,
        )
        .correlate_except(on, off)
        .scalar_subquery()
    )


def carried_in(
    category_id: SQLColumnExpression[int],
    opening: SQLColumnExpression[Decimal],
    last: DateArgument,
    *,
    start: ColumnElement[dt.date] | None = None,
) -> ColumnElement[Decimal]:
    """What the category carries into the month after `last` (the rule in
    `services.budgets`): budget + transfers in − transfers out − spent summed over the run
    of months rolling over that ends with `last`, zero when it does not roll over then.

    Spending comes from `category_month_spent` (one row per month of the run, kept by the
    database's triggers), never from the expenses themselves, so the cost follows the
    length of the run (at most twelve rows a year), not the number of expenses.

    `start` is the run's first month when the caller has it already
    (`rollover_run_start(category_id, last)` computed once, e.g. in a CTE): the expression
    refers to it seven times, and each copy of the subquery is planned on its own.
    """
    if start is None:
        start = rollover_run_start(category_id, last)
    spent = (
        select(func.coalesce(func.sum(_cents(CategoryMonthSpent.spent)), 0))
        .where(
            CategoryMonthSpent.category_id == category_id,
            CategoryMonthSpent.month >= start,
            CategoryMonthSpent.month <= last,
        )
        .correlate_except(CategoryMonthSpent)
        .scalar_subquery()
    )

    def moved(side: Any) -> ScalarSelect[int]:
        return (
            select(func.coalesce(func.sum(_cents(BudgetTransfer.amount)), 0))
            .where(side == category_id, BudgetTransfer.month >= start, BudgetTransfer.month <= last)
            .correlate_except(BudgetTransfer)
            .scalar_subquery()
        )

    leftover = (
        budget_total(category_id, opening, start, last)
        + moved(BudgetTransfer.to_category_id)
        - moved(BudgetTransfer.from_category_id)
        - spent
    )
    return type_coerce(case((start.is_(None), 0), else_=leftover), Money())


def rolls_over_between(
    category_id: SQLColumnExpression[int], first: DateArgument, last: DateArgument
) -> ColumnElement[bool]:
    """Whether the category rolls over in any month from `first` to `last`."""
    switched_on = (
        select(CategoryRollover.id)
        .where(
            CategoryRollover.category_id == category_id,
            CategoryRollover.enabled == true(),
            CategoryRollover.month > first,
            CategoryRollover.month <= last,
        )
        .correlate_except(CategoryRollover)
        .exists()
    )
    return rollover_run_start(category_id, first).is_not(None) | switched_on


@dataclass(frozen=True)
class MonthBudget:
    """A category's budget parts and spending for one month; `figures` says what they
    mean (budget or none, available, over budget) by the rules of `services.budgets`."""

    month: dt.date
    monthly_budget: Decimal
    transfers: Decimal
    spent: Decimal
    transferred: bool
    """A transfer touched the category that month (see `transferred_in`)."""
    carried: Decimal = ZERO

    @property
    def figures(self) -> Figures:
        budget = budget_or_none(self.monthly_budget, self.transfers, transferred=self.transferred)
        return Figures(budget=budget, spent=self.spent, carried=self.carried)


def unknown_category(session: Session, *, user_id: int, name: str) -> NotFound:
    """The refusal for a category name the user does not have: their list and a guess."""
    names = list(
        session.scalars(
            select(Category.name).where(Category.user_id == user_id).order_by(Category.name_key)
        )
    )
    if not names:
        return NoCategories(name)
    import difflib  # only a refusal needs it, not every command that looks a name up

    keys = {name_key(known): known for known in names}
    close = difflib.get_close_matches(name_key(name), list(keys), n=1, cutoff=0.6)
    guess = f"; did you mean {keys[close[0]]!r}?" if close else ""
    return NotFound(f"no category {name!r} (categories: {', '.join(names)}){guess}")


def find_category(session: Session, *, user_id: int, name: str) -> Category:
    """The user's category named `name` (any case), or NotFound with the list of names."""
    category = session.scalar(
        select(Category).where(Category.user_id == user_id, Category.name_key == name_key(name))
    )
    if category is None:
        raise unknown_category(session, user_id=user_id, name=name)
    return category


def _ensure_name_free(
    session: Session, *, user_id: int, name: str, except_id: int | None = None
) -> None:
    query = select(Category.name).where(
        Category.user_id == user_id, Category.name_key == name_key(name)
    )
    if except_id is not None:
        query = query.where(Category.id != except_id)
    existing = session.scalar(query)
    if existing is not None:
        raise Conflict(f"a category named {existing!r} already exists")


@dataclass(frozen=True)
class CategoryRow(Figures):
    id: int
    name: str
    color: str | None
    monthly_budget: Decimal


@dataclass(frozen=True)
class CategoryListing:
    month: dt.date
    rows: list[CategoryRow]
    first_run: FirstRun | None


def list_categories(session: Session, *, user_email: str | None, today: dt.date) -> CategoryListing:
    """Every category of the user with its budget and spending for `today`'s month.

    One query: the per-category sums are correlated subqueries, not a query per category.
    """
    user, first_run = find_acting_user(session, user_email=user_email), None
    start, end = month_span(today)
    transfers = transfers_net(Category.id, start).label("transfers")
    transferred = transferred_in(Category.id, start).label("transferred")
    spent = spent_in(Category.id, start, end).label("spent")
    monthly = budget_in(Category.id, Category.monthly_budget, start).label("monthly_budget")
    carried = carried_in(Category.id, Category.monthly_budget, add_months(start, -1))
    result = session.execute(
        select(
            Category.id,
            Category.name,
            Category.color,
            monthly,
            transfers,
            transferred,
            spent,
            carried.label("carried"),
        )
        .where(Category.user_id == user.id)
        .order_by(Category.name_key)
    )
    rows = [
        CategoryRow(
            id=row.id,
            name=row.name,
            color=row.color,
            monthly_budget=row.monthly_budget,
            budget=budget_or_none(
                row.monthly_budget, row.transfers, transferred=bool(row.transferred)
            ),
            spent=row.spent,
            carried=row.carried,
        )
        for row in result
    ]
    return CategoryListing(month=start, rows=rows, first_run=first_run)


@dataclass(frozen=True)
class CategoryChange:
    """A category after a change, and what the change did (for the one-line summary)."""

    id: int
    name: str
    color: str | None
    monthly_budget: Decimal
    first_run: FirstRun | None
    old_name: str | None = None
    old_budget: Decimal | None = None
    month: dt.date | None = None
    """The month a budget change starts (or, with `one_month`, applies to)."""
    one_month: bool = False


def _change(category: Category, first_run: FirstRun | None, **extra: Any) -> CategoryChange:
    extra.setdefault("monthly_budget", category.monthly_budget)
    return CategoryChange(
        id=category.id, name=category.name, color=category.color, first_run=first_run, **extra
    )


def add_category(
    session: Session,
    *,
    user_email: str | None,
    name: str,
    monthly_budget: Decimal,
    color: str | None,
    from_month: dt.date,
) -> CategoryChange:
    """Create a category; refused when the name (in any case) is taken. Its budget starts
    `from_month` (no budget before); a zero budget records nothing (no budget in any
    month). Every caller names the month: a category never gets a budget for months
    before it had one."""
    name = rules.check_name(name)
    monthly_budget = rules.check_amount(monthly_budget, allow_zero=True, field="budget")
    color = None if color is None else rules.check_color(color)
    acting = acting_user(session, user_email=user_email)
    user, first_run = acting.user, acting.first_run
    _ensure_name_free(session, user_id=user.id, name=name)
    category = Category(user_id=user.id, name=name, color=color, monthly_budget=ZERO)
    session.add(category)
    _flush_unless_name_taken(session, name)
    if monthly_budget == 0:
        return _change(category, first_run, monthly_budget=monthly_budget)
    month = month_start(from_month)
    session.add(
        CategoryBudget(user_id=user.id, category_id=category.id, month=month, amount=monthly_budget)
    )
    session.flush()
    return _change(category, first_run, monthly_budget=monthly_budget, month=month)


def rename_category(
    session: Session, *, user_email: str | None, name: str, new_name: str
) -> CategoryChange:
    """Rename a category; a change of case only (`food` -> `Food`) is allowed."""
    new_name = rules.check_name(new_name, field="new name")
    acting = acting_user(session, user_email=user_email)
    user, first_run = acting.user, acting.first_run
    # Locked until the transaction ends: a concurrent rename of the same category waits,
    # then no longer finds it by its old name.
    (category,) = lock_categories(session, user_id=user.id, names=[name])
    _ensure_name_free(session, user_id=user.id, name=new_name, except_id=category.id)
    old_name = category.name
    category.name = new_name
    _flush_unless_name_taken(session, new_name)
    return _change(category, first_run, old_name=old_name)


def _flush_unless_name_taken(session: Session, name: str) -> None:
    """Flush; a name another command took since `_ensure_name_free` is the same refusal."""
    try:
        session.flush()
    except IntegrityError as exc:
        if "name_key" not in str(exc.orig):
            raise
        raise Conflict(f"a category named {name!r} already exists") from None


def lock_categories(session: Session, *, user_id: int, names: list[str]) -> list[Category]:
    """The user's categories named `names` (any case), in that order, row-locked.

    Every change to a category's budget first locks the category rows involved, always in
    id order (`SELECT … FOR UPDATE … ORDER BY id`), so two such changes of one category
    run one after the other and cannot deadlock; each then reads the current committed
    figures (`populate_existing`) rather than a stale copy. On SQLite a writing unit of
    work already holds the database's write lock (`BEGIN IMMEDIATE`).
    """
    keys = [name_key(name) for name in names]
    found = {
        category.name_key: category
        for category in session.scalars(
            select(Category)
            .where(Category.user_id == user_id, Category.name_key.in_(keys))
            .order_by(Category.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    for name, key in zip(names, keys, strict=True):
        if key not in found:
            raise unknown_category(session, user_id=user_id, name=name)
    return [found[key] for key in keys]


def history(session: Session, category: Category) -> list[BudgetChange]:
    """The category's recorded budget changes, in month order (overrides last)."""
    return [
        BudgetChange(row.month, row.amount, row.one_month)
        for row in session.scalars(
            select(CategoryBudget)
            .where(CategoryBudget.category_id == category.id)
            .order_by(CategoryBudget.one_month, CategoryBudget.month)
        )
    ]


def set_category_budget(
    session: Session,
    *,
    user_email: str | None,
    name: str,
    monthly_budget: Decimal,
    month: dt.date,
    one_month: bool = False,
) -> CategoryChange:
    """Set the monthly budget from `month` on (until a later change, which stays in
    force from its own month), or with `one_month` for that month only. Zero means no
    budget; transfers already made are kept. Under the category's row lock."""
    monthly_budget = rules.check_amount(monthly_budget, allow_zero=True, field="budget")
    acting = acting_user(session, user_email=user_email)
    user, first_run = acting.user, acting.first_run
    (category,) = lock_categories(session, user_id=user.id, names=[name])
    month = month_start(month)
    changes = history(session, category)
    old_budget = budget_in_month(category.monthly_budget, changes, month)
    existing = session.scalar(
        select(CategoryBudget).where(
            CategoryBudget.category_id == category.id,
            CategoryBudget.one_month == one_month,
            CategoryBudget.month == month,
        )
    )
    if existing is not None:
        existing.amount = monthly_budget
    else:
        session.add(
            CategoryBudget(
                user_id=user.id,
                category_id=category.id,
                month=month,
                amount=monthly_budget,
                one_month=one_month,
            )
        )
    session.flush()
    return _change(
        category,
        first_run,
        monthly_budget=monthly_budget,
        old_budget=old_budget,
        month=month,
        one_month=one_month,
    )


@dataclass(frozen=True)
class BudgetPeriod:
    """One line of a category's budget history."""

    first: dt.date | None
    """None: from the beginning (the opening budget)."""
    last: dt.date | None
    """None: until further notice."""
    amount: Decimal
    one_month: bool


@dataclass(frozen=True)
class BudgetHistory:
    category: str
    periods: list[BudgetPeriod]
    first_run: FirstRun | None
    rollover: list[RolloverPeriod] = field(default_factory=list)
    """The months it rolls over or not, from its first rollover change on."""


def budget_history(session: Session, *, user_email: str | None, name: str) -> BudgetHistory:
    """The category's budgets over time: standing periods in order, then one-month
    overrides. A zero amount means no budget."""
    user, first_run = find_acting_user(session, user_email=user_email), None
    category = find_category(session, user_id=user.id, name=name)
    changes = history(session, category)
    standing = [change for change in changes if not change.one_month]
    periods: list[BudgetPeriod] = []
    starts: list[dt.date | None] = [None, *(change.month for change in standing)]
    amounts = [category.monthly_budget, *(change.amount for change in standing)]
    for index, (first, amount) in enumerate(zip(starts, amounts, strict=True)):
        following = starts[index + 1] if index + 1 < len(starts) else None
        last = add_months(following, -1) if following is not None else None
        if first is None and following is not None and amount == 0:
            continue  # no budget before the first change: nothing to list
        periods.append(BudgetPeriod(first, last, amount, one_month=False))
    periods += [
        BudgetPeriod(change.month, change.month, change.amount, one_month=True)
        for change in changes
        if change.one_month
    ]
    switches = rollover_history(session, category)
    rollover = [
        RolloverPeriod(
            change.month,
            add_months(switches[index + 1].month, -1) if index + 1 < len(switches) else None,
            change.enabled,
        )
        for index, change in enumerate(switches)
    ]
    return BudgetHistory(
        category=category.name, periods=periods, first_run=first_run, rollover=rollover
    )


def rollover_history(session: Session, category: Category) -> list[RolloverChange]:
    """The category's recorded rollover changes, in month order."""
    return [
        RolloverChange(row.month, row.enabled)
        for row in session.scalars(
            select(CategoryRollover)
            .where(CategoryRollover.category_id == category.id)
            .order_by(CategoryRollover.month)
        )
    ]


@dataclass(frozen=True)
class RolloverSetting:
    """A category's rollover after a change, and what it was in that month before."""

    category: str
    month: dt.date
    enabled: bool
    was_enabled: bool
    first_run: FirstRun | None


def set_rollover(
    session: Session, *, user_email: str | None, name: str, enabled: bool, month: dt.date
) -> RolloverSetting:
    """Switch the category's rollover on or off from `month` on, until a later change
    (which stays in force from its own month). Under the category's row lock, like every
    change of what a category may spend, so a transfer's funds check never sees half of
    it."""
    acting = acting_user(session, user_email=user_email)
    user, first_run = acting.user, acting.first_run
    (category,) = lock_categories(session, user_id=user.id, names=[name])
    month = rules.check_month(month_start(month))
    was_enabled = rollover_on(rollover_history(session, category), month)
    existing = session.scalar(
        select(CategoryRollover).where(
            CategoryRollover.category_id == category.id, CategoryRollover.month == month
        )
    )
    if existing is not None:
        existing.enabled = enabled
    else:
        session.add(
            CategoryRollover(user_id=user.id, category_id=category.id, month=month, enabled=enabled)
        )
    session.flush()
    return RolloverSetting(category.name, month, enabled, was_enabled, first_run)


@dataclass(frozen=True)
class RolloverPeriod:
    """One line of a category's rollover history."""

    first: dt.date
    last: dt.date | None
    """None: until further notice."""
    enabled: bool


@dataclass(frozen=True)
class CategoryRemoval:
    """What deleting or merging a category did."""

    source: str
    target: str | None
    expenses_moved: int
    transfers_moved: int
    transfers_netted: int
    """Transfers between SOURCE and TARGET, removed because they net out once merged."""
    target_budget: Decimal | None
    """TARGET's monthly budget for the current month, after the merge."""
    first_run: FirstRun | None


def _affected(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE and return how many rows it changed."""
    result = session.execute(statement)
    assert isinstance(result, CursorResult)
    return result.rowcount


def _move_contents(session: Session, *, source: Category, target: Category) -> tuple[int, int, int]:
    """Re-point every expense and ledger entry of `source` at `target`.

    A transfer between the two would become a transfer from a category to itself, which the
    schema forbids and which means nothing: it moved budget within what is now one category,
    so the merged category's budget is the same with or without it. Such entries (and their
    undo entries, which are also between the two) are deleted.
    Returns (expenses moved, transfers moved, transfers removed).
    """
    between = or_(
        (BudgetTransfer.from_category_id == source.id)
        & (BudgetTransfer.to_category_id == target.id),
        (BudgetTransfer.from_category_id == target.id)
        & (BudgetTransfer.to_category_id == source.id),
    )
    mine = BudgetTransfer.user_id == source.user_id
    netted = _affected(session, delete(BudgetTransfer).where(mine, between))
    moved_out = _affected(
        session,
        update(BudgetTransfer)
        .where(mine, BudgetTransfer.from_category_id == source.id)
        .values(from_category_id=target.id),
    )
    moved_in = _affected(
        session,
        update(BudgetTransfer)
        .where(mine, BudgetTransfer.to_category_id == source.id)
        .values(to_category_id=target.id),
    )
    expenses = _affected(
        session,
        update(Expense)
        .where(Expense.user_id == source.user_id, Expense.category_id == source.id)
        .values(category_id=target.id),
    )
    return expenses, moved_out + moved_in, netted


def _two_categories(
    session: Session, *, user_id: int, source: str, target: str
) -> tuple[Category, Category]:
    """SOURCE and TARGET, both row-locked (in id order) for the rest of the transaction."""
    if name_key(source) == name_key(target):
        # Both must exist for the message to be right.
        lock_categories(session, user_id=user_id, names=[source])
        raise Conflict(f"{source!r} and {target!r} are the same category")
    source_category, target_category = lock_categories(
        session, user_id=user_id, names=[source, target]
    )
    return source_category, target_category


def _overdrawn_months(
    session: Session,
    *,
    source: Category,
    target: Category,
    combined: tuple[Decimal, list[BudgetChange]],
) -> list[tuple[dt.date, Decimal]]:
    """The months in which SOURCE and TARGET together have a negative budget, and that
    budget: what one category made of both would start with (transfers between the two
    net out). Only an overdrawn transfer (`--allow-overdraw`) makes a budget negative."""
    both = (source.id, target.id)
    signed = case(
        (BudgetTransfer.to_category_id.in_(both), _cents(BudgetTransfer.amount)), else_=0
    ) - case((BudgetTransfer.from_category_id.in_(both), _cents(BudgetTransfer.amount)), else_=0)
    rows = session.execute(
        select(BudgetTransfer.month, func.sum(signed).label("net"))
        .where(
            BudgetTransfer.user_id == source.user_id,
            or_(BudgetTransfer.from_category_id.in_(both), BudgetTransfer.to_category_id.in_(both)),
        )
        .group_by(BudgetTransfer.month)
        .order_by(BudgetTransfer.month)
    )
    opening, changes = combined
    overdrawn = []
    for row in rows:
        budget = budget_in_month(opening, changes, row.month) + from_cents(row.net)
        if budget < 0:
            overdrawn.append((row.month, budget))
    return overdrawn


def _fold(
    session: Session, *, source: Category, target: Category, allow_overdraw: bool
) -> tuple[int, int, int]:
    """Fold SOURCE into TARGET under their row locks: the budgets add up month by month,
    every expense and ledger entry moves, and SOURCE is removed. Refused when TARGET would
    be left with a negative budget in some month, unless `allow_overdraw`."""
    combined = combined_history(
        (source.monthly_budget, history(session, source)),
        (target.monthly_budget, history(session, target)),
    )
    if not allow_overdraw:
        overdrawn = _overdrawn_months(session, source=source, target=target, combined=combined)
        if overdrawn:
            month, budget = overdrawn[0]
            raise BudgetBelowZero(target.name, budget, month, len(overdrawn), source.name)
    moved = _move_contents(session, source=source, target=target)
    session.execute(
        delete(CategoryBudget).where(CategoryBudget.category_id.in_((source.id, target.id)))
    )
    # TARGET keeps its own rollover settings: SOURCE's spending now rolls over (or not)
    # with TARGET's.
    session.execute(delete(CategoryRollover).where(CategoryRollover.category_id == source.id))
    # Safe to compute in Python: both rows are locked until COMMIT, and every change of a
    # category's budget takes that lock first.
    opening, changes = combined
    target.monthly_budget = opening
    session.add_all(
        CategoryBudget(
            user_id=target.user_id,
            category_id=target.id,
            month=change.month,
            amount=change.amount,
            one_month=change.one_month,
        )
        for change in changes
    )
    session.delete(source)
    session.flush()
    return moved


def delete_category(
    session: Session,
    *,
    user_email: str | None,
    name: str,
    move_to: str | None,
    today: dt.date,
    allow_overdraw: bool = False,
) -> CategoryRemoval:
    """Delete a category. Refused while it has expenses or transfers, unless `move_to`
    names another category to take them over: then it is folded into that one exactly
    as `merge_categories` does (budgets combined, so no month loses budget)."""
    acting = acting_user(session, user_email=user_email)
    user, first_run = acting.user, acting.first_run
    if move_to is None:
        (category,) = lock_categories(session, user_id=user.id, names=[name])
        expenses, transfers = session.execute(
            select(
                select(func.count()).where(Expense.category_id == category.id).scalar_subquery(),
                select(func.count())
                .where(
                    or_(
                        BudgetTransfer.from_category_id == category.id,
                        BudgetTransfer.to_category_id == category.id,
                    )
                )
                .scalar_subquery(),
            )
        ).one()
        if expenses or transfers:
            raise CategoryInUse(category.name, expenses, transfers)
        # Its budget history goes with it (budgets are not use: nothing was spent or moved).
        session.execute(delete(CategoryBudget).where(CategoryBudget.category_id == category.id))
        session.execute(delete(CategoryRollover).where(CategoryRollover.category_id == category.id))
        session.delete(category)
        session.flush()
        return CategoryRemoval(category.name, None, 0, 0, 0, None, first_run)
    return merge_categories(
        session,
        user_email=user_email,
        source=name,
        target=move_to,
        today=today,
        allow_overdraw=allow_overdraw,
    )


def merge_categories(
    session: Session,
    *,
    user_email: str | None,
    source: str,
    target: str,
    today: dt.date,
    allow_overdraw: bool = False,
) -> CategoryRemoval:
    """Fold SOURCE into TARGET: its expenses and ledger entries move, its monthly budget is
    added to TARGET's, and SOURCE is removed. One transaction (the caller's), under both
    categories' row locks, so concurrent merges into one TARGET all add up."""
    acting = acting_user(session, user_email=user_email)
    user, first_run = acting.user, acting.first_run
    source_category, target_category = _two_categories(
        session, user_id=user.id, source=source, target=target
    )
    moved = _fold(
        session, source=source_category, target=target_category, allow_overdraw=allow_overdraw
    )
    now = budget_in_month(
        target_category.monthly_budget, history(session, target_category), month_start(today)
    )
    return CategoryRemoval(source_category.name, target_category.name, *moved, now, first_run)
