"""Real databases for every test: a SQLite file, and PostgreSQL through PgBouncer.

`scripts/services.sh` starts PostgreSQL (direct, :5432) and PgBouncer in transaction mode
(:6432, like Neon's pooler). Each test session creates its own PostgreSQL database, runs
`alembic upgrade head` over the direct URL, and the app talks to it through PgBouncer.
With CI=true an unreachable server fails the run instead of skipping it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click.testing
import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.config import ENV_VARS, Settings, load_settings
from budget_tracker.migrate import upgrade
from budget_tracker.models import TABLE_NAMES
from budget_tracker.unit_of_work import Database
from tests import network_guard
from tests.fault_proxy import CommitAckDropper, app_database
from tests.wireproxy import WireProxy

# Before any test (or fixture) runs: the suite must never reach a non-loopback host.
network_guard.install()

TODAY = dt.date(2026, 5, 14)
"""The day in-process invocations take as today (`AppState.today`): tests never read the
clock, so none fails when a run crosses midnight or a month's end."""

PG_DIRECT = os.environ.get(
    "BUDGET_TEST_PG_DIRECT", "postgresql://budget:budget-test@127.0.0.1:5432/postgres"
)
PG_POOLED = os.environ.get(
    "BUDGET_TEST_PG_POOLED", "postgresql://budget:budget-test@127.0.0.1:6432/postgres"
)
PG_PASSWORD: str = make_url(PG_DIRECT).password or "budget-test"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

BACKENDS = ("sqlite", "postgresql")


@dataclass
class Backend:
    """One migrated, empty database and the ways tests reach it."""

    name: str
    env: dict[str, str]
    settings: Settings
    database: Database
    direct_url: URL
    runner: click.testing.CliRunner = field(default_factory=click.testing.CliRunner)

    @property
    def url(self) -> URL:
        return self.settings.database_url

    def invoke(
        self, args: Sequence[str], *, input: str | None = None, env: Mapping[str, str] | None = None
    ) -> click.testing.Result:
        """Run `budget ARGS` in-process on this database (shared engine)."""
        return self.runner.invoke(
            main,
            list(args),
            input=input,
            env=dict(env or {}),
            obj=AppState(database=self.database, today=lambda: TODAY),
            catch_exceptions=False,
        )

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.database.engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.database.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table: compare before and after to prove nothing was written."""
        return {table: self.rows(f"SELECT * FROM {table} ORDER BY 1") for table in TABLE_NAMES}


def pg_url(base: str, database: str) -> URL:
    return make_url(base).set(drivername="postgresql+psycopg2", database=database)


def libpq_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_reachable() -> str | None:
    try:
        psycopg2.connect(libpq_dsn(PG_DIRECT), connect_timeout=3).close()
        psycopg2.connect(libpq_dsn(PG_POOLED), connect_timeout=3).close()
    except psycopg2.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def admin_execute(*statements: str) -> None:
    """Run statements on the server's `postgres` database over the direct connection."""
    connection = psycopg2.connect(libpq_dsn(PG_DIRECT))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def create_pg_database(prefix: str = "budget_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin_execute(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(name: str) -> None:
    admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_env(database: str) -> dict[str, str]:
    return {
        "DATABASE_URL": pg_url(PG_POOLED, database).render_as_string(hide_password=False),
        "DATABASE_URL_UNPOOLED": pg_url(PG_DIRECT, database).render_as_string(hide_password=False),
    }


PERSON_ROLES = ("budget_alice", "budget_bob")
"""People's PostgreSQL roles (not owners, not superusers) that scripts/services.sh creates
and lets log in through PgBouncer; `budget db grant` gives them the app's privileges."""


def role_env(database: str, role: str) -> dict[str, str]:
    """The pooled URL of `role` (its own password), as each person's `.env` would hold."""
    pooled = pg_url(PG_POOLED, database).set(username=role, password=PG_PASSWORD)
    direct = pg_url(PG_DIRECT, database).set(username=role, password=PG_PASSWORD)
    return {
        "DATABASE_URL": pooled.render_as_string(hide_password=False),
        "DATABASE_URL_UNPOOLED": direct.render_as_string(hide_password=False),
    }


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    """Fail the session if anything tried a non-loopback host, even if the error was caught."""
    yield
    assert not network_guard.violations, network_guard.violations


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer `.env` or variables leak in; nothing is written outside tmp_path."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def pg_server() -> None:
    problem = _pg_reachable()
    if problem is None:
        return
    message = f"PostgreSQL/PgBouncer not reachable ({problem}); run scripts/services.sh"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_database(pg_server: None) -> Iterator[str]:
    """A database for this test session, migrated over the direct URL."""
    name = create_pg_database()
    try:
        upgrade(pg_url(PG_DIRECT, name))
        yield name
    finally:
        drop_pg_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "budget.db"
    upgrade(URL.create("sqlite+pysqlite", database=str(path)))
    return path


def _truncate(database: Database) -> None:
    with database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(TABLE_NAMES)} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(TABLE_NAMES):
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    """A migrated empty database on each backend; its variables are set in the environment."""
    if request.param == "sqlite":
        path = tmp_path / "budget.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        env = {"DATABASE_URL": f"sqlite:///{path}"}
    else:
        env = pg_env(request.getfixturevalue("pg_database"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(env)
    database = Database(settings)
    backend = Backend(
        name=request.param,
        env=env,
        settings=settings,
        database=database,
        direct_url=settings.migration_url,
    )
    try:
        yield backend
    finally:
        if request.param == "postgresql":
            _truncate(database)
        database.close()


@pytest.fixture
def proxy(pg_server: None) -> Iterator[WireProxy]:
    """A counting wire proxy in front of PgBouncer (connect to `proxy.port`)."""
    upstream = pg_url(PG_POOLED, "postgres")
    with WireProxy(upstream.host or "127.0.0.1", upstream.port or 6432) as wire:
        yield wire


@pytest.fixture
def fault_db(pg_server: None) -> Iterator[str]:
    """A migrated database of its own, so terminating its backends disturbs nobody else."""
    name = create_pg_database("budget_faults")
    try:
        upgrade(pg_url(PG_DIRECT, name))
        yield name
    finally:
        drop_pg_database(name)


@pytest.fixture
def lossy(fault_db: str) -> Iterator[tuple[CommitAckDropper, Database]]:
    """`fault_db` reached through a proxy that, when armed, loses a COMMIT's answer."""
    pooled = make_url(PG_POOLED)
    proxy = CommitAckDropper((pooled.host or "127.0.0.1", pooled.port or 6432))
    url = (
        pg_url(PG_POOLED, fault_db)
        .set(port=proxy.port, query={"sslmode": "disable", "gssencmode": "disable"})
        .render_as_string(hide_password=False)
    )
    database = app_database(url)
    try:
        yield proxy, database
    finally:
        database.close()
        proxy.close()
