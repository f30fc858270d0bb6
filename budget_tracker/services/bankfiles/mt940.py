"""SWIFT MT940 statements, parsed by the mt-940 library."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from budget_tracker.errors import InvalidInput
from budget_tracker.services.bankfiles.records import Record
from budget_tracker.services.bankfiles.source import Source

_NO_REFERENCE = ("", "NONREF", "NOTPROVIDED")


def records(source: Source, encoding: str) -> Iterator[Record]:
    import mt940

    source.stream.seek(0)
    text = source.stream.read().decode(encoding, errors="replace")
    statements: Any = mt940.models.Transactions()
    try:
        statements.parse(text)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise InvalidInput(f"{source.name} is an MT940 file that does not parse ({exc})") from exc
    for number, transaction in enumerate(statements, start=1):
        data = transaction.data
        booked = data.get("entry_date") or data.get("guessed_entry_date") or data.get("date")
        amount = data["amount"].amount
        name = data.get("applicant_name") or data.get("recipient_name") or ""
        purpose = data.get("purpose") or data.get("transaction_details") or ""
        purpose = " ".join(str(purpose).split())
        reference = str(data.get("bank_reference") or "").strip()
        yield Record(
            line=number,
            date=booked.isoformat() if booked is not None else "",
            amount=str(amount),
            description=" ".join(part for part in (str(name), purpose) if part),
            # A bank reference is unique only with the booking it names.
            bank_id="" if reference.upper() in _NO_REFERENCE else f"{reference}|{booked}|{amount}",
            kind="credit" if amount > 0 else "debit",
            columns={"name": str(name), "purpose": purpose},
        )
