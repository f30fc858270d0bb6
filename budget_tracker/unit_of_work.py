"""The unit-of-work runner: one transaction per command, retried as a whole when transient.

`Database` is created from `Settings` by the CLI (or by a test) and owns one pooled engine
and one sessionmaker. Every command runs its work through `Database.run()`, which opens
one transaction, commits it, and retries the whole unit of work on transient failures.
Services receive the session and never commit; the idempotency helpers below let a
retried unit of work recognise what an earlier attempt already committed.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from budget_tracker.config import Settings
from budget_tracker.driver_errors import first_line, is_transient
from budget_tracker.engine import (
    SQLITE_BEGIN_OPTION,
    create_app_engine,
    instrument_engine,
)
from budget_tracker.errors import BudgetError
from budget_tracker.schema_version import ensure_sqlite_schema

log = logging.getLogger(__name__)

T = TypeVar("T")

# Keys in `Session.info` through which `Database.run` tells the work function about the
# unit of work it belongs to (see `attempt_number`, `unit_key` and `committed_earlier`).
ATTEMPT_INFO = "budget_attempt"
UNIT_KEY_INFO = "budget_unit_key"

# Backoff between retries: full jitter over an exponential ceiling (AWS's "full jitter"),
# 0.2 s doubling to 8 s, so a short restart is ridden out in well under a second and a
# longer one is not hammered by every client at the same instant.
RETRY_BASE_SECONDS = 0.2
RETRY_CAP_SECONDS = 8.0


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait between attempts of a unit of work, and when to give up.

    The clock, the sleep and the random source are injectable so the policy can be tested
    without waiting (`tests/test_retry_policy.py`).
    """

    budget_seconds: float
    base_seconds: float = RETRY_BASE_SECONDS
    cap_seconds: float = RETRY_CAP_SECONDS
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    uniform: Callable[[float, float], float] = random.uniform

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failed attempt number `attempt` (1-based)."""
        return min(self.cap_seconds, self.base_seconds * 2.0 ** min(attempt - 1, 64))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt`: uniform in [0, ceiling]."""
        ceiling = self.ceiling(attempt)
        return min(ceiling, max(0.0, self.uniform(0.0, ceiling)))

    def deadline(self) -> float:
        """The clock reading after which no new attempt starts, for a unit starting now."""
        return self.clock() + self.budget_seconds

    def next_delay(self, attempt: int, deadline: float) -> float | None:
        """The wait before the next attempt, or None to give up (the wait would end past
        `deadline`)."""
        delay = self.delay(attempt)
        if self.clock() + delay > deadline:
            return None
        return delay


