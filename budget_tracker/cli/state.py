"""What one `budget` invocation carries: flags and the lazily built database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click

    from budget_tracker.unit_of_work import Database


class AppState:
    """Holds the `Database` for this process; built on first use, closed at exit.

    Tests pass their own (`CliRunner().invoke(main, args, obj=AppState(database=db))`) to
    share one engine across invocations.

    `today` is the one source of the current date for every command (default dates, `this`,
    `last` and `next` months, default periods); services receive the date it gives.
    """

    def __init__(
        self,
        database: Database | None = None,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        self.today = today
        self.debug = False
        self.verbosity = 0
        self._database = database
        self._owns_database = database is None
        self._logging_ready = False
        self.failed_in: click.Context | None = None
        """The context of the command a domain error left (see `CommandContext`)."""

    def set_verbosity(self, verbosity: int) -> None:
        """`-v` count: logging is set up for it when the database is first needed."""
        self.verbosity = verbosity
        self._logging_ready = False

    @property
    def database(self) -> Database:
        self._configure_logging()
        if self._database is None:
            from budget_tracker.config import load_settings
            from budget_tracker.unit_of_work import Database

            self._database = Database(load_settings())
            self._database.on_long_retry = say_still_retrying
        return self._database

    def _configure_logging(self) -> None:
        """ERROR by default, INFO with -v, DEBUG with -vv, as `LEVEL message` on stderr.

        Done here rather than when the flags are parsed because everything that logs
        (settings, the engine, retries, SQLAlchemy, Alembic) runs behind the database:
        `--help`, `--version` and bad input never import `logging`, a noticeable part of
        their start-up time.
        """
        if self._logging_ready:
            return
        import logging
        import sys

        level = logging.ERROR
        if self.verbosity == 1:
            level = logging.INFO
        elif self.verbosity > 1:
            level = logging.DEBUG
        from budget_tracker.redact import scrub

        class ScrubFilter(logging.Filter):
            """Masks passwords in a record's final message (its arguments included)."""

            def filter(self, record: logging.LogRecord) -> bool:
                message = record.getMessage()
                cleaned = scrub(message)
                if cleaned != message:
                    record.msg, record.args = cleaned, None
                return True

        logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(message)s")
        for handler in logging.getLogger().handlers:
            if not any(type(f).__name__ == "ScrubFilter" for f in handler.filters):
                handler.addFilter(ScrubFilter())
        logging.getLogger("budget_tracker").setLevel(level)
        self._logging_ready = True

    def close(self) -> None:
        if self._owns_database and self._database is not None:
            self._database.close()
            self._database = None


def today_in(ctx: click.Context | None) -> dt.date:
    """The current date of the invocation `ctx` belongs to (the real date without one)."""
    state = ctx.find_object(AppState) if ctx is not None else None
    return state.today() if state is not None else dt.date.today()


def say_still_retrying(attempt: int, elapsed: float, detail: str) -> None:
    """Tell a person at a terminal why the command is waiting (scripts see only the result)."""
    import sys

    if sys.stderr.isatty():
        print(
            f"budget: database unavailable, still retrying ({elapsed:.0f}s, attempt {attempt}): "
            f"{detail}",
            file=sys.stderr,
        )
