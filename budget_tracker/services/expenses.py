"""Expenses: record, list, edit and delete, always scoped to the acting user.

`add_expense` is the hot path of the product and sends two statements inside its
transaction on a migrated database: one lookup that resolves the user, the category and
the category's budget, spending and carried amount for the month, and one INSERT ...
RETURNING (the database's trigger adds the amount to the month's kept sum, server-side). When the
lookup finds nothing, it works out why afterwards (first run, unknown user, unknown
category) with further queries: refusals may be slow, the common case may not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from budget_tracker import rules
from budget_tracker.errors import NotFound
from budget_tracker.models import (
    Category,
    Expense,
    User,
    entered_by_person,
    entering_user,
    name_key,
    normalize_email,
)
from budget_tracker.outcomes import outcome_in_rows
from budget_tracker.services.budgets import add_months, month_span, month_start
from budget_tracker.services.categories import (
    MonthBudget,
    budget_in,
    carried_in,
    find_category,
    spent_in,
    transferred_in,
    transfers_net,
    unknown_category,
)
from budget_tracker.services.users import (
    FirstRun,
    acting_user,
    check_person,
    default_user_condition,
    entered_by_condition,
    find_acting_user,
    person_email,
    with_entered_by,
)
from budget_tracker.unit_of_work import committed_earlier


@dataclass(frozen=True)
class ExpenseRow:
    """An expense as the commands show it."""

    id: int
    date: dt.date
    category: str
    amount: Decimal
    description: str
    entered_by_id: int
    """The user who entered it (see `Expense.entered_by`)."""
    entered_by: str | None
    """Their e-mail; None for a user this connection may not see (a former member)."""


@dataclass(frozen=True)
class AddedExpense:
    expense: ExpenseRow
    month: MonthBudget
    """The category's budget and spending for the expense's month, this expense included."""
    first_run: FirstRun | None


@dataclass(frozen=True)
class _Found:
    user_id: int
    category_id: int
    category_name: str
    monthly_budget: Decimal
    transfers: Decimal
    spent: Decimal
    transferred: bool
    carried: Decimal
    entered_by_id: int
    """Who an expense inserted now is entered by (`entering_user`), and their e-mail."""
    entered_by: str | None


def _lookup(
    session: Session, *, who: ColumnElement[bool], category: str, month: dt.date
) -> _Found | None:
    """The one query of the hot path: user, category, the category's month figures, and
    who is entering the expense."""
    start, end = month_span(month)
    row = session.execute(
        select(
            User.id.label("user_id"),
            Category.id.label("category_id"),
            Category.name.label("category_name"),
            budget_in(Category.id, Category.monthly_budget, start).label("monthly_budget"),
            transfers_net(Category.id, start).label("transfers"),
            spent_in(Category.id, start, end).label("spent"),
            transferred_in(Category.id, start).label("transferred"),
            carried_in(Category.id, Category.monthly_budget, add_months(start, -1)).label(
                "carried"
            ),
            entering_user(User.id).label("entered_by_id"),
            person_email(entering_user(User.id)).label("entered_by"),
        )
        .join(Category, (Category.user_id == User.id) & (Category.name_key == name_key(category)))
        .where(who)
    ).one_or_none()
    return None if row is None else _Found(**row._asdict())


def _insert_expense(
    session: Session,
    *,
    user_id: int,
    category_id: int,
    amount: Decimal,
    spent_on: dt.date,
    description: str,
    idempotency_key: str | None,
) -> Expense:
    """The single place an expense row is written (one INSERT ... RETURNING)."""
    expense = Expense(
        user_id=user_id,
        category_id=category_id,
        amount=amount,
        spent_on=spent_on,
        description=description,
        idempotency_key=idempotency_key,
        entered_by=entering_user(user_id),
    )
    session.add(expense)
    session.flush()
    return expense


def add_expense(
    session: Session,
    *,
    user_email: str | None,
    category: str,
    amount: Decimal,
    spent_on: dt.date,
    description: str,
    idempotency_key: str | None,
) -> AddedExpense:
    """Record an expense for the acting user in their category named `category` (any case).

    `idempotency_key` is generated once per command invocation, so a retried unit of work
    can recognise an expense that was already committed.
    """
    amount = rules.check_amount(amount)
    spent_on = rules.check_date(spent_on)
    description = rules.check_description(description)
    first_run: FirstRun | None = None
    who = User.email == normalize_email(user_email) if user_email else default_user_condition()
    found = _lookup(session, who=who, category=category, month=spent_on)
    if found is None:
        # Diagnose: bootstrap an empty database, or refuse an unknown/ambiguous user...
        acting = acting_user(session, user_email=user_email)
        user, first_run = acting.user, acting.first_run
        found = _lookup(session, who=User.id == user.id, category=category, month=spent_on)
        if found is None:
            # ...or an unknown category, with the user's list and a "did you mean".
            raise unknown_category(session, user_id=user.id, name=category)
    if idempotency_key is not None:
        if first_run is None:
            # The keyed row tells a retry what happened: no outcome row needed.
            outcome_in_rows(session)
        # Retry-safety: on a retried unit of work an earlier attempt may have
        # committed before its acknowledgement was lost. Return that row instead of adding
        # a second one. Costs nothing on a first attempt (no query is made).
        earlier = committed_earlier(session, Expense, user_id=found.user_id, key=idempotency_key)
        if earlier is not None:
            return AddedExpense(
                expense=ExpenseRow(
                    id=earlier.id,
                    date=earlier.spent_on,
                    category=found.category_name,
                    amount=earlier.amount,
                    description=earlier.description,
                    entered_by_id=found.entered_by_id,
                    entered_by=found.entered_by,
                ),
                month=MonthBudget(
                    month=month_start(earlier.spent_on),
                    monthly_budget=found.monthly_budget,
                    transfers=found.transfers,
                    spent=found.spent,  # already includes the committed expense
                    transferred=bool(found.transferred),
                    carried=found.carried,
                ),
                first_run=first_run,
            )
    expense = _insert_expense(
        session,
        user_id=found.user_id,
        category_id=found.category_id,
        amount=amount,
        spent_on=spent_on,
        description=description,
        idempotency_key=idempotency_key,
    )
    return AddedExpense(
        expense=ExpenseRow(
            id=expense.id,
            date=spent_on,
            category=found.category_name,
            amount=amount,
            description=description,
            entered_by_id=found.entered_by_id,
            entered_by=found.entered_by,
        ),
        month=MonthBudget(
            month=month_start(spent_on),
            monthly_budget=found.monthly_budget,
            transfers=found.transfers,
            spent=found.spent + amount,
            transferred=bool(found.transferred),
            carried=found.carried,
        ),
        first_run=first_run,
    )


@dataclass(frozen=True)
class ExpenseFilter:
    """Which expenses `list_expenses` returns; every bound is inclusive."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    category: str | None = None
    search: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    limit: int | None = None
    entered_by: str | None = None
    """Only expenses entered by the user with this e-mail."""


