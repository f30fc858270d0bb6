"""`budget transfer` (and `--undo`) and `budget transfers`: the budget ledger."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import click

from budget_tracker.cli.output import (
    Column,
    announce_first_run,
    display_width,
    emit,
    entered_by_cell,
    entered_by_columns,
    pad,
    print_json,
    printable,
    result_format_option,
    transfer_json,
    warn,
)
from budget_tracker.cli.params import (
    AMOUNT,
    DESCRIPTION,
    ID,
    MONTH,
    NAME,
    entered_by_option,
    format_option,
    user_option,
)
from budget_tracker.cli.state import AppState
from budget_tracker.money import format_amount

TRANSFER_COLUMNS = (
    Column("id", "ID", ">"),
    Column("month", "Month"),
    Column("from", "From"),
    Column("to", "To"),
    Column("amount", "Amount", ">"),
    Column("note", "Note"),
    Column("reverses", "Undoes", ">"),
    Column("undone_by", "Undone by", ">"),
    Column("created_at", "Recorded"),
)


@click.command("transfer")
@click.argument("amount", type=AMOUNT, required=False)
@click.option("--from", "source", type=NAME, help="Category whose budget is reduced.")
@click.option("--to", "target", type=NAME, help="Category whose budget is increased.")
@click.option("--month", type=MONTH, help="Month whose budgets move (YYYY-MM; default: this one).")
@click.option("--note", type=DESCRIPTION, default="", help="Why the budget moved.")
@click.option(
    "--undo",
    "undo_id",
    type=ID,
    metavar="ID",
    help="Reverse transfer ID by recording the opposite move (see `budget transfers`).",
)
@click.option(
    "--allow-overdraw",
    is_flag=True,
    help="Move the amount even if the source has less than that available.",
)
@result_format_option
@user_option
@click.pass_obj
def transfer(
    state: AppState,
    amount: Decimal | None,
    source: str | None,
    target: str | None,
    month: dt.date | None,
    note: str,
    undo_id: int | None,
    allow_overdraw: bool,
    fmt: str,
    user_email: str | None,
) -> None:
    """Move AMOUNT of one category's monthly budget to another, atomically.

    Refused, with nothing written, when the source has less than AMOUNT available for the
    month (its budget after earlier transfers, plus what was carried into the month when
    it rolls over, minus what was spent) unless
    --allow-overdraw is given. Prints both categories' new available amounts. Every
    transfer is kept in the ledger; --undo ID records the opposite move.

    \b
    Example:
      budget transfer 50 --from Food --to Transport
      budget transfer 20.50 --from Entertainment --to Food --month 2026-11 --note "dinner"
      budget transfer --undo 7
    """
    from budget_tracker.services.transfers import transfer_budget, undo_transfer

    if undo_id is not None:
        given = [
            flag
            for flag, value in (
                ("AMOUNT", amount),
                ("--from", source),
                ("--to", target),
                ("--month", month),
                ("--note", note or None),
            )
            if value is not None
        ]
        if given:
            raise click.UsageError(f"--undo takes no {', '.join(given)}: it repeats the original")
    else:
        missing = [
            flag
            for flag, value in (("AMOUNT", amount), ("--from", source), ("--to", target))
            if value is None
        ]
        if missing:
            raise click.UsageError(f"missing {', '.join(missing)} (or use --undo ID)")
    # Generated once per invocation, outside the retry loop: a retry after a lost COMMIT
    # acknowledgement carries the same key and finds the transfer instead of repeating it.
    key = uuid.uuid4().hex
    if undo_id is not None:
        outcome = state.database.run(
            lambda session: undo_transfer(
                session,
                user_email=user_email,
                transfer_id=undo_id,
                allow_overdraw=allow_overdraw,
                idempotency_key=key,
            ),
            write=True,
        )
    else:
        assert amount is not None and source is not None and target is not None
        move = (amount, source, target, month or state.today().replace(day=1))
        outcome = state.database.run(
            lambda session: transfer_budget(
                session,
                user_email=user_email,
                amount=move[0],
                source=move[1],
                target=move[2],
                month=move[3],
                note=note,
                allow_overdraw=allow_overdraw,
                idempotency_key=key,
            ),
            write=True,
        )
    announce_first_run(outcome.first_run)
    record = outcome.transfer
    if fmt == "json":
        print_json(transfer_json(record))
    else:
        undoes = f" (undoes transfer {record.reverses_id})" if record.reverses_id else ""
        click.echo(
            f"Transfer {record.id}: moved {format_amount(record.amount)} from "
            f"{printable(record.source)} to {printable(record.target)} "
            f"for {record.month:%Y-%m}{undoes}"
        )
        balances = [
            (printable(b.category), format_amount(b.available))
            for b in (outcome.source, outcome.target)
        ]
        name_width = max(display_width(name) for name, _ in balances)
        amount_width = max(len(available) for _, available in balances)
        for name, available in balances:
            click.echo(f"  {pad(name, name_width, '<')}  {available:>{amount_width}} available")
    if outcome.source.available < 0:
        warn(
            f"{outcome.source.category} is overdrawn by {format_amount(-outcome.source.available)} "
            f"for {record.month:%Y-%m}"
        )


@click.command("transfers")
@click.option("--month", type=MONTH, help="Only transfers of this month's budgets (YYYY-MM).")
@click.option("--category", type=NAME, help="Only transfers from or to this category.")
@entered_by_option
@format_option
@user_option
@click.pass_obj
def list_transfers(
    state: AppState,
    month: dt.date | None,
    category: str | None,
    entered_by: str | None,
    fmt: str,
    user_email: str | None,
) -> None:
    """List the budget transfer ledger, oldest first.

    An undo appears as its own entry ("Undoes"), and the entry it reversed shows it
    ("Undone by"). Who entered each entry is in JSON and CSV (entered_by); the table
    shows an "Entered by" column when someone other than the budget's own user entered one.

    \b
    Example:
      budget transfers --month 2026-11
      budget transfers --category Food --format json
    """
    from budget_tracker.services.transfers import list_transfers as ledger

    listing = state.database.run(
        lambda session: ledger(
            session,
            user_email=user_email,
            month=month,
            category=category,
            entered_by=entered_by,
        ),
        write=False,
    )
    announce_first_run(listing.first_run)
    records = listing.rows
    rows: list[dict[str, Any]] = [
        {
            "id": record.id,
            "month": f"{record.month:%Y-%m}",
            "from": record.source,
            "to": record.target,
            "amount": record.amount,
            "note": record.note,
            "reverses": record.reverses_id,
            "undone_by": record.undone_by_id,
            "created_at": record.created_at.replace(microsecond=0),
            "entered_by": entered_by_cell(record, fmt),
        }
        for record in records
    ]
    emit(
        rows,
        entered_by_columns(TRANSFER_COLUMNS, records, owner_id=listing.user_id, fmt=fmt),
        fmt,
        json_data=[transfer_json(record) for record in records],
        empty_message="no transfers",
    )
