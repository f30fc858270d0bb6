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

The two-person version runs the same workload in one shared budget as two people, each
with their own PostgreSQL role (row-level security applies to both), who also record
expenses meanwhile: every read still balances, as each person sees it, and every expense
and transfer is in the books exactly once, recorded as entered by whoever entered it.
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
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from budget_tracker.config import Settings, load_settings
from budget_tracker.errors import InsufficientBudget
from budget_tracker.models import BudgetTransfer, Category, Expense, User
from budget_tracker.services.expenses import add_expense
from budget_tracker.services.transfers import (
    Balance,
    month_balances,
    transfer_budget,
    undo_transfer,
)
from budget_tracker.unit_of_work import Database
from tests.conftest import (
    PERSON_ROLES,
    PG_DIRECT,
    Backend,
    create_pg_database,
    drop_pg_database,
    pg_env,
    pg_url,
    role_env,
)

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
    spent: list[tuple[int, dt.date, str, Decimal]] = field(default_factory=list)
    """Expenses the workers saw recorded: (id, month, category, amount)."""
    reads: int = 0
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def seed(backend: Backend) -> int:
    with backend.database.transaction() as session:
        user = User(email=EMAIL, name="bank")
        session.add(user)
        session.flush()
        seed_categories(session, user.id)
        return user.id


def seed_categories(session: Session, user_id: int) -> None:
    """The bank's categories with their base budgets, and March's spending."""
    categories = {
        name: Category(user_id=user_id, name=name, monthly_budget=Decimal(amount))
        for name, amount in BASE.items()
    }
    session.add_all(categories.values())
    session.flush()
    for name, amount in SPENT_IN_MARCH.items():
        session.add(
            Expense(
                user_id=user_id,
                category_id=categories[name].id,
                amount=Decimal(amount),
                spent_on=dt.date(2026, 3, 10),
            )
        )


