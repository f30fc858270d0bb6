"""Pre-ping only for connections that sat idle (`db.ping_idle_connections`).

A pooled connection checked in a moment ago is handed out again without a `SELECT 1`
round trip; one idle for at least `BUDGET_POOL_PRE_PING_IDLE` seconds is pinged first and,
if its server side is gone, replaced before the unit of work starts (no retry). These run
against PostgreSQL directly, behind a counting proxy: through PgBouncer in transaction
mode, terminating a server backend does not break the client's connection at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from budget_tracker.config import DEFAULT_PRE_PING_IDLE, load_settings
from budget_tracker.unit_of_work import Database
from tests.conftest import PG_DIRECT, admin_execute, pg_url
from tests.wireproxy import WireProxy

PING = "SELECT 1"
IDLE = 0.2  # the threshold these tests configure; they sleep past it where they need to


@pytest.fixture
def proxy(pg_server: None) -> Iterator[WireProxy]:
    upstream = pg_url(PG_DIRECT, "postgres")
    with WireProxy(upstream.host or "127.0.0.1", upstream.port or 5432) as wire:
        yield wire


def database_via(proxy: WireProxy, pg_database: str, **env: str) -> Database:
    url = pg_url(PG_DIRECT, pg_database).set(port=proxy.port)
    settings = load_settings({"DATABASE_URL": url.render_as_string(hide_password=False), **env})
    return Database(settings)


def backend_pid(session: Session) -> int:
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


class Retries:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, attempt: int, exc: BaseException) -> None:
        self.seen.append(f"attempt {attempt}: {type(exc).__name__}")


def test_default_threshold_and_setting() -> None:
    assert load_settings({}).pool.pre_ping_idle == DEFAULT_PRE_PING_IDLE == 5.0
    pool = load_settings({"BUDGET_POOL_PRE_PING_IDLE": "0.5"}).pool
    assert (pool.pre_ping, pool.pre_ping_idle) == (True, 0.5)


def test_hot_connection_is_not_pinged(proxy: WireProxy, pg_database: str) -> None:
    database = database_via(proxy, pg_database, BUDGET_POOL_PRE_PING_IDLE="3600")
    try:
        pids = [database.run(backend_pid, write=False) for _ in range(3)]
        log = proxy.snapshot()
    finally:
        database.close()
    assert len(set(pids)) == 1 and log.connections == 1
    assert log.sql == ["BEGIN", "SELECT pg_backend_pid()", "COMMIT"] * 3


def test_idle_connection_is_pinged_once_and_reused(proxy: WireProxy, pg_database: str) -> None:
    database = database_via(proxy, pg_database, BUDGET_POOL_PRE_PING_IDLE=str(IDLE))
    try:
        first = database.run(backend_pid, write=False)
        time.sleep(IDLE * 1.5)
        second = database.run(backend_pid, write=False)
        third = database.run(backend_pid, write=False)  # hot again: no ping
        log = proxy.snapshot()
    finally:
        database.close()
    assert first == second == third and log.connections == 1
    unit = ["BEGIN", "SELECT pg_backend_pid()", "COMMIT"]
    assert log.sql == [*unit, PING, *unit, *unit]


def test_idle_connection_whose_backend_died_is_replaced_without_a_retry(
    proxy: WireProxy, pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = database_via(proxy, pg_database, BUDGET_POOL_PRE_PING_IDLE=str(IDLE))
    retries = Retries()
    try:
        dead = database.run(backend_pid, write=False)
        admin_execute(f"SELECT pg_terminate_backend({dead})")
        time.sleep(IDLE * 1.5)
        with caplog.at_level("INFO", logger="budget_tracker.engine"):
            alive = database.run(backend_pid, write=False, on_retry=retries)
        log = proxy.snapshot()
    finally:
        database.close()
    assert retries.seen == []
    assert alive != dead and log.connections == 2
    # The ping found the socket closed before it reached the wire; the work ran once.
    assert log.sql == ["BEGIN", "SELECT pg_backend_pid()", "COMMIT"] * 2
    lost = [r.getMessage() for r in caplog.records if "was lost; replacing it" in r.getMessage()]
    assert len(lost) == 1 and lost[0].startswith("pooled connection idle for "), lost


def test_hot_connection_that_died_costs_one_retry_not_data(
    proxy: WireProxy, pg_database: str
) -> None:
    """The trade-off the threshold makes: a rare dead hot connection is a retried unit."""
    database = database_via(proxy, pg_database, BUDGET_POOL_PRE_PING_IDLE="3600")
    retries = Retries()
    try:
        dead = database.run(backend_pid, write=False)
        admin_execute(f"SELECT pg_terminate_backend({dead})")
        time.sleep(0.1)  # let the termination reach the client's socket
        alive = database.run(backend_pid, write=False, on_retry=retries)
    finally:
        database.close()
    assert alive != dead
    assert retries.seen == ["attempt 1: OperationalError"]


def test_pre_ping_off_never_pings(proxy: WireProxy, pg_database: str) -> None:
    database = database_via(
        proxy, pg_database, BUDGET_POOL_PRE_PING="false", BUDGET_POOL_PRE_PING_IDLE="0"
    )
    try:
        database.run(backend_pid, write=False)
        database.run(backend_pid, write=False)
        log = proxy.snapshot()
    finally:
        database.close()
    assert PING not in log.sql and log.connections == 1