@dataclass(frozen=True)
class ExpenseListing:
    rows: list[ExpenseRow]
    count: int
    """How many expenses match (before --limit)."""
    total: Decimal
    """The sum of every matching expense (before --limit)."""
    first_run: FirstRun | None
    user_id: int
    """The budget's own user (0 on an empty database)."""


def list_expenses(
    session: Session, *, user_email: str | None, filters: ExpenseFilter
) -> ExpenseListing:
    """The acting user's expenses matching `filters`, newest first, with count and total.

    The count and total cover every match, not only the `limit` shown; they come from
    window functions in the same query.
    """
    user, first_run = find_acting_user(session, user_email=user_email), None
    conditions: list[ColumnElement[bool]] = [Expense.user_id == user.id]
    if filters.category is not None:
        category = find_category(session, user_id=user.id, name=filters.category)
        conditions.append(Expense.category_id == category.id)
    if filters.date_from is not None:
        conditions.append(Expense.spent_on >= filters.date_from)
    if filters.date_to is not None:
        conditions.append(Expense.spent_on <= filters.date_to)
    if filters.search:
        conditions.append(Expense.description.icontains(filters.search, autoescape=True))
    if filters.min_amount is not None:
        conditions.append(Expense.amount >= filters.min_amount)
    if filters.max_amount is not None:
        conditions.append(Expense.amount <= filters.max_amount)
    if filters.entered_by is not None:
        conditions.append(entered_by_condition(Expense, filters.entered_by))
    query = (
        with_entered_by(
            select(
                Expense.id,
                Expense.spent_on,
                Category.name,
                Expense.amount,
                Expense.description,
                func.count().over().label("matching"),
                func.sum(Expense.amount).over().label("total"),
            ).join(Category, Category.id == Expense.category_id),
            Expense,
        )
        .where(*conditions)
        .order_by(Expense.spent_on.desc(), Expense.id.desc())
        .limit(filters.limit)
    )
    result = session.execute(query).all()
    if not result and filters.entered_by is not None:
        check_person(session, email=filters.entered_by)
    rows = [
        ExpenseRow(
            id=row.id,
            date=row.spent_on,
            category=row.name,
            amount=row.amount,
            description=row.description,
            entered_by_id=row.entered_by_id,
            entered_by=row.entered_by,
        )
        for row in result
    ]
    count = result[0].matching if result else 0
    total = result[0].total if result else Decimal("0.00")
    return ExpenseListing(rows=rows, count=count, total=total, first_run=first_run, user_id=user.id)


