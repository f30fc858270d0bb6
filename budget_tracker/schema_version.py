"""Which schema revision this code expects, and bringing a SQLite file to it safely.

`SCHEMA_HEAD` is derived from the migration scripts' file names (`<rev-id>_<slug>.py`,
rev-ids numbered in order: `alembic revision --rev-id 0009 ...`), so it cannot drift from
them; `tests/test_migrations.py` checks it against Alembic's own idea of the head. Reading
a directory listing costs microseconds and no Alembic import, so commands that only need
the number stay fast.

A local SQLite file is created private (directory 0700, file 0600; SQLite gives its
`-wal` and `-shm` files the database file's mode) and migrated to head on first use.
Every way the file can be unusable is one line and an exit code, never a traceback.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from budget_tracker.errors import DatabaseUnavailable, SchemaNotMigrated

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

_REVISION_FILE = re.compile(r"^(\d+)_\w*\.py$")


def script_location() -> Path:
    """The migration scripts: inside the installed package, or `alembic/` in a checkout."""
    packaged = Path(__file__).parent / "migrations"
    if (packaged / "env.py").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "alembic"


@cache
def known_revisions() -> tuple[str, ...]:
    """Every revision id this version ships, oldest first."""
    ids = []
    for entry in os.listdir(script_location() / "versions"):
        match = _REVISION_FILE.match(entry)
        if match:
            ids.append(match.group(1))
    return tuple(sorted(ids, key=int))


def schema_head() -> str:
    """The newest revision this version ships: what every database must be at."""
    return known_revisions()[-1]


SCHEMA_HEAD = schema_head()
"""The Alembic revision this code expects."""


def newer_than_this_version(revision: str) -> SchemaNotMigrated:
    return SchemaNotMigrated(
        f"the database was written by a newer version of budget (schema revision {revision}; "
        f"this version knows up to {SCHEMA_HEAD}): upgrade budget"
    )


def is_unknown_revision(revision: str | None) -> bool:
    """A revision this version did not ship: a newer version of budget wrote it."""
    return revision is not None and revision not in known_revisions()


def sqlite_revision(path: Path) -> str | None:
    """The revision recorded in an existing SQLite file (None: no schema yet).

    Read with the standard library, so the common case costs one local query and no
    SQLAlchemy or Alembic import. Raises `DatabaseUnavailable` when the file cannot be
    read or is not a SQLite database.
    """
    import sqlite3  # PostgreSQL commands never need it

    if path.is_dir():
        raise DatabaseUnavailable(
            f"the database path {path} is a directory, not a file: set BUDGET_DB_PATH to a "
            "file name"
        )
    if not os.access(path, os.R_OK | os.W_OK):
        raise DatabaseUnavailable(
            f"cannot read and write the database file {path} (permission denied): check its "
            "owner and mode"
        )
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"cannot open the database file {path} ({exc})") from None
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise _unusable(path, exc) from None
    except sqlite3.DatabaseError as exc:
        raise _unusable(path, exc) from None
    finally:
        conn.close()
    return str(row[0]) if row else None


def _unusable(path: Path, exc: Exception) -> DatabaseUnavailable:
    if "disk is full" in str(exc):
        return DatabaseUnavailable(f"the disk holding {path} is full: free some space ({exc})")
    return DatabaseUnavailable(
        f"{path} is not a usable Budget Tracker database ({exc}): move it away, or set "
        "BUDGET_DB_PATH to another file"
    )


def create_private_file(path: Path) -> None:
    """Create an empty database file (and its directory) readable by the owner only."""
    try:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot create the database file {path} ({exc.strerror}): set BUDGET_DB_PATH "
            "to a writable location"
        ) from None
    os.close(fd)


def readable_by_others(path: Path) -> bool:
    """Whether users other than the owner may read the file (group or other read bit)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def ensure_sqlite_schema(path: Path, migration_url: URL) -> None:
    """Create the SQLite file privately if needed and migrate it when new or behind.

    Alembic is imported only when there is something to migrate.
    """
    if not path.exists() and not path.is_symlink():
        create_private_file(path)
        current = None
    else:
        current = sqlite_revision(path)
    if current == SCHEMA_HEAD:
        return
    if is_unknown_revision(current):
        raise newer_than_this_version(str(current))
    from budget_tracker.migrate import upgrade

    log.info("migrating %s to schema %s", path, SCHEMA_HEAD)
    upgrade(migration_url)
