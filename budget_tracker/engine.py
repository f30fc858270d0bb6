"""Engines built from settings: the pool, SQLite's pragmas, the idle ping, lean first connects.

`create_app_engine` builds the app's engine (PostgreSQL through PgBouncer, or a SQLite
file); `instrument_engine` adds connect timing and disconnect detection. Nothing
session-scoped is sent to PostgreSQL at connect time, because on Neon the app talks to
PgBouncer in transaction mode, where session state leaks between clients.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, Dialect, ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from budget_tracker.config import Settings
from budget_tracker.driver_errors import first_line, is_connection_lost
from budget_tracker.schema_version import create_private_file

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_BEGIN_OPTION = "budget_sqlite_begin"


def create_app_engine(
    settings: Settings,
    *,
    url: URL | None = None,
    lean_connect: bool | None = None,
    **overrides: Any,
) -> Engine:
    """Build the engine for `url` (default: the app URL) with the configured pool.

    With `lean_connect` (the default for the app's own URL) a new PostgreSQL connection
    sends nothing before the command's first statement: SQLAlchemy's first-connect probes
    (version, schema, isolation level, string quoting: six statements, each a round trip
    to Neon) are answered from what the server reported when the connection started
    (`answer_dialect_probes_locally`). Engines for other URLs keep SQLAlchemy's probes:
    Alembic reflects the schema and needs the real `current_schema()`.
    """
    lean = (url is None) if lean_connect is None else lean_connect
    url = url if url is not None else settings.database_url
    if url.get_backend_name() == "sqlite":
        return create_sqlite_engine(url, **overrides)
    pool = settings.pool
    options: dict[str, Any] = {
        "pool_size": pool.size,
        "max_overflow": pool.max_overflow,
        "pool_timeout": pool.timeout,
        "pool_recycle": pool.recycle,
        # Pre-ping is ours (`ping_idle_connections`): only connections that sat idle.
        "pool_pre_ping": False,
        # No hstore columns here: skip the per-connection type lookup query.
        "use_native_hstore": False,
        "connect_args": {"connect_timeout": pool.connect_timeout},
    }
    options.update(overrides)
    if options.get("poolclass") is NullPool:
        for key in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle"):
            options.pop(key, None)
    engine = create_engine(url, **options)
    if lean and "isolation_level" not in options:
        answer_dialect_probes_locally(engine.dialect)
    if pool.pre_ping and not options["pool_pre_ping"]:
        ping_idle_connections(engine, idle_seconds=pool.pre_ping_idle)
    return engine


# `ConnectionPoolEntry.info` key: when the connection was last checked in (monotonic).
_IDLE_SINCE = "budget_idle_since"


def ping_idle_connections(engine: Engine, *, idle_seconds: float) -> None:
    """Pessimistic disconnect handling for connections idle at least `idle_seconds`.

    SQLAlchemy's `pool_pre_ping` sends `SELECT 1` on every checkout: a round trip per
    unit of work (1-80 ms on Neon) even for a connection checked in a millisecond ago. The
    connections that die in the pool are idle ones: Neon closes them when the compute
    scales to zero after 5 idle minutes or restarts. So this pings only those, through
    SQLAlchemy's documented pool `checkout` event: raising `DisconnectionError` there makes
    the pool discard the connection and hand out a new one, transparently. A connection
    that dies while hot costs one retry of the unit of work (`Database.run`), never data.
    A new connection is never pinged (it has just proved itself by connecting).
    """
    dialect = engine.dialect

    @event.listens_for(engine.pool, "connect")
    def _fresh(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info.pop(_IDLE_SINCE, None)

    @event.listens_for(engine.pool, "checkin")
    def _idle_from_now(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if dbapi_connection is not None:  # None: invalidated, reconnects on next checkout
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if not (dialect.is_disconnect(exc, dbapi_connection, None) or is_connection_lost(exc)):
                raise
            log.info(
                "pooled connection idle for %.1fs was lost; replacing it: %s",
                time.monotonic() - since,
                first_line(exc),
            )
            raise DisconnectionError(first_line(exc)) from exc


def answer_dialect_probes_locally(dialect: Dialect) -> None:
    """Make the psycopg2 dialect's first-connect checks cost no round trip.

    `dialect.initialize()` still runs and derives its feature flags, but the probe hooks
    it calls answer without a query:
    - server version: libpq's `PQserverVersion`, from the `server_version` parameter the
      server (relayed by PgBouncer) sends when the connection starts;
    - whether backslashes escape in string literals: the `standard_conforming_strings`
      parameter, which PostgreSQL reports at start and on every change (PgBouncer tracks
      it per client);
    - default isolation level and default schema: unknown (None), SQLAlchemy's own
      answer for dialects that cannot tell. Only reflection and `schema_translate_map`
      read the schema, and the app uses neither. The isolation level is only needed to
      undo a per-connection `isolation_level` option when the connection goes back to the
      pool; that reset instead returns psycopg2 to the server's default, so the next
      transaction's plain BEGIN runs at whatever level the server is configured for,
      exactly as before the option was used.
    The first two fall back to SQLAlchemy's query when the local answer is missing.
    tests/test_wire.py checks every answer against the probes' on PostgreSQL and PgBouncer.
    """
    originals = {name: getattr(dialect, name) for name in _PROBE_HOOKS}

    def server_version_info(connection: Connection) -> tuple[int, ...]:
        version = int(getattr(_driver_connection(connection), "server_version", 0) or 0)
        if version <= 0:
            return originals["_get_server_version_info"](connection)  # type: ignore[no-any-return]
        return server_version_tuple(version)

    def set_backslash_escapes(connection: Connection) -> None:
        driver = _driver_connection(connection)
        status = driver.get_parameter_status("standard_conforming_strings")
        if status is None:
            originals["_set_backslash_escapes"](connection)
            return
        dialect._backslash_escapes = status == "off"  # type: ignore[attr-defined]

    def unknown(_connection: Any) -> None:
        # DefaultDialect.initialize() records None for a probe that raises this.
        raise NotImplementedError

    def reset_isolation_level(dbapi_connection: Any) -> None:
        from psycopg2.extensions import ISOLATION_LEVEL_DEFAULT

        dbapi_connection.set_isolation_level(ISOLATION_LEVEL_DEFAULT)

    hooks: dict[str, Callable[..., Any]] = {
        "_get_server_version_info": server_version_info,
        "_set_backslash_escapes": set_backslash_escapes,
        "get_default_isolation_level": unknown,
        "_get_default_schema_name": unknown,
        "reset_isolation_level": reset_isolation_level,
    }
    for name, hook in hooks.items():
        setattr(dialect, name, hook)


_PROBE_HOOKS = ("_get_server_version_info", "_set_backslash_escapes")


def server_version_tuple(version: int) -> tuple[int, ...]:
    """libpq's integer version as SQLAlchemy's tuple: 150020 -> (15, 20), 90624 -> (9, 6, 24)."""
    if version >= 100000:
        return (version // 10000, version % 10000)
    return (version // 10000, version // 100 % 100, version % 100)


def _driver_connection(connection: Connection) -> Any:
    return connection.connection.dbapi_connection


def sql_lower(value: Any) -> str | None:
    """PostgreSQL's `lower()` for SQLite: every script, character by character.

    Python's `str.lower` is the same mapping except for a final capital sigma, which it
    lowers to `ς` by context where PostgreSQL gives `σ`; per character it gives `σ` too.
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)  # as SQLite's lower() does
    if text.isascii() or "\u03a3" not in text:
        return text.lower()
    return "".join(char.lower() for char in text)