def _owned_expense(
    session: Session, *, user_id: int, expense_id: int, for_update: bool = False
) -> Expense:
    """The user's expense by id; another user's id is "not found", exactly like a missing one.

    `for_update` locks the row until the transaction ends, so a change computed from what
    was read cannot interleave with another command's change of the same expense.
    """
    rules.check_id(expense_id, field="expense id")
    statement = select(Expense).where(Expense.id == expense_id, Expense.user_id == user_id)
    if for_update:
        statement = statement.with_for_update()
    expense = session.scalar(statement)
    if expense is None:
        raise NotFound(f"no expense with id {expense_id}")
    return expense


def _row(session: Session, expense: Expense) -> ExpenseRow:
    """The expense as shown: its category's name and who entered it, in one query."""
    person = expense.entered_by if expense.entered_by is not None else expense.user_id
    category, email = session.execute(
        select(Category.name, person_email(person)).where(Category.id == expense.category_id)
    ).one()
    return ExpenseRow(
        id=expense.id,
        date=expense.spent_on,
        category=category,
        amount=expense.amount,
        description=expense.description,
        entered_by_id=person,
        entered_by=email,
    )


@dataclass(frozen=True)
class ExpenseChange:
    before: ExpenseRow
    after: ExpenseRow | None
    """None when the expense was deleted."""
    first_run: FirstRun | None
    month: MonthBudget | None = None
    """After an edit: the category's budget and spending for the expense's month, the
    edited expense included (as `AddedExpense.month`); None after a delete."""


def month_budget(session: Session, *, category_id: int, month: dt.date) -> MonthBudget:
    """A category's budget and spending for the month of `month`, in one query."""
    start, end = month_span(month)
    row = session.execute(
        select(
            budget_in(Category.id, Category.monthly_budget, start),
            transfers_net(Category.id, start),
            spent_in(Category.id, start, end),
            transferred_in(Category.id, start),
            carried_in(Category.id, Category.monthly_budget, add_months(start, -1)),
        ).where(Category.id == category_id)
    ).one()
    return MonthBudget(
        month=start,
        monthly_budget=row[0],
        transfers=row[1],
        spent=row[2],
        transferred=bool(row[3]),
        carried=row[4],
    )


def get_expense(session: Session, *, user_email: str | None, expense_id: int) -> ExpenseRow:
    user = find_acting_user(session, user_email=user_email)
    return _row(session, _owned_expense(session, user_id=user.id, expense_id=expense_id))


def edit_expense(
    session: Session,
    *,
    user_email: str | None,
    expense_id: int,
    amount: Decimal | None = None,
    category: str | None = None,
    description: str | None = None,
    spent_on: dt.date | None = None,
) -> ExpenseChange:
    """Change the given fields of one of the acting user's expenses."""
    amount = None if amount is None else rules.check_amount(amount)
    description = None if description is None else rules.check_description(description)
    spent_on = None if spent_on is None else rules.check_date(spent_on)
    acting = acting_user(session, user_email=user_email)
    user, first_run = acting.user, acting.first_run
    expense = _owned_expense(session, user_id=user.id, expense_id=expense_id, for_update=True)
    before = _row(session, expense)
    if category is not None:
        expense.category_id = find_category(session, user_id=user.id, name=category).id
    if amount is not None:
        expense.amount = amount
    if description is not None:
        expense.description = description
    if spent_on is not None:
        expense.spent_on = spent_on
    session.flush()
    return ExpenseChange(
        before=before,
        after=_row(session, expense),
        first_run=first_run,
        month=month_budget(session, category_id=expense.category_id, month=expense.spent_on),
    )


def delete_expense(session: Session, *, user_email: str | None, expense_id: int) -> ExpenseChange:
    """Delete one of the acting user's expenses.

    One `DELETE ... RETURNING`: of two commands deleting the same expense at once, the one
    whose statement removed the row reports it, and the other finds nothing to delete.
    """
    rules.check_id(expense_id, field="expense id")
    acting = acting_user(session, user_email=user_email)
    user, first_run = acting.user, acting.first_run
    deleted = session.execute(
        delete(Expense)
        .where(Expense.id == expense_id, Expense.user_id == user.id)
        .returning(
            Expense.id,
            Expense.spent_on,
            Expense.category_id,
            Expense.amount,
            Expense.description,
            entered_by_person(Expense).label("entered_by_id"),
        )
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if deleted is None:
        raise NotFound(f"no expense with id {expense_id}")
    category, email = session.execute(
        select(Category.name, person_email(deleted.entered_by_id)).where(
            Category.id == deleted.category_id
        )
    ).one()
    before = ExpenseRow(
        id=deleted.id,
        date=deleted.spent_on,
        category=category,
        amount=deleted.amount,
        description=deleted.description,
        entered_by_id=deleted.entered_by_id,
        entered_by=email,
    )
    return ExpenseChange(before=before, after=None, first_run=first_run)
