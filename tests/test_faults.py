"""Faults while the app's own services run: nothing acknowledged is lost, nothing is doubled.

- PgBouncer is restarted (a real stop and start, not a reload) while worker threads record
  expenses and transfers through it;
- the server backends of the test database are terminated (`pg_terminate_backend`) while
  the same workload runs;
- a COMMIT's acknowledgement is lost: a proxy between the app and PgBouncer forwards the
  COMMIT, lets the server commit, then cuts the connection instead of passing the answer
  on. The retried unit of work must find the row instead of writing it again.

Afterwards every acknowledged write is present exactly once, nothing that was not
acknowledged is present, and no worker saw an error.

The restart uses a private PgBouncer (same settings as scripts/services.sh, its own port),
so the shared one on :6432 that other test sessions use is never interrupted.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.models import BudgetTransfer, Expense
from budget_tracker.services.expenses import add_expense
from budget_tracker.services.transfers import transfer_budget
from budget_tracker.unit_of_work import Database
from tests import network_guard
from tests.conftest import (
    IN_CI,
    PG_DIRECT,
    PG_POOLED,
    libpq_dsn,
    pg_url,
)
from tests.fault_proxy import WORKERS, CommitAckDropper, app_database

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pgbouncer")]

DAY = dt.date(2026, 5, 14)
MONTH = DAY.replace(day=1)


# --- a private PgBouncer that can be restarted --------------------------------------------


class PrivateBouncer:
    """PgBouncer in transaction mode with SCRAM auth, like services.sh's, on its own port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        direct, pooled = make_url(PG_DIRECT), make_url(PG_POOLED)
        self.ini = directory / "pgbouncer.ini"
        self.pidfile = directory / "pgbouncer.pid"
        (directory / "userlist.txt").write_text(f'"{pooled.username}" "{pooled.password}"\n')
        self.ini.write_text(
            "[databases]\n"
            f"* = host={direct.host} port={direct.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = scram-sha-256\nauth_file = {directory / 'userlist.txt'}\n"
            "pool_mode = transaction\nmax_client_conn = 200\ndefault_pool_size = 20\n"
            f"pidfile = {self.pidfile}\nlogfile = {directory / 'pgbouncer.log'}\n"
        )
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root; the files must be readable by its user.
            shutil.chown(directory, "postgres")
            for path in directory.iterdir():
                shutil.chown(path, "postgres")

    def url(self, database: str, **query: str) -> str:
        return (
            pg_url(PG_POOLED, database)
            .set(port=self.port, query=query)
            .render_as_string(hide_password=False)
        )

    def start(self) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        command = [binary, "-d", str(self.ini)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=10)
        deadline = time.monotonic() + 10
        while not self._answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"private PgBouncer did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Immediate shutdown (SIGTERM): every client and server connection is dropped."""
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)

    def restart(self, downtime: float) -> None:
        self.stop()
        time.sleep(downtime)
        self.start()

    def _answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def bouncer(pg_server: None) -> Iterator[PrivateBouncer]:
    if shutil.which("pgbouncer") is None and not Path("/usr/sbin/pgbouncer").exists():
        message = "pgbouncer is not installed (scripts/services.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    directory = Path(tempfile.mkdtemp(prefix="budget-faults-", dir="/tmp"))
    private = PrivateBouncer(directory)
    try:
        private.start()
        yield private
    finally:
        private.stop()  # whatever happened in the tests, nothing is left running
        shutil.rmtree(directory, ignore_errors=True)


def direct_rows(database_name: str, sql: str) -> list[tuple[Any, ...]]:
    connection = psycopg2.connect(libpq_dsn(str(pg_url(PG_DIRECT, database_name))))
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()


# --- the workload: the app's own services through Database.run ----------------------------


