"""Every change to a category's budget is atomic under concurrency (PostgreSQL, PgBouncer).

Each test holds one unit of work open, after it changed a category, until a second one —
in another thread, with its own connections — is waiting for a lock; then lets both
finish and checks that neither change was lost. Without a row lock taken *before* the
budget is read, the second unit of work reads the budget as it was before the first
one committed and writes back a figure computed from it (a lost update).

The wait is for a condition the server reports (a backend of this database waiting on a
lock, in `pg_stat_activity`), not for a length of time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import psycopg2
import pytest
from sqlalchemy.orm import Session

from budget_tracker.errors import InsufficientBudget
from budget_tracker.services.categories import (
    delete_category,
    merge_categories,
    set_category_budget,
)
from budget_tracker.services.transfers import transfer_budget
from budget_tracker.unit_of_work import Database
from tests.cli_helpers import TODAY, first_run, ok
from tests.conftest import PG_DIRECT, Backend, libpq_dsn

T = TypeVar("T")
ME = "me@localhost"
MONTH = TODAY.replace(day=1)
WAIT_SECONDS = 30

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@pytest.fixture
def admin(backend: Backend) -> Iterator[Any]:
    """A direct connection to the server, to see other sessions' lock waits."""
    connection = psycopg2.connect(libpq_dsn(PG_DIRECT))
    connection.autocommit = True
    try:
        yield connection
    finally:
        connection.close()


def _wait_for_lock_waiter(admin: Any, database: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    with admin.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND wait_event_type = 'Lock'",
                (database,),
            )
            if cursor.fetchone()[0] > 0:
                return
            time.sleep(0.005)
    raise AssertionError("the second unit of work never waited for a lock")


def interleaved(
    backend: Backend,
    admin: Any,
    first: Callable[[Session], Any],
    second: Callable[[Session], T],
) -> T:
    """Run `first`, keep its transaction open until `second` (another thread, its own
    connections) waits on a lock, commit `first`, and return what `second` returned."""
    holding, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def hold(session: Session) -> None:
        first(session)
        holding.set()
        if not release.wait(WAIT_SECONDS):
            raise AssertionError("never released")

    def run_first() -> None:
        try:
            backend.database.run(hold)
        except BaseException as exc:  # reported by the main thread
            results["first"] = exc
            holding.set()

    def run_second() -> None:
        database = Database(backend.settings)
        try:
            results["second"] = database.run(second)
        except BaseException as exc:
            results["second"] = exc
        finally:
            database.close()

    one = threading.Thread(target=run_first)
    one.start()
    assert holding.wait(WAIT_SECONDS)
    assert "first" not in results, results["first"]
    two = threading.Thread(target=run_second)
    two.start()
    try:
        _wait_for_lock_waiter(admin, backend.url.database or "")
    finally:
        release.set()
        one.join(WAIT_SECONDS)
        two.join(WAIT_SECONDS)
    assert "first" not in results, results["first"]
    outcome = results["second"]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome  # type: ignore[no-any-return]


def budget_of(backend: Backend, name: str) -> Decimal:
    """The category's monthly budget for this month (its budget history applied)."""
    result = ok(backend.invoke(["category", "list", "--format", "json"]))
    rows = {row["name"]: row for row in json.loads(result.stdout)["categories"]}
    return Decimal(rows[name]["monthly_budget"])


def setup(backend: Backend, **budgets: str) -> None:
    first_run(backend)
    for name, amount in budgets.items():
        ok(backend.invoke(["category", "add", name, "--budget", amount]))


def test_two_merges_into_one_target_both_add_up(backend: Backend, admin: Any) -> None:
    setup(backend, Target="100", One="1", Two="2")
    interleaved(
        backend,
        admin,
        lambda s: merge_categories(s, user_email=ME, source="One", target="Target", today=TODAY),
        lambda s: merge_categories(s, user_email=ME, source="Two", target="Target", today=TODAY),
    )
    assert budget_of(backend, "Target") == Decimal("103.00")


def test_delete_move_to_and_merge_into_one_target_both_add_up(backend: Backend, admin: Any) -> None:
    setup(backend, Target="100", One="10", Two="20")
    interleaved(
        backend,
        admin,
        lambda s: delete_category(s, user_email=ME, name="One", move_to="Target", today=TODAY),
        lambda s: merge_categories(s, user_email=ME, source="Two", target="Target", today=TODAY),
    )
    assert budget_of(backend, "Target") == Decimal("130.00")


def test_set_budget_reports_the_budget_it_really_replaced(backend: Backend, admin: Any) -> None:
    setup(backend, Target="100", One="5")
    changed = interleaved(
        backend,
        admin,
        lambda s: merge_categories(s, user_email=ME, source="One", target="Target", today=TODAY),
        lambda s: set_category_budget(
            s, user_email=ME, name="Target", monthly_budget=Decimal("40"), month=MONTH
        ),
    )
    assert (changed.old_budget, changed.monthly_budget) == (Decimal("105.00"), Decimal("40.00"))
    assert budget_of(backend, "Target") == Decimal("40.00")


def test_a_transfer_checks_the_budget_a_concurrent_set_budget_left(
    backend: Backend, admin: Any
) -> None:
    setup(backend, Source="100", Target="0")
    with pytest.raises(InsufficientBudget):
        interleaved(
            backend,
            admin,
            lambda s: set_category_budget(
                s, user_email=ME, name="Source", monthly_budget=Decimal("10"), month=MONTH
            ),
            lambda s: transfer_budget(
                s,
                user_email=ME,
                source="Source",
                target="Target",
                amount=Decimal("50"),
                month=MONTH,
            ),
        )
    assert backend.scalar("SELECT count(*) FROM budget_transfers") == 0
