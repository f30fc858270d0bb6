"""A Jepsen "bank"-style workload: concurrent transfers never create, lose or overdraw budget.

Worker threads, each with its own `Database` (own engine, own connections), move random
amounts between a handful of categories in two months, and undo some of their own
transfers. Reader threads, also with their own connections, repeatedly read every
category's budget for both months in one transaction and check on every read that

- the budgets of a month sum to the sum of the base monthly budgets (transfers only move
  money, and a transfer is either fully visible or not at all), and
- no category's available amount is below zero (no transfer here allows an overdraw).

At the end, no worker may have hit an error it had to give up on (transient failures are
retried by `Database.run`; only "insufficient budget" refusals are expected), and the final
budgets must equal the base budgets plus exactly the transfers the workers saw succeed.
On PostgreSQL the traffic goes through PgBouncer in transaction mode, like Neon's pooler.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from budget_tracker.errors import InsufficientBudget
from budget_tracker.models import Category, Expense, User
from budget_tracker.services.transfers import (
    Balance,
    month_balances,
    transfer_budget,
    undo_transfer,
)
from budget_tracker.unit_of_work import Database
from tests.conftest import Backend

EMAIL = "bank@example.com"
MONTHS = (dt.date(2026, 3, 1), dt.date(2026, 4, 1))
BASE = {"Food": "400", "Rent": "250", "Fun": "120", "Travel": "60", "Gifts": "0"}
SPENT_IN_MARCH = {"Food": "75.50", "Fun": "100", "Travel": "60"}

# (workers, operations per worker, readers): thousands of transfers through PgBouncer; a
# smaller run on SQLite, where every writer waits for the one database-wide lock.
SIZES = {"postgresql": (8, 300, 2), "sqlite": (4, 100, 2)}


@dataclass
class Tally:
    """What the threads saw; checked by the main thread after they finish."""

    done: list[tuple[dt.date, str, str, Decimal]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    reads: int = 0
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def seed(backend: Backend) -> int:
    with backend.database.transaction() as session:
        user = User(email=EMAIL, name="bank")
        session.add(user)
        session.flush()
        categories = {
            name: Category(user_id=user.id, name=name, monthly_budget=Decimal(amount))
            for name, amount in BASE.items()
        }
        session.add_all(categories.values())
        session.flush()
        for name, amount in SPENT_IN_MARCH.items():
            session.add(
                Expense(
                    user_id=user.id,
                    category_id=categories[name].id,
                    amount=Decimal(amount),
                    spent_on=dt.date(2026, 3, 10),
                )
            )
        return user.id


def worker(backend: Backend, seed_value: int, operations: int, tally: Tally) -> None:
    rng = random.Random(seed_value)
    database = Database(backend.settings)
    mine: list[tuple[int, dt.date, str, str, Decimal]] = []  # undoable transfers
    names = list(BASE)

    def count_retry(_attempt: int, _exc: BaseException) -> None:
        with tally.lock:
            tally.retries += 1

    try:
        for _ in range(operations):
            key = uuid.uuid4().hex
            try:
                if mine and rng.random() < 0.1:
                    transfer_id, month, source, target, amount = mine.pop(rng.randrange(len(mine)))
                    database.run(
                        functools.partial(
                            undo_transfer,
                            user_email=EMAIL,
                            transfer_id=transfer_id,
                            idempotency_key=key,
                        ),
                        on_retry=count_retry,
                    )
                    move, kind = (month, target, source, amount), "undone"
                else:
                    source, target = rng.sample(names, 2)
                    month = rng.choice(MONTHS)
                    amount = Decimal(rng.randint(1, 10_000)) / 100
                    outcome = database.run(
                        functools.partial(
                            transfer_budget,
                            user_email=EMAIL,
                            source=source,
                            target=target,
                            amount=amount,
                            month=month,
                            idempotency_key=key,
                        ),
                        on_retry=count_retry,
                    )
                    mine.append((outcome.transfer.id, month, source, target, amount))
                    move, kind = (month, source, target, amount), "moved"
            except InsufficientBudget:
                with tally.lock:
                    tally.outcomes["refused"] += 1
                continue
            with tally.lock:
                tally.done.append(move)
                tally.outcomes[kind] += 1
    except Exception as exc:
        with tally.lock:
            tally.errors.append(f"worker {seed_value}: {type(exc).__name__}: {exc}")
    finally:
        database.close()


def check(balances: list[Balance], month: dt.date) -> list[str]:
    problems = []
    budgets = sum(balance.budget for balance in balances)
    bases = sum(balance.base for balance in balances)
    if budgets != bases:
        problems.append(f"{month:%Y-%m}: budgets sum to {budgets}, base budgets to {bases}")
    problems.extend(
        f"{month:%Y-%m}: {balance.category} has {balance.available} available"
        for balance in balances
        if balance.available < 0
    )
    return problems


def reader(backend: Backend, user_id: int, stop: threading.Event, tally: Tally) -> None:
    database = Database(backend.settings)
    try:
        while not stop.wait(0.002):  # a short pause leaves the workers most of the CPU
            snapshot = database.run(
                lambda session: [
                    (month, month_balances(session, user_id=user_id, month=month))
                    for month in MONTHS
                ],
                write=False,
            )
            problems = [problem for month, rows in snapshot for problem in check(rows, month)]
            with tally.lock:
                tally.reads += 1
                tally.violations.extend(problems)
    except Exception as exc:
        with tally.lock:
            tally.errors.append(f"reader: {type(exc).__name__}: {exc}")
    finally:
        database.close()


@pytest.mark.slow
def test_concurrent_transfers_keep_the_books_balanced(backend: Backend) -> None:
    workers, operations, readers = SIZES[backend.name]
    user_id = seed(backend)
    tally = Tally()
    stop = threading.Event()
    reader_threads = [
        threading.Thread(target=reader, args=(backend, user_id, stop, tally))
        for _ in range(readers)
    ]
    worker_threads = [
        threading.Thread(target=worker, args=(backend, index, operations, tally))
        for index in range(workers)
    ]
    try:
        for thread in reader_threads + worker_threads:
            thread.start()
        for thread in worker_threads:
            thread.join()
    finally:
        stop.set()
        for thread in reader_threads:
            thread.join()

    assert tally.errors == []
    assert tally.violations == []
    assert sum(tally.outcomes.values()) == workers * operations
    # The workload must really have exercised both paths and raced the readers.
    assert tally.outcomes["moved"] > workers * operations // 3
    assert tally.outcomes["undone"] > 0
    assert tally.outcomes["refused"] > 0
    assert tally.reads >= readers

    # Exactly the transfers the workers saw succeed are in the books: none lost or doubled.
    assert backend.scalar("SELECT count(*) FROM budget_transfers") == len(tally.done)
    expected = {month: {name: Decimal(base) for name, base in BASE.items()} for month in MONTHS}
    for month, source, target, amount in tally.done:
        expected[month][source] -= amount
        expected[month][target] += amount
    with backend.database.transaction(write=False) as session:
        for month in MONTHS:
            final = month_balances(session, user_id=user_id, month=month)
            assert {balance.category: balance.budget for balance in final} == expected[month]
            assert check(final, month) == []
    print(
        f"{backend.name}: {dict(tally.outcomes)}, {tally.reads} consistent reads, "
        f"{tally.retries} retried transactions"
    )
