"""Where the database pieces live (kept so `from budget_tracker.db import Database` works).

- `budget_tracker.engine`: building engines (pool, SQLite pragmas, idle ping, lean first
  connects);
- `budget_tracker.schema_version`: `SCHEMA_HEAD` (derived from the migration scripts) and
  bringing a SQLite file to it;
- `budget_tracker.unit_of_work`: `Database`, the unit-of-work runner with retries, and the
  idempotency helpers (`attempt_number`, `unit_key`, `committed_earlier`);
- `budget_tracker.driver_errors`: which driver errors are transient or mean a lost
  connection, and quoting them safely (`first_line`, `scrub`).

New code imports from those modules directly.
"""

from __future__ import annotations

from budget_tracker.engine import create_app_engine
from budget_tracker.schema_version import SCHEMA_HEAD
from budget_tracker.unit_of_work import Database, committed_earlier, unit_key

__all__ = ["SCHEMA_HEAD", "Database", "committed_earlier", "create_app_engine", "unit_key"]
