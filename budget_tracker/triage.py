"""Turn database and driver exceptions into one-line diagnoses.

Each diagnosis names the most likely cause and the first thing to check, then quotes the
first line of the driver's message (scrubbed of anything shaped like a password), never
SQL or parameters. The causes and checks for driver errors are rows of
`driver_errors.DRIVER_ERROR_RULES`, the table the retry loop reads too. "Cannot use the
database" is exit code 3, "schema missing or behind" is 4 (`budget_tracker.errors`).
"""

from __future__ import annotations

import re

from budget_tracker.errors import (
    BudgetError,
    Conflict,
    DatabaseUnavailable,
    SchemaNotMigrated,
)

MIGRATE_HINT = "run `budget db upgrade` (or `alembic upgrade head`)"


_SCHEMA_MESSAGE = re.compile(
    r"no such table|no such column|relation \S+ does not exist|column \S+ does not exist",
    re.IGNORECASE,
)


def diagnose(exc: BaseException, url_variable: str = "DATABASE_URL") -> BudgetError | None:
    """A `BudgetError` describing `exc`, or None when it is not a database problem.

    `url_variable` is the setting that holds the URL in use, named in the advice.
    """
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.startswith("psycopg2"):
        return DatabaseUnavailable(
            "the PostgreSQL driver is not installed: install psycopg2-binary "
            "(pip install psycopg2-binary)"
        )
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return None
    from budget_tracker.driver_errors import diagnosis, first_line, sqlstate

    if isinstance(exc, sa_exc.TimeoutError):
        return DatabaseUnavailable(
            "no database connection became free in time (pool exhausted): look for other "
            "commands holding connections, or raise BUDGET_POOL_TIMEOUT / BUDGET_POOL_SIZE"
        )
    if isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError):
        # Raised before the statement reached the server (a value the driver cannot
        # send); str(exc) would show the SQL and its parameters.
        return DatabaseUnavailable(f"database error: {type(exc.orig).__name__}: {first_line(exc)}")
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    detail = first_line(exc)
    code = sqlstate(exc)
    if code in ("42P01", "42703") or _SCHEMA_MESSAGE.search(detail):
        return SchemaNotMigrated(f"the database schema is missing or out of date: {MIGRATE_HINT}")
    if isinstance(exc, sa_exc.IntegrityError):
        return Conflict(f"the database refused the change: {detail}")
    if code == "42501" and "row-level security" in detail:
        # A row-level security policy refused a write (exit 1, like any refusal).
        return BudgetError(
            "refused by the database: your role may not change this budget (it is shared "
            "with you read-only, or not at all)"
        )
    known = diagnosis(detail, code, url_variable)
    if known is not None:
        return DatabaseUnavailable(known)
    # Any other driver error: still one line, never the statement or its parameters.
    return DatabaseUnavailable(f"database error: {detail}")
