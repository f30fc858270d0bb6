"""Budget transfers: moving part of one category's monthly budget to another, atomically.

A category's budget for a month is its base `monthly_budget` plus the transfers into it for
that month minus the transfers out of it; what is *available* is that budget minus what was
spent in the month. The ledger (`budget_transfers`) is append-only: an undo records the
opposite move and points at the entry it reverses.

Correctness under concurrency rests on one order of work inside the caller's transaction:

1. lock both category rows, always in id order (so two transfers between the same pair in
   opposite directions cannot deadlock) — `SELECT … FOR UPDATE` on PostgreSQL; on SQLite
   the caller's `BEGIN IMMEDIATE` already holds the database's write lock;
2. compute availability in a *separate* statement: under READ COMMITTED a new statement
   takes a new snapshot, so it sees every transfer committed by whoever held the lock
   before us (a snapshot taken by the locking statement itself would be stale);
3. insert the ledger row. The caller commits.

The lock is `FOR UPDATE` rather than `FOR NO KEY UPDATE` on purpose: inserting an expense
takes `FOR KEY SHARE` on its category (the foreign key check), which conflicts with
`FOR UPDATE`, so the availability check never races an expense being recorded.

Each statement is a round trip (milliseconds on Neon), so the acting user is resolved inside
the locking statement, and the idempotency check rides along in the availability query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, aliased

from budget_tracker.errors import Conflict, InsufficientBudget, InvalidInput, NotFound
from budget_tracker.models import (
    BudgetTransfer,
    Category,
    User,
    name_key,
    normalize_email,
)
from budget_tracker.money import format_amount
from budget_tracker.services.categories import month_span, spent_in, transfers_net, unknown_category
from budget_tracker.services.users import FirstRun, acting_user


@dataclass(frozen=True)
class Balance:
    """One category's budget for one month, after transfers, and what is left of it."""

    category_id: int
    category: str
    base: Decimal
    """The category's `monthly_budget`."""
    budget: Decimal
    """`base` plus transfers in, minus transfers out, for the month."""
    spent: Decimal

    @property
    def available(self) -> Decimal:
        return self.budget - self.spent


@dataclass(frozen=True)
class TransferRecord:
    """A ledger entry as users see it (category names, not ids)."""

    id: int
    month: dt.date
    amount: Decimal
    source: str
    target: str
    note: str
    created_at: dt.datetime
    reverses_id: int | None
    undone_by_id: int | None = None


@dataclass(frozen=True)
class TransferOutcome:
    """What a transfer (or an undo) recorded and both categories' balances afterwards."""

    transfer: TransferRecord
    source: Balance
    target: Balance
    replayed: bool
    """True when `idempotency_key` had already been committed (a retried command)."""
    first_run: FirstRun | None = None


def month_label(month: dt.date) -> str:
    return f"{month:%Y-%m}"


def transfer_budget(
    session: Session,
    *,
    user_email: str | None,
    source: str,
    target: str,
    amount: Decimal,
    month: dt.date,
    note: str = "",
    allow_overdraw: bool = False,
    idempotency_key: str | None = None,
) -> TransferOutcome:
    """Move `amount` of `source`'s budget for `month` to `target`.

    Refused (nothing written) when the categories are the same, either is unknown for the
    acting user, or `source` has less than `amount` available that month and
    `allow_overdraw` is false. A key that was already committed returns that transfer.
    """
    month = month.replace(day=1)
    _check_amount(amount)
    keys = [name_key(source), name_key(target)]
    if keys[0] == keys[1]:
        raise InvalidInput(
            f"cannot transfer from {source!r} to itself: --from and --to must be different "
            "categories"
        )
    first_run = None
    locked = _lock_categories(session, _user_filter(user_email), Category.name_key.in_(keys))
    if len(locked) < 2:
        # Rare path: find out why (no user yet, several users, an unknown category) with
        # the shared user rules, then lock again for the resolved user.
        user, first_run = acting_user(session, email=user_email)
        locked = _lock_categories(session, Category.user_id == user.id, Category.name_key.in_(keys))
        if len(locked) < 2:
            found = {category.name_key for category in locked}
            missing = source if keys[0] not in found else target
            raise unknown_category(session, user_id=user.id, name=missing)
    by_key = {category.name_key: category for category in locked}
    from_category, to_category = by_key[keys[0]], by_key[keys[1]]
    return _record(
        session,
        user_id=from_category.user_id,
        from_category=from_category,
        to_category=to_category,
        amount=amount,
        month=month,
        note=note,
        allow_overdraw=allow_overdraw,
        idempotency_key=idempotency_key,
        reverses=None,
        first_run=first_run,
    )


