"""The deployment sanity sequence behind `budget db check`.

Configuration, the URL's anatomy (password masked), pooled vs direct endpoints, the
connection and its latency, TLS, the server version, the schema revision against the
code's head, the expected tables, one create-and-read round trip (rolled back), and the
pool. Each step passes, fails or is skipped (when an earlier failure makes it
meaningless); a step that does not apply to the backend passes and says so.

Unlike the other services this one takes the `Database`, not a session: checking the
connection is its job, so it cannot run inside a unit of work that needs one.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import QueuePool

from budget_tracker.config import SECURE_SSLMODES, Settings, is_loopback
from budget_tracker.errors import EXIT_CONFIG, EXIT_OK, EXIT_REFUSED, EXIT_SCHEMA
from budget_tracker.models import TABLE_NAMES, User
from budget_tracker.schema_version import (
    SCHEMA_HEAD,
    is_unknown_revision,
    newer_than_this_version,
    readable_by_others,
)
from budget_tracker.unit_of_work import Database

PASS, FAIL, SKIP, WARN = "pass", "fail", "skip", "warn"
"""WARN: works, but something deserves attention (it does not change the exit code)."""
ROLE_WARNING = "row-level security does not apply to this connection"
MASK = "***"


class Remedy(StrEnum):
    """What a person can do about a step's finding (the command line says how)."""

    UPGRADE = "upgrade"
    """Migrate the schema to this version's head."""
    ROLES = "roles"
    """Give each person a role of their own, so that row-level security applies to them."""


@dataclass(frozen=True)
class Step:
    name: str
    status: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    exit_code: int = EXIT_OK
    """What `budget db check` exits with when this is the first failing step."""
    remedy: Remedy | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.name, "status": self.status, "detail": self.detail, **self.data}


@dataclass(frozen=True)
class HealthReport:
    steps: tuple[Step, ...]

    @property
    def ok(self) -> bool:
        return all(step.status in (PASS, WARN) for step in self.steps)

    @property
    def exit_code(self) -> int:
        for step in self.steps:
            if step.status == FAIL:
                return step.exit_code
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "steps": [step.as_dict() for step in self.steps],
        }


def check_database(database: Database) -> HealthReport:
    """Run every step in order; later steps are skipped when the connection fails."""
    settings = database.settings
    steps = [
        configuration_step(settings),
        url_step(settings.database_url),
        endpoints_step(settings),
    ]
    path = settings.sqlite_path
    if path is not None and not path.exists():
        # Nothing to connect to, and a check must not create the file.
        steps.append(Step("connection", PASS, f"no database file yet at {path}"))
        steps.append(tls_step(settings, None))
        steps.append(_sqlite_server_step())
        steps.append(_sqlite_role_step())
        steps.extend(_schema_steps(frozenset(), None))
        steps.append(Step("round-trip", SKIP, "skipped: the schema is not at head"))
        steps.append(Step("pool", SKIP, "skipped: no database file"))
        return HealthReport(tuple(steps))
    connection_step, live = _connect(database)
    steps.append(connection_step)
    steps.append(tls_step(settings, live))
    if live is None:
        later = ("server", "role", "schema", "tables", "round-trip", "data")
        steps.extend(Step(name, SKIP, "skipped: no connection") for name in later)
    else:
        steps.append(live.server)
        steps.append(live.role)
        steps.extend(_schema_steps(live.tables, live.revision))
        if all(step.status == PASS for step in steps[-2:]):
            steps.append(_round_trip(database))
            steps.append(_data(database))
        else:
            steps.append(Step("round-trip", SKIP, "skipped: the schema is not at head"))
            steps.append(Step("data", SKIP, "skipped: the schema is not at head"))
    steps.append(pool_step(database))
    return HealthReport(tuple(steps))


def configuration_step(settings: Settings) -> Step:
    variables = ", ".join(settings.sources) or "none"
    env_file = settings.env_file or "none found"
    where = f"variables set: {variables}; .env file: {env_file}"
    if settings.is_sqlite and "DATABASE_URL" not in settings.sources:
        where += f" (DATABASE_URL unset: local SQLite file {settings.database_url.database})"
    return Step(
        "configuration",
        PASS,
        where,
        {"variables": list(settings.sources), "env_file": settings.env_file},
    )


