"""Domain errors and the exit codes the CLI maps them to.

Services raise these; the CLI boundary turns each into a one-line message on stderr and
its exit code. Nothing here imports SQLAlchemy, so the CLI can load it at start-up.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
EXIT_DB_UNAVAILABLE = 3
EXIT_SCHEMA = 4
EXIT_CONFIG = 5


class BudgetError(Exception):
    """A refusal the user can act on; the message is shown as it is."""

    exit_code = EXIT_REFUSED


class NotFound(BudgetError):
    """The named user, category, expense or transfer does not exist for this user."""


class Conflict(BudgetError):
    """The change contradicts existing data (a duplicate name, a category in use)."""


class InsufficientBudget(BudgetError):
    """A transfer would take more than the source category has available."""


class InvalidInput(BudgetError):
    """A value the user gave is malformed or out of range."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(BudgetError):
    """The environment or `.env` holds an invalid setting."""

    exit_code = EXIT_CONFIG


class DatabaseUnavailable(BudgetError):
    """The database could not be reached or refused the connection."""

    exit_code = EXIT_DB_UNAVAILABLE


class SchemaNotMigrated(BudgetError):
    """The database schema is missing or older than this version of the program."""

    exit_code = EXIT_SCHEMA
