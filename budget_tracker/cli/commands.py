"""The list of top-level commands and groups, one module per capability."""

from __future__ import annotations

import click

from budget_tracker.cli import categories as category_commands
from budget_tracker.cli import db as db_commands
from budget_tracker.cli import expenses
from budget_tracker.cli import io as io_commands
from budget_tracker.cli import reports as report_commands
from budget_tracker.cli import transfers as transfer_commands
from budget_tracker.cli import users as user_commands

ALL: list[click.Command] = []
ALL += [
    expenses.add_expense,
    expenses.list_expenses,
    expenses.edit_expense,
    expenses.delete_expense,
]
ALL += [user_commands.user, category_commands.category]
ALL += [transfer_commands.transfer, transfer_commands.list_transfers]
ALL += [report_commands.report, report_commands.verify]
ALL += [db_commands.db_group]
ALL += [io_commands.import_command, io_commands.export_command]