def url_anatomy(url: URL) -> dict[str, Any]:
    """The parts of a URL, with the password replaced by `***` (or None when absent)."""
    return {
        "driver": url.drivername,
        "user": url.username,
        "password": MASK if url.password else None,
        "host": url.host,
        "port": url.port,
        "database": url.database,
        "query": {
            key: MASK if key.lower() == "password" else _query_value(url, key) for key in url.query
        },
    }


def url_step(url: URL) -> Step:
    parts = url_anatomy(url)
    data: dict[str, Any] = {"url": parts}
    if url.get_backend_name() == "sqlite":
        detail = f"driver {parts['driver']}, file {parts['database']}"
        if parts["database"] and readable_by_others(Path(parts["database"])):
            data["readable_by_others"] = True
            detail += f"; warning: other users can read this file (chmod 600 {parts['database']})"
    else:
        query = " ".join(f"{key}={value}" for key, value in parts["query"].items()) or "none"
        detail = (
            f"driver {parts['driver']}, user {parts['user']}, password "
            f"{parts['password'] or '(none)'}, host {parts['host']}, port {parts['port'] or 5432}"
            f", database {parts['database']}, parameters {query}"
        )
    return Step("url", PASS, detail, data)


def is_neon_pooled(url: URL) -> bool:
    return (url.host or "").partition(".")[0].endswith("-pooler")


def is_neon(url: URL) -> bool:
    return (url.host or "").endswith(".neon.tech")


def endpoints_step(settings: Settings) -> Step:
    """The app should use Neon's pooled endpoint and migrations a direct one."""
    app, migrations = settings.database_url, settings.migration_url
    if settings.is_sqlite:
        return Step("endpoints", PASS, "not applicable (SQLite: no pooler)")
    data: dict[str, Any] = {
        "app_pooled": is_neon_pooled(app),
        "migrations_host": migrations.host,
        "migrations_port": migrations.port,
        "direct_url_derived": settings.direct_url_derived,
    }
    where = f"{migrations.host}:{migrations.port or 5432}"
    if is_neon_pooled(migrations):
        return Step(
            "endpoints",
            FAIL,
            f"migrations would run through the pooler ({migrations.host}): set "
            "DATABASE_URL_UNPOOLED to the direct URL (the host without -pooler)",
            data,
            EXIT_CONFIG,
        )
    if settings.direct_url_derived:
        source = "derived by dropping -pooler"
    elif migrations == app:
        source = "the same URL as the app"
    else:
        source = "DATABASE_URL_UNPOOLED"
    if is_neon_pooled(app):
        detail = f"app uses Neon's pooled endpoint; migrations use direct {where} ({source})"
    elif is_neon(app):
        detail = (
            f"app uses Neon's direct endpoint (works; the -pooler URL scales better); "
            f"migrations use {where} ({source})"
        )
    else:
        detail = f"not a Neon pooled endpoint; migrations use {where} ({source})"
    return Step("endpoints", PASS, detail, data)


def tls_step(settings: Settings, live: _Live | None) -> Step:
    if settings.is_sqlite:
        return Step("tls", PASS, "not applicable (local SQLite file)")
    parts = []
    data: dict[str, Any] = {}
    ok = True
    for label, url in (("app", settings.database_url), ("migrations", settings.migration_url)):
        sslmode = _query_value(url, "sslmode")
        data[f"{label}_sslmode"] = sslmode
        if is_loopback(url.host):
            parts.append(f"{label}: not required on loopback (sslmode={sslmode or 'unset'})")
        elif sslmode in SECURE_SSLMODES:
            parts.append(f"{label}: sslmode={sslmode}")
        else:
            ok = False
            parts.append(f"{label}: sslmode={sslmode or 'unset'} does not guarantee TLS")
    if live is not None:
        data["encrypted"] = live.ssl_in_use
        protocol = f" ({live.ssl_protocol})" if live.ssl_protocol else ""
        parts.append(f"connection encrypted: {'yes' if live.ssl_in_use else 'no'}{protocol}")
        if not live.ssl_in_use and not is_loopback(settings.database_url.host):
            ok = False
    return Step("tls", PASS if ok else FAIL, "; ".join(parts), data, EXIT_CONFIG)