def undo_transfer(
    session: Session,
    *,
    user_email: str | None,
    transfer_id: int,
    allow_overdraw: bool = False,
    idempotency_key: str | None = None,
) -> TransferOutcome:
    """Record the opposite of transfer `transfer_id` (same month and amount).

    Refused when the transfer is unknown for the acting user, was already undone, or its
    target no longer has the amount available (unless `allow_overdraw`).
    """
    original = session.scalar(
        select(BudgetTransfer)
        .join(User, User.id == BudgetTransfer.user_id)
        .where(BudgetTransfer.id == transfer_id, _user_filter(user_email))
    )
    if original is None:
        acting_user(session, email=user_email)  # says so when the user is unknown or ambiguous
        raise NotFound(f"no transfer {transfer_id}: see `budget transfers`")
    locked = _lock_categories(
        session,
        Category.user_id == original.user_id,
        Category.id.in_([original.from_category_id, original.to_category_id]),
    )
    by_id = {category.id: category for category in locked}
    if len(by_id) < 2:
        # A category merge re-pointed or removed the entry between our read and the lock.
        raise Conflict(f"transfer {transfer_id} changed while it was being undone: try again")
    return _record(
        session,
        user_id=original.user_id,
        from_category=by_id[original.to_category_id],
        to_category=by_id[original.from_category_id],
        amount=original.amount,
        month=original.month,
        note=f"undo of transfer {original.id}",
        allow_overdraw=allow_overdraw,
        idempotency_key=idempotency_key,
        reverses=original,
        first_run=None,
    )


def month_balances(
    session: Session, *, user_id: int, month: dt.date, category_ids: Sequence[int] | None = None
) -> list[Balance]:
    """Every category's (or the given ones') budget, spending and availability for `month`.

    One statement, so a reader sees one consistent snapshot of all categories.
    """
    statement = _balances_statement(user_id=user_id, month=month, category_ids=category_ids)
    return [_balance(row) for row in session.execute(statement)]


def list_transfers(
    session: Session,
    *,
    user_email: str | None,
    month: dt.date | None = None,
    category: str | None = None,
) -> tuple[list[TransferRecord], FirstRun | None]:
    """The acting user's ledger, oldest first, optionally for one month and/or category."""
    user, first_run = acting_user(session, email=user_email)
    source, target, undo = aliased(Category), aliased(Category), aliased(BudgetTransfer)
    statement = (
        select(BudgetTransfer, source.name, target.name, undo.id)
        .join(source, source.id == BudgetTransfer.from_category_id)
        .join(target, target.id == BudgetTransfer.to_category_id)
        .outerjoin(undo, undo.reverses_id == BudgetTransfer.id)
        .where(BudgetTransfer.user_id == user.id)
        .order_by(BudgetTransfer.id)
    )
    if month is not None:
        statement = statement.where(BudgetTransfer.month == month.replace(day=1))
    if category is not None:
        category_id = session.scalar(
            select(Category.id).where(
                Category.user_id == user.id, Category.name_key == name_key(category)
            )
        )
        if category_id is None:
            raise unknown_category(session, user_id=user.id, name=category)
        statement = statement.where(
            (BudgetTransfer.from_category_id == category_id)
            | (BudgetTransfer.to_category_id == category_id)
        )
    records = [
        _record_of(transfer, source_name, target_name, undone_by)
        for transfer, source_name, target_name, undone_by in session.execute(statement)
    ]
    return records, first_run


# --- the steps -------------------------------------------------------------------------


def _check_amount(amount: Decimal) -> None:
    # The CLI's AMOUNT type already refuses these; the service must hold the rule too.
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise InvalidInput(f"{amount} is not a positive amount")
    if amount != amount.quantize(Decimal("0.01")):
        raise InvalidInput(f"{amount} has more than two decimal places")


def _user_filter(user_email: str | None) -> ColumnElement[bool]:
    """The acting user as a condition on `users`: the one named, else the only one."""
    if user_email:
        return User.email == normalize_email(user_email)
    return select(func.count()).select_from(User).scalar_subquery() == 1


def _lock_categories(session: Session, *conditions: ColumnElement[bool]) -> list[Category]:
    """Lock the matching categories in id order (FOR UPDATE; a no-op on SQLite)."""
    statement = (
        select(Category)
        .join(User, User.id == Category.user_id)
        .where(*conditions)
        .order_by(Category.id)
        .with_for_update(of=Category)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(statement))


