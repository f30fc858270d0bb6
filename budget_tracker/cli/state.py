"""What one `budget` invocation carries: flags and the lazily built database."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from budget_tracker.db import Database


class AppState:
    """Holds the `Database` for this process; built on first use, closed at exit.

    Tests pass their own (`CliRunner().invoke(main, args, obj=AppState(database=db))`) to
    share one engine across invocations.
    """

    def __init__(self, database: Database | None = None) -> None:
        self.debug = False
        self._database = database
        self._owns_database = database is None

    @property
    def database(self) -> Database:
        if self._database is None:
            from budget_tracker.config import load_settings
            from budget_tracker.db import Database

            self._database = Database(load_settings())
        return self._database

    def close(self) -> None:
        if self._owns_database and self._database is not None:
            self._database.close()
            self._database = None