def worker(
    settings: Settings,
    seed_value: int,
    operations: int,
    tally: Tally,
    *,
    email: str = EMAIL,
    expenses: bool = False,
) -> None:
    """Transfers and undoes in `email`'s budget; with `expenses`, also records expenses."""
    rng = random.Random(seed_value)
    database = Database(settings)
    mine: list[tuple[int, dt.date, str, str, Decimal]] = []  # undoable transfers
    names = list(BASE)

    def count_retry(_attempt: int, _exc: BaseException) -> None:
        with tally.lock:
            tally.retries += 1

    try:
        for _ in range(operations):
            key = uuid.uuid4().hex
            try:
                if expenses and rng.random() < 0.3:
                    category, month = rng.choice(names), rng.choice(MONTHS)
                    amount = Decimal(rng.randint(1, 2_000)) / 100
                    added = database.run(
                        functools.partial(
                            add_expense,
                            user_email=email,
                            category=category,
                            amount=amount,
                            spent_on=month.replace(day=rng.randint(1, 28)),
                            description=f"worker {seed_value}",
                            idempotency_key=key,
                        ),
                        on_retry=count_retry,
                    )
                    with tally.lock:
                        tally.spent.append((added.expense.id, month, category, amount))
                        tally.outcomes["spent"] += 1
                    continue
                if mine and rng.random() < 0.1:
                    transfer_id, month, source, target, amount = mine.pop(rng.randrange(len(mine)))
                    database.run(
                        functools.partial(
                            undo_transfer,
                            user_email=email,
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
                            user_email=email,
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


def check(balances: list[Balance], month: dt.date, *, spending: bool = False) -> list[str]:
    """What is wrong with one month's balances. With `spending` (expenses recorded while
    budget moves), an expense may leave a category overspent, but no transfer overdraws
    one: a budget never goes below zero."""
    problems = []
    budgets = sum(balance.budget for balance in balances)
    bases = sum(balance.base for balance in balances)
    if budgets != bases:
        problems.append(f"{month:%Y-%m}: budgets sum to {budgets}, base budgets to {bases}")
    problems.extend(
        f"{month:%Y-%m}: {balance.category} has {balance.available} available"
        for balance in balances
        if not spending and balance.available < 0
    )
    problems.extend(
        f"{month:%Y-%m}: {balance.category} has a budget of {balance.budget}"
        for balance in balances
        if balance.budget < 0
    )
    return problems


def reader(
    settings: Settings,
    user_id: int,
    stop: threading.Event,
    tally: Tally,
    *,
    spending: bool = False,
) -> None:
    database = Database(settings)
    try:
        while not stop.wait(0.002):  # a short pause leaves the workers most of the CPU
            snapshot = database.run(
                lambda session: [
                    (month, month_balances(session, user_id=user_id, month=month))
                    for month in MONTHS
                ],
                write=False,
            )
            problems = [
                problem
                for month, rows in snapshot
                for problem in check(rows, month, spending=spending)
            ]
            with tally.lock:
                tally.reads += 1
                tally.violations.extend(problems)
    except Exception as exc:
        with tally.lock:
            tally.errors.append(f"reader: {type(exc).__name__}: {exc}")
    finally:
        database.close()


@pytest.mark.slow
def race(
    readers: list[threading.Thread], workers: list[threading.Thread], stop: threading.Event
) -> None:
    """Start everyone at once, wait for the workers, then stop the readers."""
    try:
        for thread in readers + workers:
            thread.start()
        for thread in workers:
            thread.join()
    finally:
        stop.set()
        for thread in readers:
            thread.join()


def test_concurrent_transfers_keep_the_books_balanced(backend: Backend) -> None:
    workers, operations, readers = SIZES[backend.name]
    user_id = seed(backend)
    tally = Tally()
    stop = threading.Event()
    reader_threads = [
        threading.Thread(target=reader, args=(backend.settings, user_id, stop, tally))
        for _ in range(readers)
    ]
    worker_threads = [
        threading.Thread(target=worker, args=(backend.settings, index, operations, tally))
        for index in range(workers)
    ]
    race(reader_threads, worker_threads, stop)

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


@pytest.mark.slow
@pytest.mark.xdist_group("roles")  # roles are shared by the whole server
def test_two_people_in_one_shared_budget_keep_the_books_balanced(pg_server: None) -> None:
    """Alice's and Bob's roles (row-level security applies to both) record expenses and
    move budget in Alice's budget, shared with Bob, at the same time, through PgBouncer."""
    from budget_tracker.cli import main
    from budget_tracker.migrate import upgrade

    workers_per_person, operations = 2, 120
    name = create_pg_database("budget_bank_roles")
    owner = Database(load_settings(pg_env(name)))
    try:
        upgrade(pg_url(PG_DIRECT, name))
        people = {"alice@example.com": PERSON_ROLES[0], "bob@example.com": PERSON_ROLES[1]}
        runner = CliRunner()
        for email, role in people.items():
            for args in (
                ["db", "grant", role],
                ["user", "add", email, "--name", role, "--role", role],
            ):
                result = runner.invoke(main, args, env=pg_env(name))
                assert result.exit_code == 0, result.output
        shared = runner.invoke(
            main, ["share", "bob@example.com"], env=role_env(name, people["alice@example.com"])
        )
        assert shared.exit_code == 0, shared.output
        with owner.transaction() as session:
            alice = session.scalars(select(User).where(User.email == "alice@example.com")).one()
            seed_categories(session, alice.id)
            budget_id = alice.id
        settings = {email: load_settings(role_env(name, role)) for email, role in people.items()}
        tally = Tally()
        stop = threading.Event()
        reader_threads = [
            threading.Thread(
                target=reader, args=(each, budget_id, stop, tally), kwargs={"spending": True}
            )
            for each in settings.values()
        ]
        worker_threads = [
            threading.Thread(
                target=worker,
                args=(each, index * 10 + n, operations, tally),
                kwargs={"email": "alice@example.com", "expenses": True},
                name=email,
            )
            for index, (email, each) in enumerate(settings.items())
            for n in range(workers_per_person)
        ]
        race(reader_threads, worker_threads, stop)

        assert tally.errors == []
        assert tally.violations == []
        total = 2 * workers_per_person * operations
        assert sum(tally.outcomes.values()) == total
        assert tally.outcomes["moved"] > total // 4 and tally.outcomes["spent"] > total // 10
        assert tally.outcomes["undone"] > 0
        assert tally.reads >= 2

        # Exactly what the workers saw succeed is in the books, for both people to see.
        expected = {month: {n: Decimal(base) for n, base in BASE.items()} for month in MONTHS}
        for month, source, target, amount in tally.done:
            expected[month][source] -= amount
            expected[month][target] += amount
        spent = {month: dict.fromkeys(BASE, Decimal(0)) for month in MONTHS}
        for category_name, march in SPENT_IN_MARCH.items():
            spent[MONTHS[0]][category_name] += Decimal(march)
        for _, month, category, amount in tally.spent:
            spent[month][category] += amount
        for each in settings.values():
            database = Database(each)
            try:
                with database.transaction(write=False) as session:
                    for month in MONTHS:
                        final = month_balances(session, user_id=budget_id, month=month)
                        assert {b.category: b.budget for b in final} == expected[month]
                        assert {b.category: b.spent for b in final} == spent[month]
                        assert check(final, month, spending=True) == []
            finally:
                database.close()
        with owner.transaction(write=False) as session:
            transfers = session.scalar(select(func.count()).select_from(BudgetTransfer))
            assert transfers == len(tally.done)
            # Each expense and transfer records the person whose role entered it.
            rows = session.execute(
                select(User.email, func.count())
                .join(Expense, Expense.entered_by == User.id)
                .where(Expense.description.like("worker %"))
                .group_by(User.email)
            ).all()
            assert sum(count for _, count in rows) == len(tally.spent)
            assert {email for email, _ in rows} <= set(people)
            by_worker = session.execute(
                select(Expense.description, User.email)
                .join(User, User.id == Expense.entered_by)
                .where(Expense.description.like("worker %"))
                .distinct()
            ).all()
            workers_of = {
                f"worker {index * 10 + n}": email
                for index, email in enumerate(settings)
                for n in range(workers_per_person)
            }
            assert all(workers_of[description] == email for description, email in by_worker)
            people_in_ledger = session.scalars(
                select(User.email)
                .join(BudgetTransfer, BudgetTransfer.entered_by == User.id)
                .distinct()
            ).all()
            assert set(people_in_ledger) == set(people)
        print(
            f"two roles: {dict(tally.outcomes)}, {tally.reads} consistent reads, "
            f"{tally.retries} retried transactions"
        )
    finally:
        owner.close()
        drop_pg_database(name)
