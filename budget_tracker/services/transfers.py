"""Budget transfers: moving part of one category's monthly budget to another, atomically.

A category's budget for a month is its monthly budget for that month (`services.budgets`,
its budget history applied) plus the transfers into it for
that month minus the transfers out of it; what is *available* is that budget plus what was
carried into the month (rollover) minus what was spent in the month, so a transfer may
move carried money. The ledger (`budget_transfers`) is append-only: an undo records the
opposite move and points at the entry it reverses.

Correctness under concurrency rests on one order of work inside the caller's transaction:

1. lock both category rows, always in id order (so two transfers between the same pair in
   opposite directions cannot deadlock) — `SELECT … FOR UPDATE` on PostgreSQL; on SQLite
   the caller's `BEGIN IMMEDIATE` already holds the database's write lock;
2. insert the ledger row with a *guarded* `INSERT … SELECT … WHERE <available> >= amount`:
   a statement after the lock, so under READ COMMITTED it takes a new snapshot and sees
   every transfer committed by whoever held the lock before us (a snapshot taken by the
   locking statement itself would be stale). Its RETURNING clause reports both categories'
   transfers and spending before the new row, from the same snapshot. The caller commits.

The lock is `FOR UPDATE` rather than `FOR NO KEY UPDATE` on purpose: inserting an expense
takes `FOR KEY SHARE` on its category (the foreign key check), which conflicts with
`FOR UPDATE`, so the availability check never races an expense being recorded.

Each statement is a round trip (milliseconds on Neon), and the locks are held from the
first statement to COMMIT, so a transfer is two statements between BEGIN and COMMIT: the
acting user is resolved inside the locking statement, and the idempotency and "already
undone" checks ride along in the insert's guard. When the guard refuses (no row), one more
query finds out why, for the message; only refusals pay for it. Both statements are built
once and executed as Core statements (no ORM unit of work), because with several clients
the Python time between the lock and COMMIT is time every other transfer of those
categories waits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Insert,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from budget_tracker import rules
from budget_tracker.errors import (
    Conflict,
    InsufficientBudget,
    InvalidInput,
    UnknownTransfer,
    option,
)
from budget_tracker.models import (
    BudgetTransfer,
    Category,
    Money,
    User,
    entering_user,
    name_key,
    normalize_email,
)
from budget_tracker.outcomes import outcome_in_rows
from budget_tracker.services.budgets import ZERO, Figures, add_months, month_span, month_start
from budget_tracker.services.categories import (
    budget_in,
    carried_in,
    rollover_run_start,
    spent_in,
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
from budget_tracker.unit_of_work import unit_key


@dataclass(frozen=True)
class Balance:
    """One category's budget for one month, after transfers, and what is available."""

    category_id: int
    category: str
    base: Decimal
    """The category's monthly budget for the month (its budget history applied)."""
    budget: Decimal
    """`base` plus transfers in, minus transfers out, for the month."""
    spent: Decimal
    carried: Decimal = ZERO
    """Carried into the month (rollover)."""

    @property
    def available(self) -> Decimal:
        """The one rule (`budgets.Figures.available`): budget + carried − spent."""
        return Figures(budget=self.budget, spent=self.spent, carried=self.carried).available


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
    entered_by_id: int
    """The user who entered it (see `Expense.entered_by`)."""
    entered_by: str | None
    """Their e-mail; None for a user this connection may not see (a former member)."""
    undone_by_id: int | None = None


@dataclass(frozen=True)
class TransferListing:
    """The acting user's ledger entries, oldest first."""

    rows: list[TransferRecord]
    first_run: FirstRun | None
    user_id: int
    """The budget's own user (0 on an empty database)."""


