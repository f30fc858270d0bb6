"""The list of top-level commands and groups, one module per capability.

Each command is named here with the module and attribute that define it and its one-line
help, so `budget --help` lists every command without importing a single command module,
and `budget add-expense` imports only `budget_tracker.cli.expenses` (see `LazyCommands` in
`budget_tracker/cli/__init__.py`). To add a command, add one line below; tests/test_startup.py
checks that each entry loads a command of that name whose short help is the one written
here, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):
    module: str
    attribute: str
    short_help: str
    """The command's `get_short_help_str()`: the first sentence of its docstring."""


_EXPENSES = "budget_tracker.cli.expenses"
_INCOME = "budget_tracker.cli.income"
_TRANSFERS = "budget_tracker.cli.transfers"
_REPORTS = "budget_tracker.cli.reports"
_IO = "budget_tracker.cli.io"
_PORTABLE = "budget_tracker.cli.portable"
_SHARING = "budget_tracker.cli.sharing"

ALL: dict[str, Entry] = {
    "add-expense": Entry(
        _EXPENSES, "add_expense", "Record an expense of AMOUNT in CATEGORY (matched in any case)."
    ),
    "expenses": Entry(
        _EXPENSES, "list_expenses", "List expenses, newest first, with a total line."
    ),
    "edit-expense": Entry(
        _EXPENSES, "edit_expense", "Change an expense's amount, category, description or date."
    ),
    "delete-expense": Entry(_EXPENSES, "delete_expense", "Delete an expense."),
    "add-income": Entry(
        _INCOME, "add_income", "Record income of AMOUNT, optionally with its SOURCE."
    ),
    "income": Entry(_INCOME, "list_income", "List income, newest first, with a total line."),
    "edit-income": Entry(
        _INCOME, "edit_income", "Change an income entry's amount, source or date."
    ),
    "delete-income": Entry(_INCOME, "delete_income", "Delete an income entry."),
    "user": Entry(
        "budget_tracker.cli.users",
        "user",
        "People whose spending is tracked (each sees only their own data).",
    ),
    "share": Entry(
        _SHARING,
        "share_command",
        "Let the user EMAIL work in your budget (or only read it, with --read-only).",
    ),
    "unshare": Entry(_SHARING, "unshare_command", "Stop sharing your budget with the user EMAIL."),
    "shares": Entry(
        _SHARING, "shares_command", "List the budgets you share and those shared with you."
    ),
    "category": Entry(
        "budget_tracker.cli.categories",
        "category",
        "Spending categories and their monthly budgets (names match in any case).",
    ),
    "transfer": Entry(
        _TRANSFERS,
        "transfer",
        "Move AMOUNT of one category's monthly budget to another, atomically.",
    ),
    "transfers": Entry(
        _TRANSFERS, "list_transfers", "List the budget transfer ledger, oldest first."
    ),
    "report": Entry(
        _REPORTS,
        "report",
        "Budget against spending per category (or per month, or per person, with --by).",
    ),
    "verify": Entry(
        _REPORTS, "verify", "Check the report against an independent sum of the raw rows."
    ),
    "db": Entry(
        "budget_tracker.cli.db",
        "db_group",
        "Check the database, migrate it, copy it, and show its schema revision.",
    ),
    "import": Entry(
        _IO,
        "import_command",
        "Import expenses from a bank statement or CSV file: all rows or none, never twice.",
    ),
    "import-profile": Entry(
        "budget_tracker.cli.import_profiles",
        "import_profile_group",
        "List, show and delete saved import profiles (see `budget import --save-profile`).",
    ),
    "help": Entry(
        "budget_tracker.cli.help", "help_command", "Show the help of budget or of one COMMAND."
    ),
    "export": Entry(
        _IO,
        "export_command",
        "Export expenses, ordered by date, in the format `budget import` reads back.",
    ),
    "backup": Entry(
        _PORTABLE,
        "backup_command",
        "Write the whole budget to FILE (`-` for stdout), one portable versioned file.",
    ),
    "restore": Entry(
        _PORTABLE,
        "restore_command",
        "Load a backup FILE (`-` for stdin) into the database in use, which must be empty.",
    ),
}
