"""Turn database and driver exceptions into one-line diagnoses (shared/NEON.md triage).

Each diagnosis names the most likely cause and the first thing to check. Only the first
line of the driver's message is ever used, never SQL parameters, and URLs are masked.
"""

from __future__ import annotations

from budget_tracker.errors import (
    BudgetError,
    Conflict,
    DatabaseUnavailable,
    SchemaNotMigrated,
)

MIGRATE_HINT = "run `alembic upgrade head` (or `budget db upgrade`)"


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
            "no database connection became free in time (pool exhausted): raise "
            "BUDGET_POOL_TIMEOUT or BUDGET_POOL_SIZE, or look for other clients holding "
            "connections"
        )
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    from budget_tracker.db import first_line

    detail = first_line(exc)
    message = detail.lower()
    code = getattr(exc.orig, "pgcode", None)
    if (
        code in ("42P01", "42703")
        or "no such table" in message
        or "no such column" in message
        or ("relation" in message and "does not exist" in message)
    ):
        return SchemaNotMigrated(f"the database schema is missing or out of date: {MIGRATE_HINT}")
    if isinstance(exc, sa_exc.IntegrityError):
        return Conflict(f"the database refused the change: {detail}")
    for needles, diagnosis in _CONNECTION_TRIAGE:
        if any(needle in message for needle in needles):
            return DatabaseUnavailable(f"{diagnosis} ({detail})")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return DatabaseUnavailable(f"database error: {detail}")
    return None


_CONNECTION_TRIAGE: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("password authentication failed", "sasl authentication failed"),
        "the database rejected the password: it is wrong or expired; reset it "
        "(Neon console: Roles) and update DATABASE_URL",
    ),
    (
        ("database", "does not exist"),
        "the database named in DATABASE_URL does not exist: check the name after the host",
    ),
    (
        ("could not translate host name", "name or service not known", "nodename nor servname"),
        "the database host name does not resolve: check the host in DATABASE_URL",
    ),
    (
        ("connection refused", "could not connect to server", "timeout expired", "timed out"),
        "cannot reach the database server: check the host and port in DATABASE_URL, "
        "sslmode=require, and any firewall or VPN on port 5432",
    ),
    (
        (
            "remaining connection slots",
            "too many clients",
            "too many connections",
            "no more connections allowed",
        ),
        "the database has no connection slots left: lower BUDGET_POOL_SIZE, look for leaked "
        "sessions, and use the pooled (-pooler) URL",
    ),
    (
        ("unsupported startup parameter",),
        "a session option was sent through the pooler: move it to SET LOCAL or use the direct URL",
    ),
    (
        (
            "server closed the connection unexpectedly",
            "ssl syscall error",
            "eof detected",
            "terminating connection",
            "connection already closed",
        ),
        "the database closed the connection (compute restarted or suspended) and retries "
        "ran out: try again; keep BUDGET_POOL_PRE_PING on",
    ),
    (
        ("database is locked",),
        "the SQLite file stayed locked by another process: try again when it finishes",
    ),
)