def create_sqlite_engine(url: URL, **overrides: Any) -> Engine:
    """SQLite with foreign keys on, WAL, a busy timeout, and transactions we control.

    pysqlite's own transaction handling is switched off so that SQLAlchemy's BEGIN is real
    and a writing unit of work can start with `BEGIN IMMEDIATE` (take the write lock before
    reading), as SQLAlchemy's SQLite documentation recommends.
    """
    path = url.database
    if path and path != ":memory:" and not Path(path).exists():
        create_private_file(Path(path))
    options: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    options.update(overrides)
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()
        # SQLite's lower() folds ASCII only, so `--search MÜLLER` missed `Müller`.
        dbapi_connection.create_function("lower", 1, sql_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


# --- Connection health, invalidation and observability -------------------------------


def instrument_engine(engine: Engine) -> None:
    """Attach connect timing and disconnect detection to `engine` (once)."""
    if not event.contains(engine, "handle_error", _treat_connection_loss_as_disconnect):
        event.listen(engine, "handle_error", _treat_connection_loss_as_disconnect)
    if not event.contains(engine, "do_connect", _timed_connect):
        event.listen(engine, "do_connect", _timed_connect)


def _treat_connection_loss_as_disconnect(context: ExceptionContext) -> None:
    """Make SQLAlchemy invalidate a connection that any of our rules says is lost.

    SQLAlchemy's psycopg2 dialect recognises most disconnect messages, but not all the
    ones PgBouncer and Neon's proxy send (`server conn crashed?`, 57P01 with other
    wording). Without invalidation the dead connection would go back to the pool, and
    the retry could be handed the same corpse.
    """
    if context.is_disconnect or context.original_exception is None:
        return
    if is_connection_lost(context.original_exception):
        log.debug("connection lost, invalidating it: %s", first_line(context.original_exception))
        context.is_disconnect = True


_connect_count = 0


def _timed_connect(
    dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    """Open a DBAPI connection, logging its latency (INFO for the first, then DEBUG)."""
    global _connect_count
    target = _describe_target(dialect, cargs, cparams)
    started = time.monotonic()
    try:
        connection = dialect.connect(*cargs, **cparams)
    except Exception as exc:
        log.info(
            "connecting to %s failed after %.1f ms: %s",
            target,
            (time.monotonic() - started) * 1000,
            first_line(exc),
        )
        raise
    _connect_count += 1
    log.log(
        logging.INFO if _connect_count == 1 else logging.DEBUG,
        "connected to %s in %.1f ms%s",
        target,
        (time.monotonic() - started) * 1000,
        " (first connection: database reachable)" if _connect_count == 1 else "",
    )
    return connection


def _describe_target(dialect: Dialect, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> str:
    """Where a connection goes, without credentials."""
    if dialect.name == "sqlite":
        return f"sqlite file {cargs[0] if cargs else cparams.get('database')}"
    host = cparams.get("host") or "local socket"
    port = cparams.get("port") or 5432
    return f"{dialect.name} {host}:{port}/{cparams.get('dbname') or cparams.get('database')}"
