"""Income: record, list, edit and delete money received, always scoped to the acting user.

Income sits beside spending in the report (income, budgeted, spent, saved, unbudgeted);
budgets are not required to be funded by it. Amounts follow the same rules as expenses,
and `add_income` stores an idempotency key so a retried unit of work never records the
same income twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, ScalarSelect, func, insert, select
from sqlalchemy.orm import Session

from budget_tracker import rules
from budget_tracker.errors import NotFound
from budget_tracker.models import Income, Money, entered_by_person, entering_user
from budget_tracker.services.budgets import ZERO
from budget_tracker.services.users import (
    FirstRun,
    acting_user,
    check_person,
    entered_by_condition,
    find_acting_user,
    person_email,
    with_entered_by,
)
from budget_tracker.unit_of_work import committed_earlier


@dataclass(frozen=True)
class IncomeRow:
    """An income entry as the commands show it."""

    id: int
    date: dt.date
    amount: Decimal
    source: str
    entered_by_id: int
    """The user who entered it (see `Expense.entered_by`)."""
    entered_by: str | None
    """Their e-mail; None for a user this connection may not see (a former member)."""


@dataclass(frozen=True)
class AddedIncome:
    income: IncomeRow
    first_run: FirstRun | None


def income_in(
    user_id: int | ColumnElement[int],
    start: dt.date,
    end: dt.date,
    *,
    entered_by: str | None = None,
) -> ScalarSelect[Decimal]:
    """Subquery: the user's income received on days start <= d < end (zero when none),
    only what the user `entered_by` entered when given."""
    statement = select(func.coalesce(func.sum(Income.amount), 0, type_=Money)).where(
        Income.user_id == user_id, Income.received_on >= start, Income.received_on < end
    )
    if entered_by is not None:
        statement = statement.where(entered_by_condition(Income, entered_by))
    return statement.scalar_subquery()


def _person(income: Income) -> int:
    """The user who entered `income` (`entered_by_person`, for a loaded row)."""
    return income.entered_by if income.entered_by is not None else income.user_id


def _row(income: Income, entered_by: str | None) -> IncomeRow:
    """`income` as shown; `entered_by`: the e-mail of the user who entered it."""
    return IncomeRow(
        id=income.id,
        date=income.received_on,
        amount=income.amount,
        source=income.source,
        entered_by_id=_person(income),
        entered_by=entered_by,
    )


def add_income(
    session: Session,
    *,
    user_email: str | None,
    amount: Decimal,
    received_on: dt.date,
    source: str,
    idempotency_key: str | None,
) -> AddedIncome:
    """Record income for the acting user; a key already committed returns that entry."""
    amount = rules.check_amount(amount)
    received_on = rules.check_date(received_on)
    source = rules.check_description(source, field="source")
    acting = acting_user(session, user_email=user_email)
    user, first_run = acting.user, acting.first_run
    if idempotency_key is not None:
        earlier = committed_earlier(session, Income, user_id=user.id, key=idempotency_key)
        if earlier is not None:
            email = session.scalar(select(person_email(_person(earlier))))
            return AddedIncome(income=_row(earlier, email), first_run=first_run)
    # One INSERT ... RETURNING, who entered it and their e-mail included (the e-mail of
    # the same `entering_user`, computed in the statement, not read back from the row).
    added = session.execute(
        insert(Income)
        .values(
            user_id=user.id,
            amount=amount,
            received_on=received_on,
            source=source,
            idempotency_key=idempotency_key,
            entered_by=entering_user(user.id),
        )
        .returning(
            Income.id,
            entered_by_person(Income).label("entered_by_id"),
            person_email(entering_user(user.id)).label("entered_by"),
        )
    ).one()
    row = IncomeRow(
        id=added.id,
        date=received_on,
        amount=amount,
        source=source,
        entered_by_id=added.entered_by_id,
        entered_by=added.entered_by,
    )
    return AddedIncome(income=row, first_run=first_run)


@dataclass(frozen=True)
class IncomeFilter:
    """Which income entries `list_income` returns; every bound is inclusive."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    search: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    limit: int | None = None
    entered_by: str | None = None
    """Only income entered by the user with this e-mail."""


