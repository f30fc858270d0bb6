"""QIF (Quicken Interchange Format): `D` date, `T`/`U` amount, `P` payee, `M` memo,
`L` category (the part before any `:` subcategory or `/` class), `^` ends a record.

A whole-file export from Quicken also holds account headers (`!Account`), category and
class lists and memorized payees, whose records use the same letters for other things (a
category's `D` is its description), and investment accounts whose rows are trades. Only the
records of cash, bank, card and other asset or liability accounts are statement lines.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from budget_tracker.services.bankfiles.records import Record
from budget_tracker.services.bankfiles.source import Source

ACCOUNT_TYPES = frozenset({"bank", "cash", "ccard", "oth a", "oth l"})


def records(source: Source, encoding: str) -> Iterator[Record]:
    source.stream.seek(0)
    text = io.TextIOWrapper(source.stream, encoding=encoding, errors="replace", newline=None)
    fields: dict[str, str] = {}
    start = 0
    reading = True
    try:
        for number, raw in enumerate(text, start=1):
            line = raw.strip()
            if not line:
                continue
            if line.startswith("!"):
                header = line.casefold()
                if header.startswith("!type:"):
                    reading = header[len("!type:") :].strip() in ACCOUNT_TYPES
                    fields = {}
                elif header.startswith("!account"):
                    reading = False
                    fields = {}
                continue
            if not reading:
                continue
            if line.startswith("^"):
                if "D" in fields:
                    yield _record(start, fields)
                fields = {}
                continue
            if not fields:
                start = number
            code, value = line[0], line[1:].strip()
            if code not in fields:
                fields[code] = value
        if "D" in fields and reading:
            yield _record(start, fields)
    finally:
        text.detach()


def _record(line: int, fields: dict[str, str]) -> Record:
    payee, memo = fields.get("P", ""), fields.get("M", "")
    category = fields.get("L", "")
    if category.startswith("["):
        category = ""  # a transfer to another account, not a category
    category = category.split("/")[0].split(":")[0].strip()
    return Record(
        line=line,
        date=fields["D"],
        amount=fields.get("T", fields.get("U", "")),
        description=payee if not memo or memo == payee else f"{payee} {memo}".strip(),
        category=category,
        columns={"payee": payee, "memo": memo, "category": fields.get("L", "")},
    )