def pool_step(database: Database) -> Step:
    """The configured pool and what it holds right now."""
    try:
        pool = database.engine.pool
    except ModuleNotFoundError:  # the driver is missing: the connection step said so
        return Step("pool", SKIP, "skipped: no engine")
    configured = database.settings.pool
    data: dict[str, Any] = {"class": type(pool).__name__}
    if isinstance(pool, QueuePool):
        data.update(
            # The limits the engine was built with (settings), not the pool's private state.
            size=configured.size,
            max_overflow=configured.max_overflow,
            timeout=configured.timeout,
            recycle=configured.recycle,
            # Pinging is db.ping_idle_connections' (idle connections only), not the pool's.
            pre_ping=configured.pre_ping,
            pre_ping_idle=configured.pre_ping_idle,
            checked_out=pool.checkedout(),
            idle=pool.checkedin(),
            overflow=pool.overflow(),
        )
        ping = f"after {configured.pre_ping_idle:g}s idle" if configured.pre_ping else "off"
        detail = (
            f"{data['class']} size {data['size']}, max_overflow {data['max_overflow']}, "
            f"timeout {data['timeout']:g}s, recycle {data['recycle']}s, pre_ping {ping}; "
            f"now {data['checked_out']} checked out, "
            f"{data['idle']} idle"
        )
    else:
        detail = f"{data['class']}: {pool.status()}"
    if database.is_sqlite:
        detail += " (SQLite: pool settings from the environment do not apply)"
    else:
        data["configured"] = {
            "size": configured.size,
            "max_overflow": configured.max_overflow,
            "timeout": configured.timeout,
            "recycle": configured.recycle,
            "pre_ping": configured.pre_ping,
            "pre_ping_idle": configured.pre_ping_idle,
            "connect_timeout": configured.connect_timeout,
        }
    return Step("pool", PASS, detail, data)


@dataclass(frozen=True)
class _Live:
    """What one connection learned, for the steps that report it."""

    ssl_in_use: bool
    ssl_protocol: str | None
    server: Step
    role: Step
    tables: frozenset[str]
    revision: str | None


def _connect(database: Database) -> tuple[Step, _Live | None]:
    """Check out a connection and time `SELECT 1`; gather what later steps need."""
    from budget_tracker.triage import diagnose

    started = time.perf_counter()
    try:
        with database.engine.connect() as connection:
            connected_ms = _ms(started)
            started = time.perf_counter()
            connection.execute(text("SELECT 1")).scalar()
            round_trip_ms = _ms(started)
            live = _inspect(connection)
    except Exception as exc:
        error = diagnose(exc)
        if error is None:
            raise
        return Step("connection", FAIL, str(error), {}, error.exit_code), None
    step = Step(
        "connection",
        PASS,
        f"connected in {connected_ms:.1f} ms; SELECT 1 round trip {round_trip_ms:.1f} ms",
        {"connect_ms": round(connected_ms, 1), "select_1_ms": round(round_trip_ms, 1)},
    )
    return step, live


def _inspect(connection: Connection) -> _Live:
    ssl_in_use, protocol = False, None
    if connection.dialect.name == "postgresql":
        version = str(connection.execute(text("SHOW server_version")).scalar())
        info = getattr(connection.connection.dbapi_connection, "info", None)
        if info is not None:
            ssl_in_use = bool(info.ssl_in_use)
            protocol = info.ssl_attribute("protocol") if ssl_in_use else None
        server = Step("server", PASS, f"PostgreSQL {version}", {"version": version})
        role = _role_step(connection)
    else:
        server = _sqlite_server_step()
        role = _sqlite_role_step()
    tables = frozenset(inspect(connection).get_table_names())
    revision = None
    if "alembic_version" in tables:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return _Live(ssl_in_use, protocol, server, role, tables, revision)


