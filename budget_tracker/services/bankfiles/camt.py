"""ISO 20022 CAMT.053 (and .052/.054) bank-to-customer statements, streamed entry by
entry with defusedxml (no entity expansion, no external references)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from budget_tracker.errors import InvalidInput
from budget_tracker.services.bankfiles.records import Record
from budget_tracker.services.bankfiles.source import Source


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(element: Any, *path: str) -> Any:
    for name in path:
        if element is None:
            return None
        element = next((child for child in element if _local(child.tag) == name), None)
    return element


def _text(element: Any, *path: str) -> str:
    found = _find(element, *path)
    return (found.text or "").strip() if found is not None else ""


def records(source: Source) -> Iterator[Record]:
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import iterparse

    source.stream.seek(0)
    number = 0
    parents: list[Any] = []
    try:
        for event, element in iterparse(source.stream, events=("start", "end")):
            if event == "start":
                parents.append(element)
                continue
            parents.pop()
            if _local(element.tag) != "Ntry":
                continue
            number += 1
            yield _record(number, element)
            # Let go of the entry entirely, so memory stays flat however long the file.
            element.clear()
            if parents:
                parents[-1].remove(element)
    except (ParseError, DefusedXmlException) as exc:
        raise InvalidInput(f"{source.name} is XML that does not parse safely ({exc})") from exc


def _record(number: int, entry: Any) -> Record:
    amount = _text(entry, "Amt")
    debit = _text(entry, "CdtDbtInd") == "DBIT"
    status = _text(entry, "Sts") or _text(entry, "Sts", "Cd")
    date = _text(entry, "BookgDt", "Dt") or _text(entry, "BookgDt", "DtTm")
    date = date or _text(entry, "ValDt", "Dt") or _text(entry, "ValDt", "DtTm")
    details = _find(entry, "NtryDtls", "TxDtls")
    party = ""
    remittance = ""
    if details is not None:
        side = ("Cdtr",) if debit else ("Dbtr",)
        party = _text(details, "RltdPties", *side, "Nm") or _text(
            details, "RltdPties", *side, "Pty", "Nm"
        )
        remittance = " ".join(
            (child.text or "").strip()
            for child in (_find(details, "RmtInf") or [])
            if _local(child.tag) == "Ustrd"
        )
    info = _text(entry, "AddtlNtryInf")
    description = " ".join(part for part in (party, remittance or info) if part)
    return Record(
        line=number,
        date=date,
        amount=f"-{amount}" if debit else amount,
        description=description,
        bank_id=_text(entry, "AcctSvcrRef") or _text(entry, "NtryRef"),
        status="pending" if status.upper() in ("PDNG", "PENDING") else "",
        kind="credit" if not debit else "debit",
        columns={"party": party, "remittance": remittance, "info": info},
    )
