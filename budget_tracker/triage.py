"""Turn database and driver exceptions into one-line diagnoses (shared/NEON.md triage).

Each diagnosis names the most likely cause and the first thing to check, then quotes the
first line of the driver's message (scrubbed of anything shaped like a password), never
SQL or parameters. "Cannot use the database" is exit code 3, "schema missing or behind"
is 4 (`budget_tracker.errors`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from budget_tracker.errors import (
    BudgetError,
    Conflict,
    DatabaseUnavailable,
    SchemaNotMigrated,
)

MIGRATE_HINT = "run `budget db upgrade` (or `alembic upgrade head`)"


@dataclass(frozen=True)
class Rule:
    """A driver message pattern, the likely cause, and the first check."""

    pattern: re.Pattern[str]
    cause: str
    check: str

    def diagnosis(self, detail: str) -> str:
        return f"{self.cause}: {self.check} ({detail})"


def _rule(pattern: str, cause: str, check: str) -> Rule:
    return Rule(re.compile(pattern, re.IGNORECASE), cause, check)


# Order matters: the first matching rule wins, so the specific ones come first.
CONNECTION_RULES: tuple[Rule, ...] = (
    # PgBouncer (and Neon's pooler) answer a wrong SCRAM password or an unknown role with
    # "SASL authentication failed"; PostgreSQL says "password authentication failed".
    _rule(
        r"password authentication failed|sasl authentication failed|no password supplied",
        "the database rejected the user name or password (wrong or expired)",
        "reset the password (Neon console: Roles) and update DATABASE_URL",
    ),
    _rule(
        r'role "[^"]*" does not exist',
        "the database user does not exist",
        "check the user name before the @ in DATABASE_URL",
    ),
    _rule(
        r'database "[^"]*" does not exist|no such database',
        "the database named in DATABASE_URL does not exist",
        "check the name after the host (Neon's default is neondb)",
    ),
    _rule(
        r"could not translate host name|name or service not known|nodename nor servname"
        r"|temporary failure in name resolution",
        "the database host name does not resolve (wrong host or no network)",
        "check the host in DATABASE_URL, then DNS/VPN",
    ),
    _rule(
        r"endpoint id is not specified|inconsistent project name",
        "Neon could not tell which endpoint you mean (the client sent no SNI)",
        "keep the full Neon host name in DATABASE_URL and sslmode=require",
    ),
    _rule(
        r"no pg_hba\.conf entry|ssl/tls required|ssl is not enabled|server does not support ssl"
        r"|sslmode value",
        "the server refused the connection's TLS settings",
        "use sslmode=require in DATABASE_URL (Neon requires TLS)",
    ),
    _rule(
        r"remaining connection slots|too many clients|too many connections"
        r"|no more connections allowed",
        "the database has no connection slots left",
        "lower BUDGET_POOL_SIZE, look for leaked sessions, and use the pooled (-pooler) URL",
    ),
    _rule(
        r"unsupported startup parameter",
        "a session option was sent through the pooler (PgBouncer transaction mode)",
        "remove `options=` from DATABASE_URL: use SET LOCAL in the transaction, or the direct URL",
    ),
    _rule(
        r"connection refused|could not connect to server|timeout expired|timed out"
        r"|couldn't connect to compute node|cannot connect to server|no route to host"
        r"|network is unreachable",
        "cannot reach the database server",
        "check the host and port in DATABASE_URL, sslmode=require, and any firewall or "
        "VPN on the port",
    ),
    _rule(
        r"the database system is (starting up|shutting down|in recovery mode)",
        "the database server is restarting and did not come back within BUDGET_RETRY_SECONDS",
        "try again in a minute; raise BUDGET_RETRY_SECONDS if this is common",
    ),
    _rule(
        r"server closed the connection|ssl syscall error|eof detected|terminating connection"
        r"|connection already closed|connection reset|could not receive data"
        r"|server conn crashed",
        "the database kept closing the connection (compute restarted or suspended) and "
        "retries ran out",
        "try again; keep BUDGET_POOL_PRE_PING on and check the server's status",
    ),
    _rule(
        r"database is locked|database table is locked",
        "the SQLite file stayed locked by another process",
        "try again when the other `budget` command finishes",
    ),
)

# Retried by `Database.run`; reaching the user means the retry budget ran out.
CONTENTION_SQLSTATES = frozenset({"40001", "40P01", "55P03"})

_SCHEMA_MESSAGE = re.compile(
    r"no such table|no such column|relation \S+ does not exist|column \S+ does not exist",
    re.IGNORECASE,
)


def diagnose(exc: BaseException) -> BudgetError | None:
    """A `BudgetError` describing `exc`, or None when it is not a database problem."""
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.startswith("psycopg2"):
        return DatabaseUnavailable(
            "the PostgreSQL driver is not installed: install psycopg2-binary "
            "(pip install psycopg2-binary)"
        )
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return None
    if isinstance(exc, sa_exc.TimeoutError):
        return DatabaseUnavailable(
            "no database connection became free in time (pool exhausted): look for other "
            "commands holding connections, or raise BUDGET_POOL_TIMEOUT / BUDGET_POOL_SIZE"
        )
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    from budget_tracker.driver_errors import first_line

    detail = first_line(exc)
    code = getattr(exc.orig, "pgcode", None)
    if code in ("42P01", "42703") or _SCHEMA_MESSAGE.search(detail):
        return SchemaNotMigrated(f"the database schema is missing or out of date: {MIGRATE_HINT}")
    if isinstance(exc, sa_exc.IntegrityError):
        return Conflict(f"the database refused the change: {detail}")
    if code in CONTENTION_SQLSTATES:
        return DatabaseUnavailable(
            "other transactions kept conflicting with this one (deadlock, serialization "
            "failure or lock timeout) and retries ran out: try again, and raise "
            f"BUDGET_RETRY_SECONDS if it keeps happening ({detail})"
        )
    for rule in CONNECTION_RULES:
        if rule.pattern.search(detail):
            return DatabaseUnavailable(rule.diagnosis(detail))
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return DatabaseUnavailable(f"database error: {detail}")
    return None