def _role_step(connection: Connection) -> Step:
    """Which role is connected, and whether row-level security applies to it."""
    from budget_tracker.services.sharing import connection_role

    role = connection_role(connection)
    data = {"role": role.name, "superuser": role.superuser, "owner": role.owner}
    if role.bypasses_policies:
        what = "a superuser" if role.superuser else "the owner of the tables"
        return Step(
            "role",
            WARN,
            f"connected as {role.name}, {what}: {ROLE_WARNING}",
            data,
            remedy=Remedy.ROLES,
        )
    if role.owner is None:
        return Step("role", PASS, f"connected as {role.name} (no tables yet)", data)
    return Step(
        "role",
        PASS,
        f"connected as {role.name}: row-level security limits it to its users and the "
        "budgets shared with it",
        data,
    )


def _sqlite_role_step() -> Step:
    return Step("role", PASS, "not applicable (SQLite: the file itself is the boundary)")


def _sqlite_server_step() -> Step:
    version = sqlite3.sqlite_version
    return Step("server", PASS, f"SQLite {version}", {"version": version})


def _schema_steps(tables: frozenset[str], revision: str | None) -> list[Step]:
    data = {"revision": revision, "head": SCHEMA_HEAD}
    if revision == SCHEMA_HEAD:
        schema = Step("schema", PASS, f"revision {revision} = code head {SCHEMA_HEAD}", data)
    elif is_unknown_revision(revision):
        newer = newer_than_this_version(str(revision))
        schema = Step("schema", FAIL, str(newer), data, newer.exit_code)
    else:
        schema = Step(
            "schema",
            FAIL,
            f"revision {revision or 'none'}, code head {SCHEMA_HEAD}",
            data,
            EXIT_SCHEMA,
            Remedy.UPGRADE,
        )
    missing = [name for name in TABLE_NAMES if name not in tables]
    if missing:
        detail = f"missing: {', '.join(missing)}"
        absent = Step("tables", FAIL, detail, {"missing": missing}, EXIT_SCHEMA, Remedy.UPGRADE)
        return [schema, absent]
    present = Step("tables", PASS, f"all {len(TABLE_NAMES)} present ({', '.join(TABLE_NAMES)})", {})
    return [schema, present]


def _round_trip(database: Database) -> Step:
    """Create a row and read it back in one transaction, then roll it back."""
    from budget_tracker.triage import diagnose

    email = f"db-check-{uuid.uuid4().hex[:12]}@localhost"
    started = time.perf_counter()
    session = database.sessions()
    try:
        user = User(email=email, name="budget db check")
        if not database.is_sqlite:
            # Linked to the connected role, so row-level security lets the role write it.
            user.role_name = func.current_user()
        session.add(user)
        session.flush()
        found = session.scalar(select(User.email).where(User.email == email))
    except Exception as exc:
        error = diagnose(exc)
        if error is None:
            raise
        return Step("round-trip", FAIL, str(error), {}, error.exit_code)
    finally:
        session.rollback()
        session.close()
    elapsed = _ms(started)
    if found != email:
        return Step("round-trip", FAIL, "the row written was not read back", {}, EXIT_REFUSED)
    return Step(
        "round-trip",
        PASS,
        f"wrote and read back a row in {elapsed:.1f} ms (rolled back)",
        {"ms": round(elapsed, 1)},
    )


def _data(database: Database) -> Step:
    """Rows per table, to compare a database before and after a copy or a restore."""
    from budget_tracker.services.portable import row_counts
    from budget_tracker.triage import diagnose

    try:
        with database.engine.connect() as connection:
            counts = row_counts(connection, TABLE_NAMES)
    except Exception as exc:
        error = diagnose(exc)
        if error is None:
            raise
        return Step("data", FAIL, str(error), {}, error.exit_code)
    detail = ", ".join(f"{name} {count:,}" for name, count in counts.items())
    return Step("data", PASS, f"rows: {detail}", {"rows": counts})


def _query_value(url: URL, key: str) -> str | None:
    value = url.query.get(key)
    if isinstance(value, tuple):
        return value[-1] if value else None
    return value


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