@dataclass(frozen=True)
class TransferOutcome:
    """What a transfer (or an undo) recorded and both categories' balances afterwards."""

    transfer: TransferRecord
    source: Balance
    target: Balance
    replayed: bool
    """True when `idempotency_key` had already been committed (a retried command)."""
    first_run: FirstRun | None = None


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
    month = rules.check_month(month)
    amount = rules.check_amount(amount)
    note = rules.check_description(note, field="note")
    keys = [name_key(source), name_key(target)]
    if keys[0] == keys[1]:
        raise InvalidInput(
            f"cannot transfer from {source!r} to itself: "
            + option("source")
            + " and "
            + option("target")
            + " must be different categories"
        )
    first_run = None
    # Build the insert's expression tree now, before any row lock is held: in a one-shot
    # process that is the first transfer, and the locks are held until COMMIT.
    _guarded_insert()
    if user_email:
        email = normalize_email(user_email)
        locked = _lock(session, _lock_statement("email"), keys=keys, email=email)
    else:
        locked = _lock(session, _lock_statement("only user"), keys=keys)
    if len(locked) < 2:
        # Rare path: find out why (no user yet, several users, an unknown category) with
        # the shared user rules, then lock again for the resolved user.
        acting = acting_user(session, user_email=user_email)
        user, first_run = acting.user, acting.first_run
        locked = _lock(session, _lock_statement("user id"), keys=keys, user_id=user.id)
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
        reverses_id=None,
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
    rules.check_id(transfer_id, field="transfer id")
    original = session.scalar(
        select(BudgetTransfer)
        .join(User, User.id == BudgetTransfer.user_id)
        .where(BudgetTransfer.id == transfer_id, _user_filter(user_email))
    )
    if original is None:
        find_acting_user(session, user_email=user_email)  # refuses an unknown or ambiguous user
        raise UnknownTransfer(transfer_id)
    _guarded_insert()  # built before the locks are taken (see transfer_budget)
    locked = _lock(
        session,
        _lock_statement("ids"),
        user_id=original.user_id,
        ids=(original.from_category_id, original.to_category_id),
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
        reverses_id=original.id,
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
    entered_by: str | None = None,
) -> TransferListing:
    """The acting user's ledger, oldest first, optionally for one month and/or category,
    and/or entered by the user with the e-mail `entered_by`."""
    user, first_run = find_acting_user(session, user_email=user_email), None
    source, target, undo = aliased(Category), aliased(Category), aliased(BudgetTransfer)
    statement = (
        with_entered_by(
            select(BudgetTransfer, source.name, target.name, undo.id)
            .join(source, source.id == BudgetTransfer.from_category_id)
            .join(target, target.id == BudgetTransfer.to_category_id)
            .outerjoin(undo, undo.reverses_id == BudgetTransfer.id),
            BudgetTransfer,
        )
        .where(BudgetTransfer.user_id == user.id)
        .order_by(BudgetTransfer.id)
    )
    if month is not None:
        statement = statement.where(BudgetTransfer.month == month_start(month))
    if entered_by is not None:
        statement = statement.where(entered_by_condition(BudgetTransfer, entered_by))
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
        _record_of(transfer, source_name, target_name, undone_by, person, email)
        for transfer, source_name, target_name, undone_by, person, email in session.execute(
            statement
        )
    ]
    if not records and entered_by is not None:
        check_person(session, email=entered_by)
    return TransferListing(rows=records, first_run=first_run, user_id=user.id)


# --- the steps -------------------------------------------------------------------------


def _user_filter(user_email: str | None) -> ColumnElement[bool]:
    """The acting user as a condition on `users`: the one named, else the default one."""
    if user_email:
        return User.email == normalize_email(user_email)
    return default_user_condition()


# The statements of the hot path are built once per process and bound per call:
# SQLAlchemy caches their compiled form, so a transfer builds no expression trees.


class _Locked(NamedTuple):
    """A locked category row."""

    id: int
    user_id: int
    name: str
    name_key: str


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


