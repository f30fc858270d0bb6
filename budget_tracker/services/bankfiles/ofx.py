"""OFX and QFX statements (SGML 1.x and XML 2.x), parsed by ofxtools."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

from budget_tracker.errors import InvalidInput
from budget_tracker.services.bankfiles.records import Record
from budget_tracker.services.bankfiles.source import Source


def records(source: Source) -> Iterator[Record]:
    from ofxtools.header import OFXHeaderError
    from ofxtools.Parser import OFXTree, ParseError

    source.stream.seek(0)
    try:
        root: Any = OFXTree().parse(source.stream)
    except (OFXHeaderError, ParseError, ValueError, KeyError, IndexError) as exc:
        raise InvalidInput(f"{source.name} is an OFX file that does not parse ({exc})") from exc
    for number, transaction in enumerate(root.iter("STMTTRN"), start=1):
        # SGML files keep entities such as &amp; as they are written.
        values = {child.tag: html.unescape((child.text or "").strip()) for child in transaction}
        payee = values.get("NAME", "") or values.get("PAYEE", "")
        memo = values.get("MEMO", "")
        description = payee if not memo or memo == payee else f"{payee} {memo}".strip()
        yield Record(
            line=number,
            date=values.get("DTPOSTED", "")[:8],
            amount=values.get("TRNAMT", ""),
            description=description,
            bank_id=values.get("FITID", ""),
            kind=values.get("TRNTYPE", "").lower(),
            columns=values,
        )
