"""Categories: lookup by name (case-insensitive), budgets per month, and their CRUD rules.

What a budget, spent and available mean is defined in `services.budgets`; the SQL pieces
that compute a category's month figures (`spent_in`, `transfers_net`) live here so every
command (add-expense's warning, `category list`, transfers) computes them the same way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CursorResult,
    ScalarSelect,
    SQLColumnExpression,
    case,
    delete,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from budget_tracker.errors import BudgetBelowZero, Conflict, NotFound
from budget_tracker.models import BudgetTransfer, Category, Expense, Money, name_key
from budget_tracker.money import from_cents, to_cents
from budget_tracker.services.budgets import Figures, budget_or_none, month_span
from budget_tracker.services.users import FirstRun, acting_user


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


@dataclass(frozen=True)
class MonthBudget:
    """A category's budget parts and spending for one month; `figures` says what they
    mean (budget or none, available, over budget) by the rules of `services.budgets`."""

    month: dt.date
    monthly_budget: Decimal
    transfers: Decimal
    spent: Decimal

    @property
    def figures(self) -> Figures:
        budget = budget_or_none(
            self.monthly_budget, self.transfers, transferred=self.transfers != 0
        )
        return Figures(budget=budget, spent=self.spent)


def unknown_category(session: Session, *, user_id: int, name: str) -> NotFound:
    """The refusal for a category name the user does not have: their list and a guess."""
    names = list(
        session.scalars(
            select(Category.name).where(Category.user_id == user_id).order_by(Category.name_key)
        )
    )
    if not names:
        return NotFound(
            f"no category {name!r}: there are no categories yet; add one with "
            "`budget category add NAME`"
        )
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
    user, first_run = acting_user(session, user_email=user_email)
    start, end = month_span(today)
    transfers = transfers_net(Category.id, start).label("transfers")
    spent = spent_in(Category.id, start, end).label("spent")
    result = session.execute(
        select(
            Category.id, Category.name, Category.color, Category.monthly_budget, transfers, spent
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
                row.monthly_budget, row.transfers, transferred=row.transfers != 0
            ),
            spent=row.spent,
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


def _change(category: Category, first_run: FirstRun | None, **extra: Any) -> CategoryChange:
    return CategoryChange(
        id=category.id,
        name=category.name,
        color=category.color,
        monthly_budget=category.monthly_budget,
        first_run=first_run,
        **extra,
    )


def add_category(
    session: Session,
    *,
    user_email: str | None,
    name: str,
    monthly_budget: Decimal,
    color: str | None,
) -> CategoryChange:
    """Create a category; refused when the name (in any case) is taken."""
    user, first_run = acting_user(session, user_email=user_email)
    _ensure_name_free(session, user_id=user.id, name=name)
    category = Category(user_id=user.id, name=name, color=color, monthly_budget=monthly_budget)
    session.add(category)
    session.flush()
    return _change(category, first_run)


def rename_category(
    session: Session, *, user_email: str | None, name: str, new_name: str
) -> CategoryChange:
    """Rename a category; a change of case only (`food` -> `Food`) is allowed."""
    user, first_run = acting_user(session, user_email=user_email)
    category = find_category(session, user_id=user.id, name=name)
    _ensure_name_free(session, user_id=user.id, name=new_name, except_id=category.id)
    old_name = category.name
    category.name = new_name
    session.flush()
    return _change(category, first_run, old_name=old_name)


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


def set_category_budget(
    session: Session, *, user_email: str | None, name: str, monthly_budget: Decimal
) -> CategoryChange:
    """Set the monthly budget (zero removes it); transfers already made are kept."""
    user, first_run = acting_user(session, user_email=user_email)
    (category,) = lock_categories(session, user_id=user.id, names=[name])
    old_budget = category.monthly_budget
    category.monthly_budget = monthly_budget
    session.flush()
    return _change(category, first_run, old_budget=old_budget)


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


def _counted(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


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


def overdrawn_months(
    session: Session, *, source: Category, target: Category
) -> list[tuple[dt.date, Decimal]]:
    """The months in which SOURCE and TARGET together have a negative budget, and that
    budget: what one category made of both would start with (transfers between the two
    net out). Only an overdrawn transfer (`--allow-overdraw`) makes a budget negative."""
    both = (source.id, target.id)
    signed = case(
        (BudgetTransfer.to_category_id.in_(both), _cents(BudgetTransfer.amount)), else_=0
    ) - case((BudgetTransfer.from_category_id.in_(both), _cents(BudgetTransfer.amount)), else_=0)
    base = to_cents(source.monthly_budget) + to_cents(target.monthly_budget)
    net = func.sum(signed)
    rows = session.execute(
        select(BudgetTransfer.month, net.label("net"))
        .where(
            BudgetTransfer.user_id == source.user_id,
            or_(BudgetTransfer.from_category_id.in_(both), BudgetTransfer.to_category_id.in_(both)),
        )
        .group_by(BudgetTransfer.month)
        .having(net + base < 0)
        .order_by(BudgetTransfer.month)
    )
    return [(row.month, from_cents(row.net + base)) for row in rows]


def _fold(
    session: Session, *, source: Category, target: Category, allow_overdraw: bool
) -> tuple[int, int, int]:
    """Fold SOURCE into TARGET under their row locks: the budgets add up, every expense
    and ledger entry moves, and SOURCE is removed. Refused when TARGET would be left with
    a negative budget in some month, unless `allow_overdraw`."""
    if not allow_overdraw:
        overdrawn = overdrawn_months(session, source=source, target=target)
        if overdrawn:
            month, budget = overdrawn[0]
            raise BudgetBelowZero(target.name, budget, month, len(overdrawn), source.name)
    moved = _move_contents(session, source=source, target=target)
    # Safe as a Python read-modify-write: both rows are locked until COMMIT.
    target.monthly_budget = target.monthly_budget + source.monthly_budget
    session.delete(source)
    session.flush()
    return moved


def delete_category(
    session: Session,
    *,
    user_email: str | None,
    name: str,
    move_to: str | None,
    allow_overdraw: bool = False,
) -> CategoryRemoval:
    """Delete a category. Refused while it has expenses or transfers, unless `move_to`
    names another category to take them over: then it is folded into that one exactly
    as `merge_categories` does (budgets combined, so no month loses budget)."""
    user, first_run = acting_user(session, user_email=user_email)
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
            raise Conflict(
                f"category {category.name!r} is in use ({_counted(expenses, 'expense')}, "
                f"{_counted(transfers, 'transfer')}): use --move-to OTHER to move them, or "
                "`budget category merge`"
            )
        session.delete(category)
        session.flush()
        return CategoryRemoval(category.name, None, 0, 0, 0, None, first_run)
    return merge_categories(
        session,
        user_email=user_email,
        source=name,
        target=move_to,
        allow_overdraw=allow_overdraw,
    )


def merge_categories(
    session: Session,
    *,
    user_email: str | None,
    source: str,
    target: str,
    allow_overdraw: bool = False,
) -> CategoryRemoval:
    """Fold SOURCE into TARGET: its expenses and ledger entries move, its monthly budget is
    added to TARGET's, and SOURCE is removed. One transaction (the caller's), under both
    categories' row locks, so concurrent merges into one TARGET all add up."""
    user, first_run = acting_user(session, user_email=user_email)
    source_category, target_category = _two_categories(
        session, user_id=user.id, source=source, target=target
    )
    moved = _fold(
        session, source=source_category, target=target_category, allow_overdraw=allow_overdraw
    )
    return CategoryRemoval(
        source_category.name,
        target_category.name,
        *moved,
        target_category.monthly_budget,
        first_run,
    )