@dataclass(frozen=True)
class IncomeListing:
    rows: list[IncomeRow]
    count: int
    """How many entries match (before the limit)."""
    total: Decimal
    """The sum of every matching entry (before the limit)."""
    first_run: FirstRun | None
    user_id: int
    """The budget's own user (0 on an empty database)."""


def list_income(
    session: Session, *, user_email: str | None, filters: IncomeFilter
) -> IncomeListing:
    """The acting user's income matching `filters`, newest first, with count and total."""
    user, first_run = find_acting_user(session, user_email=user_email), None
    conditions: list[ColumnElement[bool]] = [Income.user_id == user.id]
    if filters.date_from is not None:
        conditions.append(Income.received_on >= filters.date_from)
    if filters.date_to is not None:
        conditions.append(Income.received_on <= filters.date_to)
    if filters.search:
        conditions.append(Income.source.icontains(filters.search, autoescape=True))
    if filters.min_amount is not None:
        conditions.append(Income.amount >= filters.min_amount)
    if filters.max_amount is not None:
        conditions.append(Income.amount <= filters.max_amount)
    if filters.entered_by is not None:
        conditions.append(entered_by_condition(Income, filters.entered_by))
    result = session.execute(
        with_entered_by(
            select(
                Income.id,
                Income.received_on,
                Income.amount,
                Income.source,
                func.count().over().label("matching"),
                func.sum(Income.amount).over().label("total"),
            ),
            Income,
        )
        .where(*conditions)
        .order_by(Income.received_on.desc(), Income.id.desc())
        .limit(filters.limit)
    ).all()
    if not result and filters.entered_by is not None:
        check_person(session, email=filters.entered_by)
    rows = [
        IncomeRow(
            id=r.id,
            date=r.received_on,
            amount=r.amount,
            source=r.source,
            entered_by_id=r.entered_by_id,
            entered_by=r.entered_by,
        )
        for r in result
    ]
    count = result[0].matching if result else 0
    total = result[0].total if result else ZERO
    return IncomeListing(rows=rows, count=count, total=total, first_run=first_run, user_id=user.id)


@dataclass(frozen=True)
class IncomeChange:
    before: IncomeRow
    after: IncomeRow | None
    """None when the entry was deleted."""
    first_run: FirstRun | None


def _owned(session: Session, *, user_id: int, income_id: int) -> tuple[Income, str | None]:
    """The user's income entry, row-locked, and the e-mail of who entered it (one query);
    another user's id is "not found"."""
    rules.check_id(income_id, field="income id")
    found = session.execute(
        select(Income, person_email(entered_by_person(Income)))
        .where(Income.id == income_id, Income.user_id == user_id)
        .with_for_update(of=Income)
    ).one_or_none()
    if found is None:
        raise NotFound(f"no income with id {income_id}")
    return found[0], found[1]


def edit_income(
    session: Session,
    *,
    user_email: str | None,
    income_id: int,
    amount: Decimal | None = None,
    source: str | None = None,
    received_on: dt.date | None = None,
) -> IncomeChange:
    """Change the given fields of one of the acting user's income entries."""
    amount = None if amount is None else rules.check_amount(amount)
    source = None if source is None else rules.check_description(source, field="source")
    received_on = None if received_on is None else rules.check_date(received_on)
    acting = acting_user(session, user_email=user_email)
    user, first_run = acting.user, acting.first_run
    income, entered_by = _owned(session, user_id=user.id, income_id=income_id)
    before = _row(income, entered_by)
    if amount is not None:
        income.amount = amount
    if source is not None:
        income.source = source
    if received_on is not None:
        income.received_on = received_on
    session.flush()
    return IncomeChange(before=before, after=_row(income, entered_by), first_run=first_run)


def delete_income(session: Session, *, user_email: str | None, income_id: int) -> IncomeChange:
    """Delete one of the acting user's income entries."""
    acting = acting_user(session, user_email=user_email)
    user, first_run = acting.user, acting.first_run
    income, entered_by = _owned(session, user_id=user.id, income_id=income_id)
    before = _row(income, entered_by)
    session.delete(income)
    session.flush()
    return IncomeChange(before=before, after=None, first_run=first_run)
