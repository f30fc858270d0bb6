"""Domain errors and the exit codes the CLI maps them to.

Services raise these; the CLI boundary turns each into a one-line message on stderr and
its exit code. Nothing here imports SQLAlchemy, so the CLI can load it at start-up.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

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
    """A transfer would take more than the source category has available.

    Carries the figures (`category`, `available`, `amount`, `month`); the message says
    what is wrong, and the command line adds how to do it anyway (its flag).
    """

    def __init__(self, category: str, available: Decimal, amount: Decimal, month: dt.date) -> None:
        from budget_tracker.money import format_amount

        super().__init__(
            f"{category} has only {format_amount(available)} available for {month:%Y-%m}; "
            f"cannot move {format_amount(amount)}"
        )
        self.category = category
        self.available = available
        self.amount = amount
        self.month = month


class BudgetBelowZero(BudgetError):
    """Folding SOURCE into `category` would leave its budget below zero in some months.

    `budget` is the first such month's (`month`) budget; `months` how many months are
    below zero.
    """

    def __init__(
        self, category: str, budget: Decimal, month: dt.date, months: int, source: str
    ) -> None:
        from budget_tracker.money import format_amount

        plural = "month" if months == 1 else "months"
        super().__init__(
            f"{category} would have a budget of {format_amount(budget)} for {month:%Y-%m} "
            f"({months} {plural} below zero) once it takes over {source}'s transfers"
        )
        self.category = category
        self.budget = budget
        self.month = month
        self.months = months
        self.source = source


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
