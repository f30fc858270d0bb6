"""Programmatic Alembic: used by `budget db upgrade` and the SQLite first-run migration.

Importing this module imports Alembic, so only code paths that migrate import it.
"""

from __future__ import annotations

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection

from alembic import command
from budget_tracker.schema_version import script_location


def alembic_config(url: URL | None = None) -> Config:
    """An Alembic config with no ini file; `url` overrides the migration URL from settings."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if url is not None:
        # Passed as an object, not through ConfigParser, so a '%' in a password is safe.
        config.attributes["url"] = url
    return config


def upgrade(url: URL | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"expected one migration head, found {heads}")
    return heads[0]


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
