"""Which driver errors are transient, which mean the connection is lost, and how to quote them.

Imported by the retry loop, the engine's disconnect detection and the triage; quoting a
driver message always goes through `first_line`, which keeps the first line only (never
SQL or parameters) and masks anything shaped like a password.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

from budget_tracker.redact import scrub


class Retry(enum.Enum):
    """What the retry loop does with a failed unit of work whose error matches a rule."""

    LOST = "the connection is gone: invalidate it and retry the unit of work"
    TRANSIENT = "retry the unit of work"
    ONCE_CONNECTED = "retry only if this process had connected before (a restarting pooler)"
    PERMANENT = "never retry, whatever else the error says"
    NEVER_DECIDED = "no opinion: retried only if SQLAlchemy invalidated the connection"


@dataclass(frozen=True)
class DriverErrorRule:
    """Driver errors that share one retry decision and one diagnosis for the user.

    A rule matches an error whose SQLSTATE is in `sqlstates` or whose message matches
    `pattern` (case-insensitive). `cause` and `check` make the one line the triage prints
    (`the cause: the first check (driver's first line)`); a rule without them leaves the
    wording to the triage's fallback. `{url}` in them names the setting holding the URL in
    use (DATABASE_URL, or DATABASE_URL_UNPOOLED while migrating).
    """

    retry: Retry
    pattern: re.Pattern[str] | None = None
    sqlstates: frozenset[str] = frozenset()
    cause: str | None = None
    check: str | None = None

    def matches(self, message: str, sqlstate: str | None) -> bool:
        if sqlstate is not None and sqlstate in self.sqlstates:
            return True
        return self.pattern is not None and self.pattern.search(message) is not None

    def diagnosis(self, detail: str, url_variable: str = "DATABASE_URL") -> str | None:
        """`cause: check (detail)`, naming `url_variable` as the setting to look at."""
        if self.cause is None:
            return None
        words = f"{self.cause}: {self.check}".replace("{url}", url_variable)
        return f"{words} ({detail})"


def _rule(
    retry: Retry,
    pattern: str | None = None,
    *,
    sqlstates: tuple[str, ...] = (),
    cause: str | None = None,
    check: str | None = None,
) -> DriverErrorRule:
    compiled = re.compile(pattern, re.IGNORECASE) if pattern is not None else None
    return DriverErrorRule(retry, compiled, frozenset(sqlstates), cause, check)


_UNREACHABLE = "cannot reach the database server"
_UNREACHABLE_CHECK = (
    "check the host and port in {url}, sslmode=require, and any firewall or VPN on the port"
)

# Every driver error this program knows, in the order the triage tries them (the first
# rule with a diagnosis wins, so specific rules come before general ones). The retry
# loop looks at all of them: any PERMANENT match means no retry.
DRIVER_ERROR_RULES: tuple[DriverErrorRule, ...] = (
    # Serialization failure, deadlock, lock timeout: another transaction won this time.
    _rule(
        Retry.TRANSIENT,
        sqlstates=("40001", "40P01", "55P03"),
        cause="other transactions kept conflicting with this one (deadlock, serialization "
        "failure or lock timeout) and retries ran out",
        check="try again, and raise BUDGET_RETRY_SECONDS if it keeps happening",
    ),
    # PgBouncer (and Neon's pooler) answer a wrong SCRAM password or an unknown role with
    # "SASL authentication failed"; PostgreSQL says "password authentication failed".
    _rule(
        Retry.PERMANENT,
        r"password authentication failed|sasl authentication failed|no password supplied",
        cause="the database rejected the user name or password (wrong or expired)",
        check="reset the password (Neon console: Roles) and update {url}",
    ),
    _rule(
        Retry.PERMANENT,
        r'role "[^"]*" does not exist',
        cause="the database user does not exist",
        check="check the user name before the @ in {url}",
    ),
    _rule(
        Retry.PERMANENT,
        r'database "[^"]*" does not exist|no such database',
        cause="the database named in {url} does not exist",
        check="check the name after the host (Neon's default is neondb)",
    ),
    _rule(
        Retry.PERMANENT,
        r"could not translate host name|name or service not known|nodename nor servname"
        r"|temporary failure in name resolution",
        cause="the database host name does not resolve (wrong host or no network)",
        check="check the host in {url}, then DNS/VPN",
    ),
    _rule(
        Retry.NEVER_DECIDED,
        r"endpoint id is not specified|inconsistent project name",
        cause="Neon could not tell which endpoint you mean (the client sent no SNI)",
        check="keep the full Neon host name in {url} and sslmode=require",
    ),
    # sslmode=require (or stronger) is in the URL, and the server answered "no TLS here".
    _rule(
        Retry.PERMANENT,
        r"server does not support ssl",
        cause="the server does not offer TLS, and {url} requires it (sslmode)",
        check="check that {url} points at the right server and port (Neon's offer TLS); "
        "for a server of your own, enable ssl in its configuration",
    ),
    _rule(
        Retry.PERMANENT,
        r"no pg_hba\.conf entry|ssl/tls required|ssl is not enabled|sslmode value",
        cause="the server refused the connection's TLS settings",
        check="use sslmode=require in {url} (Neon requires TLS)",
    ),
    _rule(
        Retry.NEVER_DECIDED,
        r"remaining connection slots|too many clients|too many connections"
        r"|no more connections allowed",
        cause="the database has no connection slots left",
        check="lower BUDGET_POOL_SIZE, look for leaked sessions, and use the pooled (-pooler) URL",
    ),
    _rule(
        Retry.PERMANENT,
        r"unsupported startup parameter",
        cause="a session option was sent through the pooler (PgBouncer transaction mode)",
        check="remove `options=` from {url}: use SET LOCAL in the transaction, or the direct URL",
    ),
    # A restarting PgBouncer refuses connections for a moment; so does a wrong port or a
    # stopped server, forever. Only a process that has connected before waits it out.
    _rule(
        Retry.ONCE_CONNECTED,
        r"connection refused",
        cause=_UNREACHABLE,
        check=_UNREACHABLE_CHECK,
    ),
    # Neon's proxy while the compute wakes up, PgBouncer while its server restarts.
    _rule(
        Retry.TRANSIENT,
        r"couldn't connect to compute node|pgbouncer cannot connect to server",
        cause=_UNREACHABLE,
        check=_UNREACHABLE_CHECK,
    ),
    _rule(
        Retry.NEVER_DECIDED,
        r"could not connect to server|timeout expired|timed out|cannot connect to server"
        r"|no route to host|network is unreachable",
        cause=_UNREACHABLE,
        check=_UNREACHABLE_CHECK,
    ),
    _rule(
        Retry.TRANSIENT,
        r"the database system is (starting up|shutting down|in recovery mode)",
        cause="the database server is restarting and did not come back within BUDGET_RETRY_SECONDS",
        check="try again in a minute; raise BUDGET_RETRY_SECONDS if this is common",
    ),
    # Admin shutdown, crash, cannot connect now, and the connection exception class; and
    # the messages PgBouncer and Neon's proxy send when they drop a connection, which
    # SQLAlchemy's dialect does not all recognise as disconnects.
    _rule(
        Retry.LOST,
        r"server closed the connection|terminating connection|connection already closed"
        r"|connection not open|connection reset|could not receive data from server"
        r"|could not send data to server|no connection to the server|ssl syscall error"
        r"|ssl connection has been closed unexpectedly|eof detected|server conn crashed",
        sqlstates=("57P01", "57P02", "57P03", "08000", "08003", "08006"),
        cause="the database kept closing the connection (compute restarted or suspended) and "
        "retries ran out",
        check="try again; keep BUDGET_POOL_PRE_PING on and check the server's status",
    ),
    _rule(
        Retry.TRANSIENT,
        r"database is locked|database table is locked",
        cause="the SQLite file stayed locked by another process",
        check="try again when the other `budget` command finishes",
    ),
    _rule(
        Retry.PERMANENT,
        r"database or disk is full|no space left on device|could not extend file",
        sqlstates=("53100",),
        cause="the disk holding the database is full",
        check="free some space, then run the command again (nothing was written)",
    ),
    _rule(
        Retry.PERMANENT,
        r"file is not a database|database disk image is malformed",
        cause="the SQLite file is not a usable Budget Tracker database",
        check="move it away, or set BUDGET_DB_PATH to another file",
    ),
    _rule(
        Retry.PERMANENT,
        r"unable to open database file|attempt to write a readonly database",
        cause="the SQLite file cannot be opened for writing",
        check="check that BUDGET_DB_PATH names a file you own in a writable directory",
    ),
    _rule(
        Retry.PERMANENT,
        r"permission denied for",
        sqlstates=("42501",),
        cause="the database role lacks a privilege this command needs",
        check="grant the role access to the app's tables, or use the role that owns them",
    ),
    # PgBouncer could not get a server connection in time / is retrying a server login.
    _rule(Retry.TRANSIENT, r"query_wait_timeout|server_login_retry"),
    # Anything else that does not exist (a table, a column) will not appear on retry.
    _rule(Retry.PERMANENT, r"does not exist"),
)


def _message(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE the server sent with `exc` (a DBAPI or SQLAlchemy error), if any."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "pgcode", None)
    return code if isinstance(code, str) else None


def matching_rules(exc: BaseException) -> list[DriverErrorRule]:
    """The rules `exc` matches, in table order (its whole message, not only the first line)."""
    message, code = _message(exc), sqlstate(exc)
    return [rule for rule in DRIVER_ERROR_RULES if rule.matches(message, code)]


def diagnosis(detail: str, code: str | None, url_variable: str = "DATABASE_URL") -> str | None:
    """The first rule's diagnosis for a driver error quoted as `detail` with SQLSTATE `code`."""
    for rule in DRIVER_ERROR_RULES:
        if rule.cause is not None and rule.matches(detail, code):
            return rule.diagnosis(detail, url_variable)
    return None


def is_connection_lost(exc: BaseException) -> bool:
    """Whether `exc` (a DBAPI or SQLAlchemy error) means the connection is unusable."""
    return any(rule.retry is Retry.LOST for rule in matching_rules(exc))


def is_transient(exc: DBAPIError, *, connected_before: bool = True) -> bool:
    """Whether retrying the whole unit of work may succeed.

    `connected_before`: whether this process has had a working connection to the same
    database; a refused connection is retried only then.
    """
    rules = matching_rules(exc)
    if any(rule.retry is Retry.PERMANENT for rule in rules):
        return False
    if exc.connection_invalidated:
        return True
    retried = {Retry.LOST, Retry.TRANSIENT}
    if connected_before:
        retried.add(Retry.ONCE_CONNECTED)
    return any(rule.retry in retried for rule in rules)


def first_line(exc: BaseException) -> str:
    """The first line of a driver error, never the SQL or the parameters, scrubbed."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return scrub(text.splitlines()[0]) if text else type(exc).__name__