@cache
def _lock_statement(by: str) -> Select[*tuple[Any, ...]]:
    """Lock the acting user's categories named :key_a/:key_b (or :id_a/:id_b) in id order.

    `by` says how the user is known: "email" (:email), "only user" (the default user,
    see `default_user_condition`), "user id" (:user_id) or "ids" (:user_id, categories
    by id, for undo). FOR UPDATE is a no-op on SQLite, where BEGIN IMMEDIATE already
    holds the write lock.
    """
    categories, users = _table(Category), _table(User)
    wanted: ColumnElement[bool] = categories.c.name_key.in_(
        [bindparam("key_a", type_=String), bindparam("key_b", type_=String)]
    )
    user: ColumnElement[bool]
    if by == "email":
        user = users.c.email == bindparam("email", type_=String)
    elif by == "only user":
        user = default_user_condition(users)
    elif by in ("user id", "ids"):
        user = categories.c.user_id == bindparam("user_id", type_=Integer)
        if by == "ids":
            wanted = categories.c.id.in_(
                [bindparam("id_a", type_=Integer), bindparam("id_b", type_=Integer)]
            )
    else:
        raise ValueError(by)
    return (
        select(
            categories.c.id,
            categories.c.user_id,
            categories.c.name,
            categories.c.name_key,
        )
        .join(users, users.c.id == categories.c.user_id)
        .where(user, wanted)
        .order_by(categories.c.id)
        .with_for_update(of=categories)
    )


def _lock(
    session: Session,
    statement: Select[*tuple[Any, ...]],
    *,
    keys: list[str] | None = None,
    ids: tuple[int, int] | None = None,
    **params: Any,
) -> list[_Locked]:
    if keys is not None:
        params.update(key_a=keys[0], key_b=keys[1])
    if ids is not None:
        params.update(id_a=ids[0], id_b=ids[1])
    return [_Locked(*row) for row in session.connection().execute(statement, params)]


@cache
def _guarded_insert() -> Insert:
    """INSERT the ledger row only if the source has the amount available (after the lock).

    The CTE `prior` holds both categories' transfers and spending for the month *before*
    this row (`except_key` leaves the new row out, so it reads the same whether a backend
    evaluates it before or after the insert); the guard and RETURNING both read it, so
    each sum is computed once. It also holds who enters the row (`entering_user`) and
    their e-mail, inserted and returned from there. The guard also refuses when the
    idempotency key was already committed (a retry after a lost COMMIT acknowledgement)
    or the transfer being undone was already undone; the caller then asks why.
    """
    ledger = _table(BudgetTransfer)
    earlier = aliased(BudgetTransfer)
    from_id, to_id = bindparam("from_id", type_=Integer), bindparam("to_id", type_=Integer)
    month = bindparam("month", type_=Date)
    start, end = bindparam("start", type_=Date), bindparam("end", type_=Date)
    before = bindparam("before", type_=Date)  # the month before: carried out of it
    amount = bindparam("amount", type_=Money)
    key = bindparam("key", type_=String)
    user_id = bindparam("user_id", type_=Integer)
    reverses_id = bindparam("reverses_id", type_=Integer)
    categories = _table(Category)

    # Both categories' figures come from one row per category, so each figure's SQL is
    # written (planned and, with row-level security, given its policies) once, not once
    # per category. `fixed` holds what a figure refers to several times: the opening
    # budget and the start of the rollover run (`carried_in` refers to it seven times).
    # Read here, in a statement after the lock, not by the locking statement: a subquery
    # of a SELECT … FOR UPDATE keeps the snapshot from before its wait.
    sides = union_all(
        select(literal("from").label("side"), from_id.label("category_id")),
        select(literal("to").label("side"), to_id.label("category_id")),
    ).subquery("sides")
    fixed = (
        select(
            sides.c.side,
            sides.c.category_id,
            select(categories.c.monthly_budget)
            .where(categories.c.id == sides.c.category_id)
            .scalar_subquery()
            .label("opening"),
            rollover_run_start(sides.c.category_id, before).label("start"),
        )
        .cte("fixed")
        .prefix_with("MATERIALIZED")
    )
    category = fixed.c.category_id
    figures = (
        select(
            fixed.c.side,
            budget_in(category, fixed.c.opening, month).label("base"),
            transfers_net(category, month, except_key=key).label("transfers"),
            spent_in(category, start, end).label("spent"),
            carried_in(category, fixed.c.opening, before, start=fixed.c.start).label("carried"),
        )
        .cte("figures")
        .prefix_with("MATERIALIZED")
    )
    prior = (
        select(
            *(
                func.max(case((figures.c.side == side, figures.c[name]))).label(f"{side}_{name}")
                for side in ("from", "to")
                for name in ("base", "transfers", "spent", "carried")
            ),
            entering_user(user_id).label("entered_by_id"),
            person_email(entering_user(user_id)).label("entered_by"),
        )
        .select_from(figures)
        .cte("prior")
        .prefix_with("MATERIALIZED")  # computed once, not once per reference
    )
    available = (
        prior.c.from_base + prior.c.from_transfers + prior.c.from_carried - prior.c.from_spent
    )
    row = (
        select(
            user_id,
            from_id,
            to_id,
            amount,
            month,
            bindparam("note", type_=String),
            reverses_id,
            key,
            prior.c.entered_by_id,
        )
        .select_from(prior)
        .where(
            or_(bindparam("allow_overdraw", type_=Boolean), available >= amount),
            ~exists().where(earlier.user_id == user_id, earlier.idempotency_key == key),
            ~exists().where(earlier.reverses_id == reverses_id),
        )
    )
    columns = ["user_id", "from_category_id", "to_category_id", "amount", "month", "note"]
    return (
        insert(ledger)
        .add_cte(fixed)
        .add_cte(figures)
        .add_cte(prior)
        .from_select([*columns, "reverses_id", "idempotency_key", "entered_by"], row)
        .returning(
            ledger.c.id,
            ledger.c.created_at,
            *(select(column).scalar_subquery().label(column.name) for column in prior.c),
        )
    )


