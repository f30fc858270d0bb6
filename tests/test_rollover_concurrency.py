"""Rollover under concurrency, on PostgreSQL through PgBouncer (transaction mode).

- Writers adding expenses into the same category and month at once: the per-month sum
  the triggers keep stays exactly the sum of the expenses (no lost update).
- Transfers out of money that was carried in, raced from many connections: the funds
  check under the category locks never lets them move more than was carried.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import uuid
from decimal import Decimal

import pytest

from budget_tracker.errors import InsufficientBudget
from budget_tracker.models import Category, CategoryRollover, User
from budget_tracker.services.expenses import add_expense
from budget_tracker.services.transfers import month_balances, transfer_budget
from budget_tracker.unit_of_work import Database
from tests.cli_helpers import kept_sums_match_expenses
from tests.conftest import Backend

EMAIL = "carry@example.com"
MARCH, APRIL = dt.date(2026, 3, 1), dt.date(2026, 4, 1)


def seed(backend: Backend) -> int:
    """Fun: 100 in March only (a one-month budget), rolling over from March; Food: none."""
    from budget_tracker.models import CategoryBudget

    with backend.database.transaction() as session:
        user = User(email=EMAIL, name="carry")
        session.add(user)
        session.flush()
        fun = Category(user_id=user.id, name="Fun", monthly_budget=Decimal(0))
        food = Category(user_id=user.id, name="Food", monthly_budget=Decimal(0))
        session.add_all([fun, food])
        session.flush()
        session.add_all(
            [
                CategoryBudget(
                    user_id=user.id,
                    category_id=fun.id,
                    month=MARCH,
                    amount=Decimal(100),
                    one_month=True,
                ),
                CategoryRollover(user_id=user.id, category_id=fun.id, month=MARCH, enabled=True),
            ]
        )
        return user.id


def run_threads(count: int, target: object, *args: object) -> list[str]:
    errors: list[str] = []
    lock = threading.Lock()

    def guarded(index: int) -> None:
        try:
            target(index, *args)  # type: ignore[operator]
        except Exception as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=guarded, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_concurrent_expenses_keep_the_month_sum_exact(backend: Backend) -> None:
    seed(backend)
    per_worker = 40

    def add(index: int) -> None:
        database = Database(backend.settings)
        try:
            for number in range(per_worker):
                database.run(
                    functools.partial(
                        add_expense,
                        user_email=EMAIL,
                        category="Fun" if number % 3 else "Food",
                        amount=Decimal(index * 100 + number + 1) / 100,
                        spent_on=MARCH + dt.timedelta(days=number % 2),
                        description="",
                        idempotency_key=uuid.uuid4().hex,
                    )
                )
        finally:
            database.close()

    assert run_threads(8, add) == []
    assert backend.scalar("SELECT count(*) FROM expenses") == 8 * per_worker
    kept_sums_match_expenses(backend)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_concurrent_transfers_cannot_move_more_than_was_carried(backend: Backend) -> None:
    user_id = seed(backend)
    moved: list[Decimal] = []
    refused: list[Decimal] = []
    lock = threading.Lock()

    def move(index: int) -> None:
        database = Database(backend.settings)
        try:
            for number in range(10):
                amount = Decimal(7 + (index * 10 + number) % 5)
                try:
                    database.run(
                        functools.partial(
                            transfer_budget,
                            user_email=EMAIL,
                            source="Fun",
                            target="Food",
                            amount=amount,
                            month=APRIL,
                            idempotency_key=uuid.uuid4().hex,
                        )
                    )
                except InsufficientBudget:
                    with lock:
                        refused.append(amount)
                    continue
                with lock:
                    moved.append(amount)
        finally:
            database.close()

    assert run_threads(8, move) == []
    # April has no budget of its own: only the 100 carried from March could move.
    assert refused, "the workload must reach the limit"
    assert sum(moved) <= 100
    with backend.database.transaction(write=False) as session:
        balances = {
            balance.category: balance
            for balance in month_balances(session, user_id=user_id, month=APRIL)
        }
    fun = balances["Fun"]
    assert (fun.carried, fun.budget) == (Decimal(100), -sum(moved))
    assert fun.available == 100 - sum(moved) >= 0
    assert min(refused) > fun.available
