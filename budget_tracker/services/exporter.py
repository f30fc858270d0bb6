"""Export the acting user's expenses (and optionally the transfer ledger), streamed.

Expenses are written in the CSV format `budget import` reads back by default
(`date,amount,category,description`), ordered by date and then id, so export -> import into
an empty database -> export gives the same file. Rows come from a server-side cursor in
batches of `streaming.BATCH_ROWS` (one round trip each), so memory stays flat however
many there are. The service writes to the streams
it is given; the caller decides where they go (stdout, or a file it renames on success).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from budget_tracker.models import BudgetTransfer, Category, Expense
from budget_tracker.money import format_amount
from budget_tracker.services.budgets import month_start
from budget_tracker.services.importer import FIELDS
from budget_tracker.services.streaming import stream_rows
from budget_tracker.services.users import FirstRun, find_acting_user

EXPENSE_COLUMNS = FIELDS
TRANSFER_COLUMNS = (
    "id",
    "month",
    "from_category",
    "to_category",
    "amount",
    "note",
    "reverses_id",
    "created_at",
)


class Writer(Protocol):
    """Where an export goes: anything with `write(str)` (a text file, stdout)."""

    def write(self, text: str, /) -> Any: ...


@dataclass(frozen=True)
class ExportSummary:
    expenses: int
    transfers: int | None
    """None when transfers were not asked for."""
    first_run: FirstRun | None


def export(
    session: Session,
    *,
    user_email: str | None,
    stream: Writer,
    fmt: str,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    transfers_stream: Writer | None = None,
    include_transfers: bool = False,
) -> ExportSummary:
    """Write the acting user's expenses (dates inclusive) to `stream` as csv or json.

    With `include_transfers`, the transfer ledger (months within the same range) goes to
    `transfers_stream` as CSV, or into the same JSON document under "transfers".
    """
    user, first_run = find_acting_user(session, user_email=user_email), None
    expenses = _expense_rows(session, user_id=user.id, date_from=date_from, date_to=date_to)
    transfers = (
        _transfer_rows(session, user_id=user.id, date_from=date_from, date_to=date_to)
        if include_transfers
        else None
    )
    try:
        if fmt == "json":
            counts = _write_json(stream, expenses, transfers)
        else:
            counts = (_write_csv(stream, EXPENSE_COLUMNS, expenses), None)
            if transfers is not None:
                if transfers_stream is None:
                    raise ValueError("CSV transfers need their own stream")
                counts = (counts[0], _write_csv(transfers_stream, TRANSFER_COLUMNS, transfers))
    finally:
        # A failed write (a closed pipe) must close the server-side cursors now, while
        # the transaction is open, not later when the generators are collected.
        expenses.close()
        if transfers is not None:
            transfers.close()
    return ExportSummary(expenses=counts[0], transfers=counts[1], first_run=first_run)


def _expense_rows(
    session: Session, *, user_id: int, date_from: dt.date | None, date_to: dt.date | None
) -> Generator[dict[str, str], None, None]:
    statement = (
        select(Expense.spent_on, Expense.amount, Category.name, Expense.description)
        .join(Category, Category.id == Expense.category_id)
        .where(Expense.user_id == user_id)
        .order_by(Expense.spent_on, Expense.id)
    )
    if date_from is not None:
        statement = statement.where(Expense.spent_on >= date_from)
    if date_to is not None:
        statement = statement.where(Expense.spent_on <= date_to)
    for spent_on, amount, category, description in stream_rows(session, statement):
        yield {
            "date": spent_on.isoformat(),
            "amount": format_amount(amount),
            "category": category,
            "description": description,
        }


def _transfer_rows(
    session: Session, *, user_id: int, date_from: dt.date | None, date_to: dt.date | None
) -> Generator[dict[str, str], None, None]:
    source = aliased(Category)
    target = aliased(Category)
    statement = (
        select(
            BudgetTransfer.id,
            BudgetTransfer.month,
            source.name,
            target.name,
            BudgetTransfer.amount,
            BudgetTransfer.note,
            BudgetTransfer.reverses_id,
            BudgetTransfer.created_at,
        )
        .join(source, source.id == BudgetTransfer.from_category_id)
        .join(target, target.id == BudgetTransfer.to_category_id)
        .where(BudgetTransfer.user_id == user_id)
        .order_by(BudgetTransfer.id)
    )
    # A transfer belongs to a month: it is in range when its month overlaps the dates.
    if date_from is not None:
        statement = statement.where(BudgetTransfer.month >= month_start(date_from))
    if date_to is not None:
        statement = statement.where(BudgetTransfer.month <= date_to)
    for row in stream_rows(session, statement):
        id_, month, from_name, to_name, amount, note, reverses_id, created_at = row
        yield {
            "id": str(id_),
            "month": month.strftime("%Y-%m"),
            "from_category": from_name,
            "to_category": to_name,
            "amount": format_amount(amount),
            "note": note,
            "reverses_id": "" if reverses_id is None else str(reverses_id),
            "created_at": created_at.isoformat() if created_at is not None else "",
        }


def _write_csv(stream: Writer, columns: tuple[str, ...], rows: Iterator[dict[str, str]]) -> int:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([row[column] for column in columns])
        count += 1
    return count


def _write_json(
    stream: Writer,
    expenses: Iterator[dict[str, str]],
    transfers: Iterator[dict[str, str]] | None,
) -> tuple[int, int | None]:
    """One JSON object, written item by item: {"expenses": [...], "transfers": [...]}."""
    stream.write("{\n")
    expense_count = _write_json_list(stream, "expenses", expenses)
    transfer_count = None
    if transfers is not None:
        stream.write(",\n")
        transfer_count = _write_json_list(stream, "transfers", transfers)
    stream.write("\n}\n")
    return expense_count, transfer_count


def _write_json_list(stream: Writer, key: str, rows: Iterator[dict[str, str]]) -> int:
    stream.write(f'  "{key}": [')
    count = 0
    for row in rows:
        stream.write(",\n    " if count else "\n    ")
        stream.write(json.dumps(row, ensure_ascii=False))
        count += 1
    stream.write("\n  ]" if count else "]")
    return count
