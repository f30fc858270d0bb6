"""Domain errors, their wording, and the exit codes the CLI maps them to.

Services raise these; the CLI boundary turns each into a one-line message on stderr and
its exit code. A message never spells the command line: it names an option of the call by
its Python keyword (`option("date_format")`), which the CLI shows as its flag, and an error
that calls for another command (listing users, upgrading the schema) is a class of its own
carrying its data, worded for people by the CLI. Nothing here imports SQLAlchemy, so the
CLI can load it at start-up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
EXIT_DB_UNAVAILABLE = 3
EXIT_SCHEMA = 4
EXIT_CONFIG = 5


@dataclass(frozen=True)
class Option:
    """An option of a service call, named by its Python keyword (`date_format`)."""

    keyword: str


@dataclass(frozen=True)
class Wording:
    """Text that may name options of the call: `str()` names them by their Python keyword
    (what a library caller passes), `render` as the caller's interface spells them (the
    command line: its flags).

    Built with `+` from strings and `option(...)`, so text that came from the user (a
    file's cell, a category's name) is never read as a placeholder.
    """

    parts: tuple[str | Option, ...] = ()

    @classmethod
    def of(cls, *pieces: str | Wording) -> Wording:
        parts: list[str | Option] = []
        for piece in pieces:
            for part in piece.parts if isinstance(piece, Wording) else (piece,):
                if isinstance(part, str) and parts and isinstance(parts[-1], str):
                    parts[-1] += part
                elif part != "":
                    parts.append(part)
        return cls(tuple(parts))

    @classmethod
    def join(cls, separator: str, pieces: Iterable[str | Wording]) -> Wording:
        joined: list[str | Wording] = []
        for piece in pieces:
            if joined:
                joined.append(separator)
            joined.append(piece)
        return cls.of(*joined)

    def __add__(self, other: str | Wording) -> Wording:
        return Wording.of(self, other)

    def __radd__(self, other: str) -> Wording:
        return Wording.of(other, self)

    def render(self, spell: Callable[[str], str]) -> str:
        """The text with each option spelled by `spell(keyword)`."""
        return "".join(spell(p.keyword) if isinstance(p, Option) else p for p in self.parts)

    def __str__(self) -> str:
        return self.render(str)


def option(keyword: str) -> Wording:
    """The option `keyword` of the call, as a piece of a message (`+` joins the pieces)."""
    return Wording((Option(keyword),))


class BudgetError(Exception):
    """A refusal the user can act on.

    `str()` is the message for a program calling the services (options named by their
    keyword); `wording` keeps where the options are, for the command line to spell them.
    """

    exit_code = EXIT_REFUSED

    def __init__(self, message: str | Wording = "") -> None:
        self.wording = message if isinstance(message, Wording) else Wording.of(message)
        super().__init__(str(self.wording))


class NotFound(BudgetError):
    """The named user, category, expense or transfer does not exist for this user."""


class Conflict(BudgetError):
    """The change contradicts existing data (a duplicate name, a category in use)."""


class UnknownUser(NotFound):
    """No user has the e-mail address `email` (or none this connection may see)."""

    def __init__(self, email: str) -> None:
        super().__init__(f"no user {email!r}")
        self.email = email


class UnknownPerson(UnknownUser):
    """The person named to share a budget with, or to link a role to, is no user."""


class RoleHasOwnUser(Conflict):
    """The connected role has a user of its own (`email`), which it acts for when no user
    is named: the default user, chosen for the tables' owner, does not apply to it."""

    def __init__(self, email: str) -> None:
        super().__init__(
            f"commands of your role act for your own user {email!r} when none is named"
        )
        self.email = email


class NoCategories(NotFound):
    """The category `name` was asked for, and the user has no categories at all."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no category {name!r}: there are no categories yet")
        self.name = name


class UnknownCategories(NotFound):
    """The file `file` names categories the user does not have (`names`; `shown` lists the
    first of them), and the import was not asked to create them; nothing was imported."""

    def __init__(self, file: str, names: Sequence[str], *, shown: int) -> None:
        self.file = file
        self.names = tuple(names)
        self.shown = ", ".join(self.names[:shown])
        if len(self.names) > shown:
            self.shown += f" and {len(self.names) - shown} more"
        noun = "category" if len(self.names) == 1 else "categories"
        self.found = f"{file} uses {len(self.names)} unknown {noun}: {self.shown}"
        super().__init__(
            f"{self.found}; create them first or import with "
            + option("create_categories")
            + "; nothing was imported"
        )


class CategoryInUse(Conflict):
    """The category has `expenses` and `transfers`: deleting it needs another category to
    take them over (`move_to`)."""

    def __init__(self, category: str, expenses: int, transfers: int) -> None:
        super().__init__(
            f"category {category!r} is in use ({_counted(expenses, 'expense')}, "
            f"{_counted(transfers, 'transfer')})"
        )
        self.category = category
        self.expenses = expenses
        self.transfers = transfers


class UnknownTransfer(NotFound):
    """No transfer of the user has the id `transfer_id`."""

    def __init__(self, transfer_id: int) -> None:
        super().__init__(f"no transfer {transfer_id}")
        self.transfer_id = transfer_id


class UnknownProfile(NotFound):
    """The user has no import profile called `name`."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no import profile named {name!r}")
        self.name = name


class NotTableOwner(BudgetError):
    """Only the owner of the tables may grant roles; the connection is `role`."""

    def __init__(self, role: str) -> None:
        super().__init__(f"connected as {role!r}, which does not own the tables")
        self.role = role


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


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


class UserNotChosen(InvalidInput):
    """There are several users, none of them the default, and the call named none."""

    def __init__(self) -> None:
        super().__init__("there are several users: choose one with " + option("user_email"))


class ConfigError(BudgetError):
    """The environment or `.env` holds an invalid setting."""

    exit_code = EXIT_CONFIG


class DatabaseUnavailable(BudgetError):
    """The database could not be reached or refused the connection."""

    exit_code = EXIT_DB_UNAVAILABLE


class SchemaNotMigrated(BudgetError):
    """The database schema is missing or older than this version of the program."""

    exit_code = EXIT_SCHEMA


class SourceNotMigrated(SchemaNotMigrated):
    """The database being copied from is at schema `revision` (None: none), not at this
    version's `head`: it is upgraded first."""

    def __init__(self, revision: str | None, head: str) -> None:
        super().__init__(
            f"the source database is at schema revision {revision or 'none'}, this "
            f"version's head is {head}"
        )
        self.revision = revision
        self.head = head