def _record(
    session: Session,
    *,
    user_id: int,
    from_category: Category,
    to_category: Category,
    amount: Decimal,
    month: dt.date,
    note: str,
    allow_overdraw: bool,
    idempotency_key: str | None,
    reverses: BudgetTransfer | None,
    first_run: FirstRun | None,
) -> TransferOutcome:
    """Check availability (after the lock), then insert the ledger row."""
    statement = _balances_statement(
        user_id=user_id, month=month, category_ids=[from_category.id, to_category.id]
    )
    # Ride-along checks, so a transfer stays one availability query: was this command
    # already committed (a retry after a lost COMMIT acknowledgement), and for an undo,
    # has the original been undone already.
    if idempotency_key is not None:
        replay_of = select(BudgetTransfer.id).where(
            BudgetTransfer.user_id == user_id, BudgetTransfer.idempotency_key == idempotency_key
        )
        statement = statement.add_columns(replay_of.scalar_subquery().label("replay_of"))
    if reverses is not None:
        undone_by = select(BudgetTransfer.id).where(BudgetTransfer.reverses_id == reverses.id)
        statement = statement.add_columns(undone_by.scalar_subquery().label("undone_by"))
    rows = session.execute(statement).all()
    balances = {row.category_id: _balance(row) for row in rows}
    replayed_id: int | None = rows[0].replay_of if idempotency_key is not None else None
    already_undone: int | None = rows[0].undone_by if reverses is not None else None
    before_source, before_target = balances[from_category.id], balances[to_category.id]

    if replayed_id is not None:
        existing = session.get_one(BudgetTransfer, replayed_id)
        return TransferOutcome(
            transfer=_record_of(existing, from_category.name, to_category.name, None),
            source=before_source,
            target=before_target,
            replayed=True,
            first_run=first_run,
        )
    if reverses is not None and already_undone is not None:
        raise Conflict(f"transfer {reverses.id} was already undone by transfer {already_undone}")
    if before_source.available < amount and not allow_overdraw:
        raise InsufficientBudget(
            f"{from_category.name} has only {format_amount(before_source.available)} available "
            f"for {month_label(month)}; cannot move {format_amount(amount)} "
            "(--allow-overdraw moves it anyway)"
        )
    transfer = BudgetTransfer(
        user_id=user_id,
        from_category_id=from_category.id,
        to_category_id=to_category.id,
        amount=amount,
        month=month,
        note=note,
        reverses_id=reverses.id if reverses else None,
        idempotency_key=idempotency_key,
    )
    session.add(transfer)
    session.flush()
    return TransferOutcome(
        transfer=_record_of(transfer, from_category.name, to_category.name, None),
        source=_moved(before_source, -amount),
        target=_moved(before_target, amount),
        replayed=False,
        first_run=first_run,
    )


def _balances_statement(
    *, user_id: int, month: dt.date, category_ids: Sequence[int] | None
) -> Select[*tuple[Any, ...]]:
    """Per category: base budget, net transfers and spending for `month` (the shared SQL)."""
    start, end = month_span(month)
    statement: Select[*tuple[Any, ...]] = (
        select(
            Category.id.label("category_id"),
            Category.name.label("category"),
            Category.monthly_budget.label("base"),
            transfers_net(Category.id, start).label("transfers"),
            spent_in(Category.id, start, end).label("spent"),
        )
        .where(Category.user_id == user_id)
        .order_by(Category.id)
    )
    if category_ids is not None:
        statement = statement.where(Category.id.in_(list(category_ids)))
    return statement


def _balance(row: Any) -> Balance:
    return Balance(
        category_id=row.category_id,
        category=row.category,
        base=row.base,
        budget=row.base + row.transfers,
        spent=row.spent,
    )


def _moved(balance: Balance, delta: Decimal) -> Balance:
    return Balance(
        category_id=balance.category_id,
        category=balance.category,
        base=balance.base,
        budget=balance.budget + delta,
        spent=balance.spent,
    )


def _record_of(
    transfer: BudgetTransfer, source: str, target: str, undone_by_id: int | None
) -> TransferRecord:
    return TransferRecord(
        id=transfer.id,
        month=transfer.month,
        amount=transfer.amount,
        source=source,
        target=target,
        note=transfer.note,
        created_at=transfer.created_at,
        reverses_id=transfer.reverses_id,
        undone_by_id=undone_by_id,
    )
