"""SWIFT MT940 statements, parsed by the mt-940 library a slice at a time.

mt-940 parses a whole text at once and keeps every transaction of it. So the file is read
line by line and handed over in slices: each slice is one statement's opening lines (`:20:`
to the opening balance, which carry the account, the currency and the year) followed by
up to GROUP_TRANSACTIONS of its `:61:` transactions with their `:86:` details. The
library reads each slice exactly as it would read the whole statement, and memory stays
at one slice.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from budget_tracker.errors import InvalidInput
from budget_tracker.services.bankfiles.records import Record
from budget_tracker.services.bankfiles.source import Source

_NO_REFERENCE = ("", "NONREF", "NOTPROVIDED")
GROUP_TRANSACTIONS = 1_000
MAX_LINE_CHARS = 1 << 16
_STATEMENT_START = (":20:", "{1:")


def records(source: Source, encoding: str) -> Iterator[Record]:
    source.stream.seek(0)
    text = io.TextIOWrapper(source.stream, encoding=encoding, errors="replace", newline=None)
    number = 0
    try:
        for piece in _slices(source.name, text):
            for transaction in _parse(source.name, piece):
                number += 1
                yield _record(number, transaction)
    finally:
        text.detach()


def _slices(name: str, text: io.TextIOWrapper) -> Iterator[str]:
    """The file as texts of one statement's opening lines plus some of its transactions."""
    opening: list[str] = []
    group: list[str] = []
    count = 0
    while line := text.readline(MAX_LINE_CHARS + 1):
        if len(line) > MAX_LINE_CHARS:
            raise InvalidInput(
                f"{name} has a line longer than {MAX_LINE_CHARS} characters: not an MT940 "
                "statement; nothing was imported"
            )
        if line.startswith(_STATEMENT_START) and group:
            yield "".join(opening + group)
            opening, group, count = [], [], 0
        if line.startswith(":61:"):
            if count == GROUP_TRANSACTIONS:
                yield "".join(opening + group)
                group, count = [], 0
            count += 1
        (group if count else opening).append(line)
    if group or opening:
        yield "".join(opening + group)


def _parse(name: str, piece: str) -> Any:
    import mt940

    statements: Any = mt940.models.Transactions()
    try:
        statements.parse(piece)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise InvalidInput(f"{name} is an MT940 file that does not parse ({exc})") from exc
    return statements


def _record(number: int, transaction: Any) -> Record:
    data = transaction.data
    booked = data.get("entry_date") or data.get("guessed_entry_date") or data.get("date")
    amount = data["amount"].amount
    name = data.get("applicant_name") or data.get("recipient_name") or ""
    purpose = data.get("purpose") or data.get("transaction_details") or ""
    purpose = " ".join(str(purpose).split())
    reference = str(data.get("bank_reference") or "").strip()
    return Record(
        line=number,
        date=booked.isoformat() if booked is not None else "",
        amount=str(amount),
        description=" ".join(part for part in (str(name), purpose) if part),
        # A bank reference is unique only with the booking it names.
        bank_id="" if reference.upper() in _NO_REFERENCE else f"{reference}|{booked}|{amount}",
        kind="credit" if amount > 0 else "debit",
        columns={"name": str(name), "purpose": purpose},
    )
