"""Alembic environment: the URL and the metadata come from the app.

Migrations run over the direct (unpooled) URL with NullPool: through PgBouncer in
transaction mode, session state and locks would land on arbitrary server connections.
On PostgreSQL a transaction-scoped advisory lock serialises concurrent `upgrade` runs;
on SQLite the migration transaction starts with BEGIN IMMEDIATE for the same effect.
"""

from __future__ import annotations

import logging
import sys
from logging.config import fileConfig

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from alembic import context
from budget_tracker.config import Settings, load_settings, mask_url
from budget_tracker.engine import SQLITE_BEGIN_OPTION, create_app_engine
from budget_tracker.errors import ConfigError
from budget_tracker.models import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

log = logging.getLogger("alembic.env")
target_metadata = Base.metadata

# Any fixed 64-bit number works; this one spells "budget" in ASCII.
MIGRATION_LOCK_KEY = 0x627564676574


def migration_url() -> URL:
    given = config.attributes.get("url")
    if given is not None:
        return given  # type: ignore[no-any-return]
    return settings().migration_url


def settings() -> Settings:
    """The settings `budget` would read in this directory (environment, then `.env`).

    A bad setting is one line and exit 5, as from `budget`, not a traceback.
    """
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None


def configure(connection: Connection | None = None, url: URL | None = None) -> None:
    # SQLite DDL is transactional once pysqlite's implicit commits are off (they are, on
    # our engine), so a failed revision rolls back there too.
    transactional_ddl = True if connection is not None else None
    context.configure(
        transactional_ddl=transactional_ddl,
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=True,
        literal_binds=connection is None,
        dialect_opts={"paramstyle": "named"} if connection is None else {},
    )


def run_migrations_offline() -> None:
    configure(url=migration_url())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        run_with(given)
        return
    url = migration_url()
    log.info("migrating %s", mask_url(url))
    engine = create_app_engine(settings(), url=url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection = connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            run_with(connection)
    finally:
        engine.dispose()


def run_with(connection: Connection) -> None:
    configure(connection=connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