class Database:
    """One engine and one sessionmaker for the process, built on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self._given_engine = engine
        self.retry_policy = retry_policy or RetryPolicy(settings.retry_seconds)
        self.on_long_retry: Callable[[int, float, str], None] | None = None
        """Called before a retry that would end more than a second after the unit of work
        started, with the attempt number, the seconds spent so far and the error's line."""
        self._connected = False
        self.migrate_sqlite = True
        """Bring a SQLite file to the schema head on first use (off for `budget db check`)."""

    @cached_property
    def engine(self) -> Engine:
        if self._given_engine is not None:
            engine = self._given_engine
        else:
            path = self.settings.sqlite_path
            if path is not None and self.migrate_sqlite:
                ensure_sqlite_schema(path, self.settings.migration_url)
            engine = create_app_engine(self.settings)
        instrument_engine(engine)
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @property
    def is_sqlite(self) -> bool:
        return self.settings.is_sqlite

    @contextmanager
    def transaction(
        self, *, write: bool = True, info: dict[str, Any] | None = None
    ) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any exception."""
        with self.sessions(info=info or {}) as session, session.begin():
            options: dict[str, Any] = {}
            if write and self.engine.dialect.name == "sqlite":
                # Take SQLite's write lock before the first read (BEGIN IMMEDIATE).
                options[SQLITE_BEGIN_OPTION] = "IMMEDIATE"
            self._check_out(session, options)
            yield session

    def _check_out(self, session: Session, options: dict[str, Any]) -> None:
        """Take the transaction's connection now, logging when the pool made us wait."""
        pool = self.engine.pool
        exhausted = False
        if isinstance(pool, QueuePool):
            # The limits the pool was built with (`create_app_engine`); -1: no overflow limit.
            limits = self.settings.pool
            capacity = limits.size + limits.max_overflow
            exhausted = limits.max_overflow >= 0 and pool.checkedout() >= capacity
            if exhausted:
                log.warning(
                    "%s pool exhausted: %d of %d connections checked out; waiting up to %gs",
                    _now(),
                    pool.checkedout(),
                    capacity,
                    limits.timeout,
                )
        started = time.monotonic()
        try:
            session.connection(execution_options=options or None)
            self._connected = True
        except PoolTimeout:
            log.warning(
                "%s pool exhausted: no connection became free within %.1fs",
                _now(),
                time.monotonic() - started,
            )
            raise
        if exhausted:
            log.warning(
                "%s pool exhaustion over: got a connection after waiting %.2fs",
                _now(),
                time.monotonic() - started,
            )

    def run(
        self,
        work: Callable[[Session], T],
        *,
        write: bool = True,
        on_retry: Callable[[int, BaseException], None] | None = None,
        record_outcome: bool | None = None,
    ) -> T:
        """Run `work` in one transaction, retrying all of it on transient failures.

        Retries use exponential backoff with full jitter until `BUDGET_RETRY_SECONDS` have
        passed; a `BudgetError` or a permanent database error is raised at once. The
        session tells `work` which attempt it is (`attempt_number`) and carries a key that
        is the same on every attempt (`unit_key`).

        A writing unit (`record_outcome` defaults to `write`) stores what `work` returned
        under that key in the same transaction (`budget_tracker.outcomes`). When an
        attempt fails after `work` returned, the COMMIT may have been applied with its
        acknowledgement lost: the next attempt first looks for the recorded result and
        returns it instead of running `work` against its own changes.
        """
        from budget_tracker import outcomes

        record = write if record_outcome is None else record_outcome
        policy = self.retry_policy
        deadline = policy.deadline()
        started = policy.clock()
        key = uuid.uuid4().hex
        info: dict[str, Any] = {UNIT_KEY_INFO: key}
        attempt = 0
        commit_uncertain = False
        while True:
            attempt += 1
            info[ATTEMPT_INFO] = attempt
            work_returned = False
            try:
                with self.transaction(write=write, info=dict(info)) as session:
                    found, result = (
                        outcomes.recorded(session, key=key)
                        if record and commit_uncertain
                        else (False, None)
                    )
                    if not found:
                        result = work(session)
                        if record:
                            outcomes.record(session, key=key, result=result)
                    work_returned = True
            except BudgetError:
                raise
            except DBAPIError as exc:
                if work_returned:
                    # Failed in COMMIT: it may have been applied with the answer lost.
                    commit_uncertain = True
                elif record and commit_uncertain and outcomes.is_outcome_conflict(exc):
                    # The earlier attempt's COMMIT was still being applied when this one
                    # recorded its outcome under the same key: it did commit; read it.
                    log.info("unit of work %s: an earlier attempt committed; reading it", key)
                    continue
                if not is_transient(exc, connected_before=self._connected):
                    raise
                delay = policy.next_delay(attempt, deadline)
                if delay is None:
                    log.warning(
                        "transient database error on attempt %d; giving up (retry budget "
                        "of %gs spent): %s",
                        attempt,
                        policy.budget_seconds,
                        first_line(exc),
                    )
                    raise
                log.warning(
                    "transient database error on attempt %d; retry %d in %.2fs: %s",
                    attempt,
                    attempt,
                    delay,
                    first_line(exc),
                )
                if on_retry is not None:
                    on_retry(attempt, exc)
                if self.on_long_retry is not None and policy.clock() + delay - started > 1.0:
                    self.on_long_retry(attempt, policy.clock() - started, first_line(exc))
                policy.sleep(delay)
            else:
                if attempt > 1:
                    log.info("unit of work succeeded after %d retries", attempt - 1)
                return cast(T, result)

    def close(self) -> None:
        if "engine" in self.__dict__ and self._given_engine is None:
            self.engine.dispose()


def attempt_number(session: Session) -> int:
    """1 on the first attempt of a `Database.run` unit of work, 2 on its first retry, ..."""
    return int(session.info.get(ATTEMPT_INFO, 1))


def unit_key(session: Session) -> str:
    """A key that is the same on every attempt of one `Database.run` unit of work.

    A service that creates a row and was given no idempotency key by its caller uses this
    one, so a retry after a lost COMMIT acknowledgement finds the row the earlier attempt
    committed. Outside `Database.run` each session gets its own key.
    """
    key = session.info.get(UNIT_KEY_INFO)
    if key is None:
        key = session.info[UNIT_KEY_INFO] = uuid.uuid4().hex
    return str(key)


M = TypeVar("M")


def committed_earlier(session: Session, model: type[M], *, user_id: int, key: str) -> M | None:
    """On a retried unit of work, the row an earlier attempt already committed under `key`.

    `model` has `user_id` and `idempotency_key` columns (unique together). On a first
    attempt nothing can have been committed yet, so no query is made.
    """
    if attempt_number(session) == 1:
        return None
    row = session.scalar(select(model).filter_by(user_id=user_id, idempotency_key=key))
    if row is not None:
        log.info(
            "retry found %s committed by an earlier attempt (idempotency key %s)",
            getattr(model, "__tablename__", model.__name__),
            key,
        )
    return row


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
