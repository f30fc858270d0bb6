"""Which driver errors are transient, which mean the connection is lost, and how to quote them.

Imported by the retry loop, the engine's disconnect detection and the triage; quoting a
driver message always goes through `first_line`, which keeps the first line only (never
SQL or parameters) and masks anything shaped like a password.
"""

from __future__ import annotations

import re

from sqlalchemy.exc import DBAPIError

# SQLSTATEs worth retrying as a whole transaction: serialization failure, deadlock, lock
# timeout, admin shutdown / crash / cannot connect now, and the connection exception class.
TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "08000", "08003", "08006"}
)
# SQLSTATEs meaning the connection itself is gone (so it must be invalidated).
CONNECTION_LOST_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "08000", "08003", "08006"})
CONNECTION_LOST_MESSAGES = (
    "server closed the connection unexpectedly",
    "terminating connection",
    "connection already closed",
    "connection not open",
    "connection reset",
    "could not receive data from server",
    "could not send data to server",
    "no connection to the server",
    "ssl syscall error",
    "ssl connection has been closed unexpectedly",
    "eof detected",
    "server conn crashed",
)
TRANSIENT_MESSAGES = (
    *CONNECTION_LOST_MESSAGES,
    "couldn't connect to compute node",
    # PgBouncer restarting, or the compute not accepting connections yet.
    "connection refused",
    "pgbouncer cannot connect to server",
    "database is locked",
    "database table is locked",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "query_wait_timeout",
    "server_login_retry",
)
PERMANENT_MESSAGES = (
    "password authentication failed",
    "sasl authentication failed",
    "could not translate host name",
    "name or service not known",
    "does not exist",
    "no pg_hba.conf entry",
    "unsupported startup parameter",
)


def _message(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).lower()


def is_connection_lost(exc: BaseException) -> bool:
    """Whether `exc` (a DBAPI or SQLAlchemy error) means the connection is unusable."""
    orig = getattr(exc, "orig", None) or exc
    if getattr(orig, "pgcode", None) in CONNECTION_LOST_SQLSTATES:
        return True
    message = _message(exc)
    return any(text in message for text in CONNECTION_LOST_MESSAGES)


def is_transient(exc: DBAPIError) -> bool:
    """Whether retrying the whole unit of work may succeed."""
    message = _message(exc)
    if any(text in message for text in PERMANENT_MESSAGES):
        return False
    if exc.connection_invalidated:
        return True
    code = getattr(exc.orig, "pgcode", None)
    if code in TRANSIENT_SQLSTATES:
        return True
    return any(text in message for text in TRANSIENT_MESSAGES)


# `://user:password@` in URLs and `password=...` in libpq connection strings.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_DSN_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def scrub(text: str) -> str:
    """`text` with anything shaped like a password in a URL or connection string masked."""
    return _DSN_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def first_line(exc: BaseException) -> str:
    """The first line of a driver error, never the SQL or the parameters, scrubbed."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return scrub(text.splitlines()[0]) if text else type(exc).__name__
