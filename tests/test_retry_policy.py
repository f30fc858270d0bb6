"""The retry policy and `Database.run`'s loop: bounds, deadline, give-up, what is retried.

A fake clock, sleep and random source replace time and chance: nothing here waits or
touches the network (the database is a SQLite file).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from budget_tracker.cli.state import say_still_retrying
from budget_tracker.config import load_settings
from budget_tracker.unit_of_work import Database, RetryPolicy, attempt_number


class FakeTime:
    """A clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(
    fake: FakeTime, budget: float = 30.0, uniform: Callable[[float, float], float] | None = None
) -> RetryPolicy:
    return RetryPolicy(
        budget,
        clock=fake.clock,
        sleep=fake.sleep,
        uniform=uniform or (lambda low, high: high),  # always the longest wait
    )


def test_ceiling_doubles_from_base_to_cap() -> None:
    retry = RetryPolicy(30.0)
    assert [retry.ceiling(n) for n in range(1, 9)] == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 8.0, 8.0]
    assert retry.ceiling(10_000) == 8.0  # no overflow on absurd attempt numbers


@pytest.mark.parametrize("draw", [0.0, 0.5, 1.0, -1.0, 2.0])
def test_delay_stays_within_zero_and_the_ceiling(draw: float) -> None:
    fake = FakeTime()
    retry = policy(fake, uniform=lambda low, high: low + draw * (high - low))
    for attempt in range(1, 12):
        assert 0.0 <= retry.delay(attempt) <= retry.ceiling(attempt)


def test_full_jitter_draws_over_the_whole_range() -> None:
    asked: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        asked.append((low, high))
        return low

    policy(FakeTime(), uniform=uniform).delay(3)
    assert asked == [(0.0, 0.8)]


def test_gives_up_when_the_wait_would_end_past_the_deadline() -> None:
    fake = FakeTime()
    retry = policy(fake, budget=1.0)
    deadline = retry.deadline()
    assert retry.next_delay(1, deadline) == 0.2
    fake.now += 0.6
    assert retry.next_delay(2, deadline) == 0.4  # ends exactly at the deadline: still allowed
    fake.now += 0.1
    assert retry.next_delay(2, deadline) is None  # would end 0.1 s past it


def test_a_zero_budget_never_retries() -> None:
    retry = policy(FakeTime(), budget=0.0)
    assert retry.next_delay(1, retry.deadline()) is None


def transient(message: str = "database is locked") -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, psycopg2.OperationalError(message))


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database(load_settings({"BUDGET_DB_PATH": str(tmp_path / "budget.db")}))


def run_failing(
    database: Database, failures: int, error: Callable[[], Exception] = transient
) -> list[int]:
    attempts: list[int] = []

    def work(session: Session) -> str:
        attempts.append(attempt_number(session))
        if len(attempts) <= failures:
            raise error()
        return "done"

    assert database.run(work) == "done"
    return attempts


def with_fake_time(database: Database, fake: FakeTime, budget: float = 30.0) -> Database:
    database.retry_policy = policy(fake, budget=budget)
    return database


def test_run_retries_a_transient_error_with_growing_waits(database: Database) -> None:
    fake = FakeTime()
    with_fake_time(database, fake)
    assert run_failing(database, failures=3) == [1, 2, 3, 4]
    assert fake.sleeps == [0.2, 0.4, 0.8]


def test_run_gives_up_at_the_deadline_and_raises_the_last_error(database: Database) -> None:
    fake = FakeTime()
    with_fake_time(database, fake, budget=1.0)
    with pytest.raises(sa_exc.OperationalError):
        run_failing(database, failures=100)
    # 0.2 + 0.4 = 0.6 s spent; the next wait (0.8) would end past the 1 s budget.
    assert fake.sleeps == [0.2, 0.4]


def test_run_never_retries_a_permanent_error(database: Database) -> None:
    fake = FakeTime()
    with_fake_time(database, fake)
    with pytest.raises(sa_exc.OperationalError):
        run_failing(database, 1, lambda: transient("FATAL:  password authentication failed"))
    assert fake.sleeps == []


REFUSED = 'connection to server at "127.0.0.1", port 1 failed: Connection refused'


def test_refused_before_ever_connecting_is_not_retried() -> None:
    # A wrong port or a stopped server: say so at once instead of retrying for 30 s. Port
    # 1 on the loopback interface refuses at once (nothing leaves the machine).
    closed = "postgresql://budget:x@127.0.0.1:1/budget"
    database = Database(load_settings({"DATABASE_URL": closed}))
    fake = FakeTime()
    with_fake_time(database, fake)
    try:
        with pytest.raises(sa_exc.OperationalError, match="Connection refused"):
            database.run(lambda session: None)
    finally:
        database.close()
    assert fake.sleeps == []


def test_refused_after_a_working_connection_is_retried(database: Database) -> None:
    # A restarting PgBouncer refuses new connections for a moment: ride it out.
    fake = FakeTime()
    with_fake_time(database, fake)
    assert run_failing(database, 2, lambda: transient(REFUSED)) == [1, 2, 3]
    assert fake.sleeps == [0.2, 0.4]


def test_a_long_retry_is_announced_once_past_a_second(database: Database) -> None:
    fake = FakeTime()
    with_fake_time(database, fake)
    announced: list[tuple[int, float, str]] = []
    database.on_long_retry = lambda attempt, elapsed, detail: announced.append(
        (attempt, elapsed, detail)
    )
    run_failing(database, failures=4)
    # Waits 0.2, 0.4, 0.8, 1.6: the third would end at 1.4 s, past the first second.
    assert [(attempt, round(elapsed, 6), detail) for attempt, elapsed, detail in announced] == [
        (3, 0.6, "database is locked"),
        (4, 1.4, "database is locked"),
    ]


class Terminal:
    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.written: list[str] = []

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.written.append(text)
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("tty", [True, False])
def test_the_cli_says_it_is_retrying_only_to_a_terminal(
    tty: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal(tty)
    monkeypatch.setattr("sys.stderr", terminal)
    say_still_retrying(3, 1.4, "server closed the connection unexpectedly")
    expected = (
        "budget: database unavailable, still retrying (1s, attempt 3): server closed the "
        "connection unexpectedly\n"
    )
    assert "".join(terminal.written) == (expected if tty else "")