@dataclass
class Workload:
    """Threads recording expenses and transfers until stopped; what was acknowledged."""

    database: Database
    acknowledged: dict[str, tuple[str, int]] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        # The first write creates the default user and categories, before any concurrency.
        self.one(0, 0)
        for number in range(WORKERS):
            thread = threading.Thread(target=self._loop, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < count and not self.errors:
            assert time.monotonic() < deadline, f"workload stalled at {len(self.acknowledged)}"
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
            assert not thread.is_alive()

    def _loop(self, worker: int) -> None:
        step = 0
        while not self._stop.is_set():
            step += 1
            try:
                self.one(worker, step)
            except BaseException as exc:  # the user would have seen this: record it
                with self._lock:
                    self.errors.append(exc)
                return

    def one(self, worker: int, step: int) -> None:
        """One command's unit of work, with its key generated once, as the CLI does."""
        key = uuid.uuid4().hex
        table = "budget_transfers" if step % 3 == 2 else "expenses"
        amount = Decimal(f"{worker + 1}.{step % 100:02d}")

        def work(session: Session) -> int:
            if table == "budget_transfers":
                return transfer_budget(
                    session,
                    user_email=None,
                    source="Food",
                    target="Transport",
                    amount=Decimal("0.01"),
                    month=MONTH,
                    allow_overdraw=True,
                    idempotency_key=key,
                ).transfer.id
            return add_expense(
                session,
                user_email=None,
                category="Food",
                amount=amount,
                spent_on=DAY,
                description=f"worker {worker} step {step}",
                idempotency_key=key,
            ).expense.id

        row_id = self.database.run(work, write=True, on_retry=self._count_retry)
        with self._lock:
            self.acknowledged[key] = (table, row_id)

    def _count_retry(self, _attempt: int, _exc: BaseException) -> None:
        with self._lock:
            self.retries += 1


def assert_exactly_the_acknowledged_writes(database_name: str, workload: Workload) -> None:
    assert workload.errors == []
    stored: Counter[tuple[str, str, int]] = Counter()
    for table in ("expenses", "budget_transfers"):
        for key, row_id in direct_rows(database_name, f"SELECT idempotency_key, id FROM {table}"):
            stored[(table, key, row_id)] += 1
    expected = Counter(
        (table, key, row_id) for key, (table, row_id) in workload.acknowledged.items()
    )
    # Every acknowledged write exactly once, under the id the caller was given, and
    # nothing else (no unacknowledged or doubled row).
    assert stored == expected


# --- the faults ---------------------------------------------------------------------------


def test_pgbouncer_restart_during_the_workload(bouncer: PrivateBouncer, fault_db: str) -> None:
    database = app_database(bouncer.url(fault_db))
    workload = Workload(database)
    try:
        workload.start()
        workload.wait_for(30)
        bouncer.restart(downtime=0.5)
        after = len(workload.acknowledged)
        workload.wait_for(after + 30)
    finally:
        workload.stop()
        database.close()
    assert_exactly_the_acknowledged_writes(fault_db, workload)
    # The restart really hit the workload (and was absorbed by retries).
    assert workload.retries > 0


def test_server_backends_terminated_during_the_workload(
    bouncer: PrivateBouncer, fault_db: str
) -> None:
    database = app_database(bouncer.url(fault_db))
    workload = Workload(database)
    terminated = 0
    try:
        workload.start()
        workload.wait_for(30)
        for _round in range(8):
            terminated += len(
                direct_rows(
                    "postgres",
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{fault_db}' AND pid <> pg_backend_pid()",
                )
            )
            time.sleep(0.05)
        after = len(workload.acknowledged)
        workload.wait_for(after + 30)
    finally:
        workload.stop()
        database.close()
    assert terminated > 0
    assert_exactly_the_acknowledged_writes(fault_db, workload)
    assert workload.retries > 0


# --- a lost COMMIT acknowledgement --------------------------------------------------------


def count(database: Database, model: type[Any], key: str | None = None) -> int:
    with database.transaction(write=False) as session:
        statement = select(func.count()).select_from(model)
        if key is not None:
            statement = statement.where(model.idempotency_key == key)
        return int(session.scalar(statement) or 0)


def record_expense(database: Database, key: str, retries: list[int]) -> int:
    return database.run(
        lambda session: (
            add_expense(
                session,
                user_email=None,
                category="Food",
                amount=Decimal("12.50"),
                spent_on=DAY,
                description="lunch",
                idempotency_key=key,
            ).expense.id
        ),
        on_retry=lambda attempt, _exc: retries.append(attempt),
    )


def test_lost_commit_ack_on_add_expense_is_written_once(
    lossy: tuple[CommitAckDropper, Database],
) -> None:
    proxy, database = lossy
    retries: list[int] = []
    record_expense(database, uuid.uuid4().hex, retries)  # first run: user and categories
    key = uuid.uuid4().hex
    proxy.armed.set()
    expense_id = record_expense(database, key, retries)
    assert proxy.dropped == 1
    assert retries == [1]
    assert count(database, Expense, key) == 1
    assert count(database, Expense) == 2
    with database.transaction(write=False) as session:
        assert session.scalar(select(Expense.id).where(Expense.idempotency_key == key)) == (
            expense_id
        )


def test_lost_commit_ack_on_transfer_is_written_once(
    lossy: tuple[CommitAckDropper, Database],
) -> None:
    proxy, database = lossy
    retries: list[int] = []
    record_expense(database, uuid.uuid4().hex, retries)  # first run: user and categories
    key = uuid.uuid4().hex
    proxy.armed.set()
    outcome = database.run(
        lambda session: transfer_budget(
            session,
            user_email=None,
            source="Food",
            target="Transport",
            amount=Decimal("5"),
            month=MONTH,
            allow_overdraw=True,
            idempotency_key=key,
        ),
        on_retry=lambda attempt, _exc: retries.append(attempt),
    )
    assert proxy.dropped == 1
    assert retries == [1]
    assert outcome.replayed is True  # the retry found the committed transfer
    assert count(database, BudgetTransfer, key) == 1
    assert count(database, BudgetTransfer) == 1


def test_lost_commit_ack_through_the_cli(lossy: tuple[CommitAckDropper, Database]) -> None:
    proxy, database = lossy
    runner = CliRunner()
    first = runner.invoke(main, ["add-expense", "3", "Food", "tea"], obj=AppState(database))
    assert first.exit_code == 0, first.output
    proxy.armed.set()
    result = runner.invoke(main, ["add-expense", "12.50", "Food", "lunch"], obj=AppState(database))
    assert proxy.dropped == 1
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Added expense 2: ")
    assert count(database, Expense) == 2


def test_without_a_key_a_lost_ack_would_double_the_write(
    lossy: tuple[CommitAckDropper, Database],
) -> None:
    """The control: the proxy really loses acknowledgements of committed transactions."""
    proxy, database = lossy
    record_expense(database, uuid.uuid4().hex, [])
    proxy.armed.set()
    retries: list[int] = []
    database.run(
        lambda session: add_expense(
            session,
            user_email=None,
            category="Food",
            amount=Decimal("1"),
            spent_on=DAY,
            description="unkeyed",
            idempotency_key=None,
        ),
        on_retry=lambda attempt, _exc: retries.append(attempt),
        # Without the recorded outcome either: nothing tells the retry what committed.
        record_outcome=False,
    )
    assert (proxy.dropped, retries) == (1, [1])
    with database.transaction(write=False) as session:
        unkeyed = session.scalar(
            select(func.count()).select_from(Expense).where(Expense.description == "unkeyed")
        )
    assert unkeyed == 2


# --- the suite stays on loopback ----------------------------------------------------------


def test_non_loopback_connections_are_refused() -> None:
    before = list(network_guard.violations)
    try:
        with pytest.raises(network_guard.NonLoopbackConnection):
            socket.create_connection(("192.0.2.10", 5432), timeout=0.1)
        with pytest.raises(network_guard.NonLoopbackConnection):
            psycopg2.connect(host="192.0.2.10", port=5432, dbname="x", connect_timeout=1)
        with pytest.raises(network_guard.NonLoopbackConnection):
            socket.getaddrinfo("example.com", 443)
    finally:
        # These were deliberate: keep the session-end check for real violations only.
        network_guard.violations[:] = before


def test_loopback_connections_are_allowed(pg_server: None) -> None:
    with socket.create_connection(("127.0.0.1", make_url(PG_POOLED).port or 6432), timeout=2):
        pass
    assert network_guard.is_loopback_host("::1")
    assert network_guard.is_loopback_host("localhost")
    assert not network_guard.is_loopback_host("ep-x-pooler.eu.aws.neon.tech")