def _record(
    session: Session,
    *,
    user_id: int,
    from_category: _Locked,
    to_category: _Locked,
    amount: Decimal,
    month: dt.date,
    note: str,
    allow_overdraw: bool,
    idempotency_key: str | None,
    reverses_id: int | None,
    first_run: FirstRun | None,
) -> TransferOutcome:
    """Insert the ledger row if the guard allows it; otherwise say why not."""
    # Without a key from the caller, the unit of work's own key (the same on every retry)
    # still lets a retry after a lost COMMIT acknowledgement find the row.
    key = idempotency_key if idempotency_key is not None else unit_key(session)
    if first_run is None:
        # The keyed ledger row tells a retry what happened: no outcome row needed.
        outcome_in_rows(session)
    start, end = month_span(month)
    inserted = (
        session.connection()
        .execute(
            _guarded_insert(),
            {
                "user_id": user_id,
                "from_id": from_category.id,
                "to_id": to_category.id,
                "amount": amount,
                "month": month,
                "start": start,
                "end": end,
                "before": add_months(month, -1),
                "note": note,
                "reverses_id": reverses_id,
                "key": key,
                "allow_overdraw": allow_overdraw,
            },
        )
        .one_or_none()
    )
    if inserted is None:
        return _refused(
            session,
            user_id=user_id,
            from_category=from_category,
            to_category=to_category,
            amount=amount,
            month=month,
            key=key,
            reverses_id=reverses_id,
            first_run=first_run,
        )
    record = TransferRecord(
        id=inserted.id,
        month=month,
        amount=amount,
        source=from_category.name,
        target=to_category.name,
        note=note,
        created_at=inserted.created_at,
        reverses_id=reverses_id,
        entered_by_id=inserted.entered_by_id,
        entered_by=inserted.entered_by,
    )
    source = _before(
        from_category,
        inserted.from_base,
        inserted.from_transfers,
        inserted.from_spent,
        inserted.from_carried,
    )
    target = _before(
        to_category,
        inserted.to_base,
        inserted.to_transfers,
        inserted.to_spent,
        inserted.to_carried,
    )
    return TransferOutcome(
        transfer=record,
        source=_moved(source, -amount),
        target=_moved(target, amount),
        replayed=False,
        first_run=first_run,
    )


