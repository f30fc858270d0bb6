"""Error triage: every database failure becomes one line naming the cause and the first check.

The cases this machine can produce are produced for real against PostgreSQL and PgBouncer
(wrong password, closed port, unknown database, exhausted pool, a startup parameter the
pooler rejects, an unmigrated database, a missing driver), through the real CLI, and each
asserts the message, the exit code, and that no password appears anywhere, logs included.
The rest of the driver-error table is checked with the driver's real exception classes.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg2
import pytest
from click.testing import CliRunner
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.config import load_settings
from budget_tracker.driver_errors import (
    DRIVER_ERROR_RULES,
    Retry,
    first_line,
    is_connection_lost,
    is_transient,
)
from budget_tracker.errors import (
    EXIT_CONFIG,
    EXIT_DB_UNAVAILABLE,
    EXIT_REFUSED,
    EXIT_SCHEMA,
    Conflict,
    DatabaseUnavailable,
    SchemaNotMigrated,
)
from budget_tracker.migrate import upgrade
from budget_tracker.redact import scrub
from budget_tracker.triage import diagnose
from budget_tracker.unit_of_work import Database
from tests.conftest import (
    PG_DIRECT,
    PG_PASSWORD,
    PG_POOLED,
    create_pg_database,
    drop_pg_database,
    libpq_dsn,
    pg_url,
)

WRONG_PASSWORD = "Wr0ng-Secret-9q"
SECRETS = (WRONG_PASSWORD, PG_PASSWORD or "budget-test")
# A command that goes through `Database.run`, the retry loop and the top-level triage.
READ_COMMAND = ["expenses"]


def pooled(database: str, **parts: Any) -> str:
    return pg_url(PG_POOLED, database).set(**parts).render_as_string(hide_password=False)


def run_cli(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m budget_tracker ARGS` with the test environment plus `env`."""
    return subprocess.run(
        [sys.executable, "-m", "budget_tracker", *args],
        env={**os.environ, "BUDGET_RETRY_SECONDS": "0", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_no_secret(*texts: str) -> None:
    for secret in SECRETS:
        for output in texts:
            assert secret not in output


def error_line(stderr: str) -> str:
    """The one `Error:` line (with -v, log lines come before it)."""
    lines = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def fresh_database(pg_server: None) -> Iterator[str]:
    """An empty PostgreSQL database: no schema at all."""
    name = create_pg_database("budget_triage")
    try:
        yield name
    finally:
        drop_pg_database(name)


# --- produced for real, end to end -------------------------------------------------------


def test_wrong_password_through_pgbouncer(pg_database: str) -> None:
    # PgBouncer checks SCRAM passwords itself and says "SASL authentication failed".
    result = run_cli(
        ["-vv", *READ_COMMAND], {"DATABASE_URL": pooled(pg_database, password=WRONG_PASSWORD)}
    )
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert error_line(result.stderr) == (
        "Error: the database rejected the user name or password (wrong or expired): reset the "
        "password (Neon console: Roles) and update DATABASE_URL (connection to server at "
        '"127.0.0.1", port 6432 failed: FATAL:  SASL authentication failed)'
    )
    assert_no_secret(result.stdout, result.stderr)
    # Not retried: a bad password cannot succeed on retry.
    assert "retry" not in result.stderr


def test_debug_shows_the_traceback_but_not_the_password(pg_database: str) -> None:
    result = run_cli(
        ["--debug", "-vv", *READ_COMMAND],
        {"DATABASE_URL": pooled(pg_database, password=WRONG_PASSWORD)},
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "SASL authentication failed" in result.stderr
    assert_no_secret(result.stdout, result.stderr)


def test_closed_port_is_diagnosed_at_once() -> None:
    url = f"postgresql://budget:{WRONG_PASSWORD}@127.0.0.1:1/budget"
    started = time.monotonic()
    result = run_cli(["-v", *READ_COMMAND], {"DATABASE_URL": url, "BUDGET_RETRY_SECONDS": "30"})
    elapsed = time.monotonic() - started
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert error_line(result.stderr).startswith(
        "Error: cannot reach the database server: check the host and port in DATABASE_URL, "
        'sslmode=require, and any firewall or VPN on the port (connection to server at "127.0.0.1"'
        ", port 1 failed: Connection refused)"
    )
    # Never connected: a refusal is a wrong port or a stopped server, not a restart to wait
    # out, so it is not retried (the process start-up is most of the time).
    assert "retry" not in result.stderr
    # Retrying would take the whole 30 s allowed; well under it means no retry happened,
    # without betting on how fast a loaded machine starts Python.
    assert elapsed < 20
    assert_no_secret(result.stdout, result.stderr)


def test_unknown_database(pg_server: None) -> None:
    result = run_cli(["-vv", *READ_COMMAND], {"DATABASE_URL": pooled("budget_no_such_db")})
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert error_line(result.stderr) == (
        "Error: the database named in DATABASE_URL does not exist: check the name after the "
        'host (Neon\'s default is neondb) (connection to server at "127.0.0.1", port 6432 '
        'failed: FATAL:  database "budget_no_such_db" does not exist)'
    )
    assert_no_secret(result.stdout, result.stderr)


def test_startup_parameter_rejected_by_the_pooler(pg_database: str) -> None:
    url = pooled(pg_database, query={"options": "-c statement_timeout=5000"})
    result = run_cli(["-vv", *READ_COMMAND], {"DATABASE_URL": url})
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert error_line(result.stderr) == (
        "Error: a session option was sent through the pooler (PgBouncer transaction mode): "
        "remove `options=` from DATABASE_URL: use SET LOCAL in the transaction, or the direct "
        'URL (connection to server at "127.0.0.1", port 6432 failed: FATAL:  unsupported '
        "startup parameter: options)"
    )
    assert_no_secret(result.stdout, result.stderr)


def test_schema_not_migrated(fresh_database: str) -> None:
    result = run_cli(["-vv", *READ_COMMAND], {"DATABASE_URL": pooled(fresh_database)})
    assert result.returncode == EXIT_SCHEMA
    assert error_line(result.stderr) == (
        "Error: the database schema is missing or out of date: run `budget db upgrade` "
        "(or `alembic upgrade head`)"
    )
    assert_no_secret(result.stdout, result.stderr)


def test_missing_driver(pg_database: str) -> None:
    # `None` in sys.modules makes `import psycopg2` fail exactly like an absent package.
    probe = (
        "import sys; sys.modules['psycopg2'] = None\n"
        "from budget_tracker.cli import main\n"
        "main(sys.argv[1:], prog_name='budget')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *READ_COMMAND],
        env={**os.environ, "DATABASE_URL": pooled(pg_database)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert error_line(result.stderr) == (
        "Error: the PostgreSQL driver is not installed: install psycopg2-binary "
        "(pip install psycopg2-binary)"
    )


def test_pool_exhausted(pg_database: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(
        {
            "DATABASE_URL": pooled(pg_database),
            "BUDGET_POOL_SIZE": "1",
            "BUDGET_MAX_OVERFLOW": "0",
            "BUDGET_POOL_TIMEOUT": "0.2",
        }
    )
    database = Database(settings)
    try:
        with database.engine.connect(), caplog.at_level(logging.INFO, "budget_tracker"):
            # Another unit of work holds the only connection.
            result = CliRunner().invoke(
                main, ["-v", *READ_COMMAND], obj=AppState(database=database)
            )
    finally:
        database.close()
    assert result.exit_code == EXIT_DB_UNAVAILABLE
    assert result.stderr == (
        "Error: no database connection became free in time (pool exhausted): look for other "
        "commands holding connections, or raise BUDGET_POOL_TIMEOUT / BUDGET_POOL_SIZE\n"
    )
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"
    assert re.search(
        stamp + r" pool exhausted: 1 of 1 connections checked out; waiting up to 0.2s", caplog.text
    )
    assert re.search(stamp + r" pool exhausted: no connection became free within", caplog.text)


def test_db_check_reports_a_wrong_password(pg_database: str) -> None:
    result = run_cli(
        ["-vv", "db", "check"], {"DATABASE_URL": pooled(pg_database, password=WRONG_PASSWORD)}
    )
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert "FAIL  connection     the database rejected the user name or password" in result.stdout
    assert "password ***" in result.stdout
    assert_no_secret(result.stdout, result.stderr)


def test_retry_and_connect_logs_carry_no_password(
    pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(load_settings({"DATABASE_URL": pooled(pg_database)}))
    try:
        with caplog.at_level(logging.DEBUG, "budget_tracker"):
            assert database.run(lambda session: session.scalar(text("SELECT 1"))) == 1
    finally:
        database.close()
    assert "127.0.0.1:6432" in caplog.text
    assert_no_secret(caplog.text)


# --- the rest of the table, with the driver's own exception classes -----------------------


def operational(message: str, pgcode: str | None = None) -> sa_exc.OperationalError:
    error = psycopg2.OperationalError(message)
    if pgcode is not None:
        error = _with_pgcode(message, pgcode)
    return sa_exc.OperationalError("SELECT 1", {}, error)


def _with_pgcode(message: str, pgcode: str) -> psycopg2.OperationalError:
    # psycopg2 sets pgcode from the server; for a synthetic error a subclass provides it.
    class ServerError(psycopg2.OperationalError):  # type: ignore[misc]
        pass

    error = ServerError(message)
    ServerError.pgcode = pgcode
    return error


TABLE = [
    (
        'could not translate host name "db.example.invalid" to address: Name or service not known',
        "the database host name does not resolve (wrong host or no network)",
    ),
    (
        "server closed the connection unexpectedly\n\tThis probably means the server terminated",
        "the database kept closing the connection",
    ),
    ("SSL SYSCALL error: EOF detected", "the database kept closing the connection"),
    (
        "FATAL:  remaining connection slots are reserved for non-replication superuser roles",
        "the database has no connection slots left",
    ),
    ("FATAL:  sorry, too many clients already", "the database has no connection slots left"),
    (
        'connection to server at "127.0.0.1", port 5432 failed: timeout expired',
        "cannot reach the database server",
    ),
    ("ERROR:  couldn't connect to compute node", "cannot reach the database server"),
    (
        'FATAL:  password authentication failed for user "alex"',
        "the database rejected the user name or password",
    ),
    (
        "ERROR:  Endpoint ID is not specified. Either please upgrade the postgres client library",
        "Neon could not tell which endpoint you mean",
    ),
    ("FATAL:  the database system is starting up", "the database server is restarting"),
    ("database is locked", "the SQLite file stayed locked by another process"),
]


@pytest.mark.parametrize(("message", "cause"), TABLE, ids=[cause for _, cause in TABLE])
def test_triage_table(message: str, cause: str) -> None:
    error = diagnose(operational(message))
    assert isinstance(error, DatabaseUnavailable)
    assert str(error).startswith(cause)
    assert error.exit_code == EXIT_DB_UNAVAILABLE
    assert "\n" not in str(error)


def test_undefined_table_means_schema_not_migrated() -> None:
    error = diagnose(
        sa_exc.ProgrammingError("SELECT", {}, _with_pgcode('relation "users"', "42P01"))
    )
    assert isinstance(error, SchemaNotMigrated)
    assert error.exit_code == EXIT_SCHEMA


def test_integrity_error_is_a_refusal() -> None:
    orig = psycopg2.IntegrityError('duplicate key value violates unique constraint "uq_x"')
    error = diagnose(sa_exc.IntegrityError("INSERT", {}, orig))
    assert isinstance(error, Conflict)
    assert error.exit_code == EXIT_REFUSED


@pytest.mark.parametrize(
    ("message", "pgcode"),
    [
        ("deadlock detected", "40P01"),
        ("could not serialize access due to concurrent update", "40001"),
        ("canceling statement due to lock timeout", "55P03"),
    ],
)
def test_contention_after_retries_says_so(message: str, pgcode: str) -> None:
    error = diagnose(operational(message, pgcode))
    assert isinstance(error, DatabaseUnavailable)
    assert str(error) == (
        "other transactions kept conflicting with this one (deadlock, serialization failure "
        "or lock timeout) and retries ran out: try again, and raise BUDGET_RETRY_SECONDS if it "
        f"keeps happening ({message})"
    )


def test_a_plain_bug_is_not_disguised() -> None:
    assert diagnose(ValueError("boom")) is None


@pytest.mark.parametrize(
    ("message", "pgcode", "transient"),
    [
        ("terminating connection due to administrator command", "57P01", True),
        ("server closed the connection unexpectedly", None, True),
        ("SSL SYSCALL error: EOF detected", None, True),
        ("connection to server failed: Connection refused", None, True),
        ("could not serialize access due to concurrent update", "40001", True),
        ("FATAL:  SASL authentication failed", None, False),
        ('could not translate host name "x" to address', None, False),
        ('duplicate key value violates unique constraint "uq"', "23505", False),
        ("FATAL:  unsupported startup parameter: options", None, False),
    ],
)
def test_what_is_retried(message: str, pgcode: str | None, transient: bool) -> None:
    assert is_transient(operational(message, pgcode)) is transient


def test_refused_is_retried_only_once_connected() -> None:
    refused = operational("connection to server failed: Connection refused")
    assert is_transient(refused, connected_before=True)
    assert not is_transient(refused, connected_before=False)
    # Neon's proxy while a compute wakes up from zero: retried even on the first connect.
    waking = operational("ERROR:  couldn't connect to compute node")
    assert is_transient(waking, connected_before=False)


@pytest.mark.parametrize(
    ("message", "pgcode", "lost"),
    [
        ("terminating connection due to administrator command", "57P01", True),
        ("FATAL:  server conn crashed?", None, True),
        ("SSL connection has been closed unexpectedly", None, True),
        ("could not serialize access due to concurrent update", "40001", False),
        ("FATAL:  the database system is starting up", None, False),
    ],
)
def test_what_means_the_connection_is_lost(message: str, pgcode: str | None, lost: bool) -> None:
    assert is_connection_lost(operational(message, pgcode)) is lost


def test_one_table_serves_retry_and_triage() -> None:
    # Every rule matches something, and a diagnosis always has both its cause and its check.
    for rule in DRIVER_ERROR_RULES:
        assert rule.pattern is not None or rule.sqlstates
        assert (rule.cause is None) is (rule.check is None)
    # The triage quotes the same rule the retry loop decided on: a retried error that ran
    # out of retries gets that rule's words.
    lost = [rule for rule in DRIVER_ERROR_RULES if rule.retry is Retry.LOST]
    assert len(lost) == 1
    error = diagnose(operational("server conn crashed?"))
    assert str(error) == lost[0].diagnosis("server conn crashed?")


def test_passwords_are_scrubbed_from_driver_messages() -> None:
    assert (
        scrub("bad url postgresql://alex:s3cret@host/db") == "bad url postgresql://alex:***@host/db"
    )
    assert scrub("dsn: user=alex password=s3cret host=h") == "dsn: user=alex password=*** host=h"
    assert scrub("password='s 3 cret' host=h") == "password=*** host=h"
    assert first_line(operational("oops postgres://a:s3cret@h/d\nLINE 2")) == (
        "oops postgres://a:***@h/d"
    )


def test_sqlalchemy_reprs_mask_the_password(pg_database: str) -> None:
    settings = load_settings({"DATABASE_URL": pooled(pg_database, password=WRONG_PASSWORD)})
    database = Database(settings)
    try:
        shown = [str(settings.database_url), repr(settings.database_url), repr(database.engine)]
        with pytest.raises(sa_exc.OperationalError) as caught:
            database.run(lambda session: session.scalar(text("SELECT 1")))
        shown += [str(caught.value), repr(caught.value)]
    finally:
        database.close()
    assert_no_secret(*shown)
    assert "***" in shown[0]


def test_sslmode_require_and_a_server_without_tls(pg_database: str) -> None:
    # The URL already says sslmode=require: the advice is about the server, not the URL.
    url = pooled(pg_database, query={"sslmode": "require"})
    result = run_cli(["expenses"], {"DATABASE_URL": url})
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert error_line(result.stderr).startswith(
        "Error: the server does not offer TLS, and DATABASE_URL requires it (sslmode): check "
        "that DATABASE_URL points at the right server and port"
    )


def test_a_missing_privilege_is_one_line_without_sql_or_parameters(
    fresh_database: str,
) -> None:
    # A role that may not write the users table (here: the owner, having revoked its own
    # INSERT, which PostgreSQL allows; the test role may not create other roles).
    direct = pg_url(PG_DIRECT, fresh_database)
    upgrade(direct)
    connection = psycopg2.connect(libpq_dsn(direct.render_as_string(hide_password=False)))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("REVOKE INSERT ON users FROM CURRENT_USER")
    connection.close()
    env = {"DATABASE_URL": pooled(fresh_database)}
    result = run_cli(["user", "add", "secret.person@example.com", "--name", "S"], env)
    assert result.returncode == EXIT_DB_UNAVAILABLE, result.stderr
    assert error_line(result.stderr).startswith(
        "Error: the database role lacks a privilege this command needs: grant the role access "
        "to the app's tables, or use the role that owns them (permission denied for table users)"
    )
    for leak in ("secret.person", "INSERT", "Background on this error"):
        assert leak not in result.stderr
    assert_no_secret(result.stdout, result.stderr)


def test_migration_errors_name_the_unpooled_url(pg_database: str) -> None:
    env = {
        "DATABASE_URL": pooled(pg_database),
        "DATABASE_URL_UNPOOLED": pg_url(PG_DIRECT, "budget_no_such_db").render_as_string(
            hide_password=False
        ),
    }
    result = run_cli(["db", "upgrade"], env)
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert error_line(result.stderr).startswith(
        "Error: the database named in DATABASE_URL_UNPOOLED does not exist: check the name "
        "after the host"
    )
    assert_no_secret(result.stdout, result.stderr)


def test_db_upgrade_refuses_a_pooler_direct_url() -> None:
    pooler = (
        "postgresql://alex:s3cret@ep-cool-rain-123456-pooler.us-east-2.aws.neon.tech/neondb"
        "?sslmode=require"
    )
    result = run_cli(["db", "upgrade"], {"DATABASE_URL": pooler, "DATABASE_URL_UNPOOLED": pooler})
    assert (result.returncode, result.stderr) == (
        EXIT_CONFIG,
        "Error: migrations would run through the pooler "
        "(ep-cool-rain-123456-pooler.us-east-2.aws.neon.tech): set DATABASE_URL_UNPOOLED to the "
        "direct URL (the host without -pooler)\n",
    )
