"""All or nothing: a copy killed half way, or whose connection is cut half way, leaves the
target as it was (not even the schema, which shares the load's transaction), and running
the command again completes it."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import URL

from budget_tracker.migrate import upgrade
from tests.conftest import (
    PG_DIRECT,
    PG_POOLED,
    create_pg_database,
    drop_pg_database,
    libpq_dsn,
    pg_url,
)

pytestmark = pytest.mark.slow

EXPENSES = 60_000
WAIT_SECONDS = 120


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite budget with enough expenses that copying them takes a few seconds."""
    path = tmp_path_factory.mktemp("portable") / "big.db"
    upgrade(URL.create("sqlite+pysqlite", database=str(path)))
    connection = sqlite3.connect(path)
    connection.executescript(
        f"""
        INSERT INTO users (id, email, name) VALUES (1, 'me@localhost', 'Me');
        INSERT INTO categories (id, user_id, name, name_key, monthly_budget)
        VALUES (1, 1, 'Food', 'food', 30000), (2, 1, 'Rent', 'rent', 90000);
        INSERT INTO expenses (user_id, category_id, amount, description, spent_on)
        WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < {EXPENSES} - 1)
        SELECT 1, 1 + n % 2, 100 + n % 9000, 'expense ' || n,
               date('2020-01-01', '+' || (n % 1500) || ' days')
        FROM g;
        """
    )
    connection.commit()
    connection.close()
    return path


@pytest.fixture
def pg_target(pg_server: None) -> Iterator[str]:
    name = create_pg_database("budget_portable")
    try:
        yield name
    finally:
        drop_pg_database(name)


def start_copy(source: Path, target: str, *extra: str, home: Path) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DATABASE_URL")}
    env["HOME"] = str(home)
    return subprocess.Popen(
        [sys.executable, "-m", "budget_tracker", "db", "copy", "--from", f"sqlite:///{source}",
         "--to", target, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Poll until `condition` holds (the copy has reached the point under test)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the copy ended before the fault: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the copy never reached the point under test")
        time.sleep(0.02)


def copying_expenses(name: str) -> list[int]:
    """Backends of database `name` running the COPY into expenses."""
    connection = psycopg2.connect(libpq_dsn(PG_DIRECT))
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                "AND query LIKE 'COPY \"expenses\"%%'",
                (name,),
            )
            return [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()


def public_tables(name: str) -> int:
    connection = psycopg2.connect(libpq_dsn(pg_url(PG_DIRECT, name).render_as_string(False)))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            row = cursor.fetchone()
            return int(row[0]) if row else -1
    finally:
        connection.close()


def pg_args(name: str) -> tuple[str, str, str]:
    pooled = pg_url(PG_POOLED, name).render_as_string(hide_password=False)
    direct = pg_url(PG_DIRECT, name).render_as_string(hide_password=False)
    return pooled, "--to-direct", direct


def finish_again(source: Path, target: str, *extra: str, home: Path) -> str:
    again = start_copy(source, target, *extra, home=home)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    # The table column is as wide as the longest table name the schema has.
    assert re.search(rf"^  expenses +{EXPENSES:,}  ", out, re.MULTILINE), out
    assert out.splitlines()[-1].startswith("Verified: ")
    return out


def test_sigkill_half_way_leaves_postgresql_untouched(
    big_source: Path, pg_target: str, tmp_path: Path
) -> None:
    target, *extra = pg_args(pg_target)
    process = start_copy(big_source, target, *extra, home=tmp_path)
    wait_for(lambda: bool(copying_expenses(pg_target)), process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert public_tables(pg_target) == 0
    finish_again(big_source, target, *extra, home=tmp_path)


def test_a_connection_dropped_half_way_leaves_postgresql_untouched(
    big_source: Path, pg_target: str, tmp_path: Path
) -> None:
    target, *extra = pg_args(pg_target)
    process = start_copy(big_source, target, *extra, home=tmp_path)
    wait_for(lambda: bool(copying_expenses(pg_target)), process)
    pids = copying_expenses(pg_target)
    connection = psycopg2.connect(libpq_dsn(PG_DIRECT))
    connection.autocommit = True
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    connection.close()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 3, err
    assert err.startswith("Error: "), err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert "budget-test" not in out + err
    assert public_tables(pg_target) == 0
    finish_again(big_source, target, *extra, home=tmp_path)


def test_sigkill_half_way_leaves_sqlite_untouched(big_source: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.db"
    wal = Path(f"{target}-wal")
    process = start_copy(big_source, f"sqlite:///{target}", home=tmp_path)
    # The load writes into the WAL; a few MB in, the expenses are on their way.
    wait_for(lambda: wal.exists() and wal.stat().st_size > 2_000_000, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    connection = sqlite3.connect(target)
    tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    connection.close()
    assert tables == []
    finish_again(big_source, f"sqlite:///{target}", home=tmp_path)