def _before(
    category: _Locked, base: Decimal, transfers: Decimal, spent: Decimal, carried: Decimal
) -> Balance:
    return Balance(
        category_id=category.id,
        category=category.name,
        base=base,
        budget=base + transfers,
        spent=spent,
        carried=carried,
    )


def _refused(
    session: Session,
    *,
    user_id: int,
    from_category: _Locked,
    to_category: _Locked,
    amount: Decimal,
    month: dt.date,
    key: str,
    reverses_id: int | None,
    first_run: FirstRun | None,
) -> TransferOutcome:
    """Why the guarded insert wrote nothing: a replay, an undone original, or no budget.

    We still hold both locks, so this reads the state the guard saw.
    """
    replay_of = select(BudgetTransfer.id).where(
        BudgetTransfer.user_id == user_id, BudgetTransfer.idempotency_key == key
    )
    statement = _balances_statement(
        user_id=user_id, month=month, category_ids=[from_category.id, to_category.id]
    ).add_columns(replay_of.scalar_subquery().label("replay_of"))
    if reverses_id is not None:
        undone_by = select(BudgetTransfer.id).where(BudgetTransfer.reverses_id == reverses_id)
        statement = statement.add_columns(undone_by.scalar_subquery().label("undone_by"))
    rows = session.execute(statement).all()
    balances = {row.category_id: _balance(row) for row in rows}
    source, target = balances[from_category.id], balances[to_category.id]
    replayed_id: int | None = rows[0].replay_of
    if replayed_id is not None:
        existing, person, email = session.execute(
            with_entered_by(select(BudgetTransfer), BudgetTransfer).where(
                BudgetTransfer.id == replayed_id
            )
        ).one()
        return TransferOutcome(
            transfer=_record_of(
                existing, from_category.name, to_category.name, None, person, email
            ),
            source=source,
            target=target,
            replayed=True,
            first_run=first_run,
        )
    already_undone: int | None = rows[0].undone_by if reverses_id is not None else None
    if already_undone is not None:
        raise Conflict(f"transfer {reverses_id} was already undone by transfer {already_undone}")
    if source.available < amount:
        raise InsufficientBudget(from_category.name, source.available, amount, month)
    # Unreachable while the locks hold; refuse rather than guess.
    raise Conflict("the transfer was refused for a reason that changed while checking: try again")


def _balances_statement(
    *, user_id: int, month: dt.date, category_ids: Sequence[int] | None
) -> Select[*tuple[Any, ...]]:
    """Per category: base budget, net transfers and spending for `month` (the shared SQL)."""
    start, end = month_span(month)
    statement: Select[*tuple[Any, ...]] = (
        select(
            Category.id.label("category_id"),
            Category.name.label("category"),
            budget_in(Category.id, Category.monthly_budget, start).label("base"),
            transfers_net(Category.id, start).label("transfers"),
            spent_in(Category.id, start, end).label("spent"),
            carried_in(Category.id, Category.monthly_budget, add_months(start, -1)).label(
                "carried"
            ),
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
        carried=row.carried,
    )


def _moved(balance: Balance, delta: Decimal) -> Balance:
    return Balance(
        category_id=balance.category_id,
        category=balance.category,
        base=balance.base,
        budget=balance.budget + delta,
        spent=balance.spent,
        carried=balance.carried,
    )


def _record_of(
    transfer: BudgetTransfer,
    source: str,
    target: str,
    undone_by_id: int | None,
    entered_by_id: int,
    entered_by: str | None,
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
        entered_by_id=entered_by_id,
        entered_by=entered_by,
        undone_by_id=undone_by_id,
    )
