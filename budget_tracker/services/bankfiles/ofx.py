"""OFX and QFX statements (SGML 1.x and XML 2.x), parsed by ofxtools one transaction at a
time.

ofxtools reads a whole document into one tree (hundreds of megabytes for a statement of a
few hundred thousand transactions). So the file is read as a stream instead: ofxtools
checks the header (which also names the body's encoding), and each `<STMTTRN>` aggregate
is cut from the body as it comes and handed to ofxtools' own tag parser on its own. An
aggregate is always closed in both OFX versions (only data elements may be left open in
SGML), so memory stays at one transaction plus a read buffer. A file that stops before
its closing `</OFX>` (a download cut short) is refused rather than imported in part.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator
from typing import Any

from budget_tracker.errors import InvalidInput
from budget_tracker.services.bankfiles.records import Record
from budget_tracker.services.bankfiles.source import Source

READ_CHARS = 1 << 16
MAX_TRANSACTION_CHARS = 1 << 20
"""One `<STMTTRN>` aggregate longer than this is surely missing its closing tag."""
_OPEN = "<STMTTRN>"
_CLOSE = "</STMTTRN>"
_BODY = re.compile(rb"<OFX>", re.IGNORECASE)
_END = re.compile(r"</OFX>[\s\x00]*$", re.IGNORECASE)


def records(source: Source) -> Iterator[Record]:
    codec = _header_codec(source)
    source.stream.seek(0)
    text = io.TextIOWrapper(source.stream, encoding=codec, errors="replace", newline=None)
    try:
        yield from _transactions(source.name, text)
    finally:
        text.detach()


def _header_codec(source: Source) -> str:
    """The body's encoding, once ofxtools has accepted the header (V1 lines or V2 XML)."""
    from ofxtools.header import OFXHeaderError, parse_header

    head = source.head()
    body = _BODY.search(head)
    if body is None:
        raise InvalidInput(f"{source.name} is an OFX file that does not parse (no <OFX> tag)")
    try:
        # Only the header and the body's opening tag: parse_header reads to the end of
        # what it is given.
        header, _message = parse_header(io.BytesIO(head[: body.end()]))
    except (OFXHeaderError, ValueError, KeyError, IndexError) as exc:
        raise InvalidInput(f"{source.name} is an OFX file that does not parse ({exc})") from exc
    codec: str = header.codec
    try:
        "".encode(codec)
    except LookupError as exc:
        raise InvalidInput(f"{source.name} names an encoding I do not know ({codec})") from exc
    return codec


def _transactions(name: str, text: io.TextIOWrapper) -> Iterator[Record]:
    from ofxtools.Parser import ParseError, TreeBuilder

    buffer = ""
    number = 0
    last = ""
    while chunk := text.read(READ_CHARS):
        buffer += chunk
        last = (last + chunk)[-256:]
        while True:
            start = buffer.find(_OPEN)
            if start == -1:
                # Keep what could be the start of a tag cut by the read.
                buffer = buffer[-(len(_OPEN) - 1) :]
                break
            end = buffer.find(_CLOSE, start)
            if end == -1:
                buffer = buffer[start:]
                if len(buffer) > MAX_TRANSACTION_CHARS:
                    raise InvalidInput(
                        f"{name}: transaction {number + 1} runs over "
                        f"{MAX_TRANSACTION_CHARS >> 20} MiB without {_CLOSE}; nothing was imported"
                    )
                break
            block = buffer[start : end + len(_CLOSE)]
            buffer = buffer[end + len(_CLOSE) :]
            number += 1
            builder = TreeBuilder()
            try:
                builder.feed(block)
                element: Any = builder.close()
            except (ParseError, AssertionError) as exc:
                raise InvalidInput(
                    f"{name}: transaction {number} does not parse ({exc}); nothing was imported"
                ) from exc
            yield _record(number, element)
    if _OPEN in buffer:
        raise InvalidInput(
            f"{name}: transaction {number + 1} has no {_CLOSE}; the file is cut short, "
            "nothing was imported"
        )
    if not _END.search(last):
        raise InvalidInput(
            f"{name} ends before </OFX>: the download is cut short (ask the bank for it "
            "again); nothing was imported"
        )


def _record(number: int, transaction: Any) -> Record:
    # SGML files keep entities such as &amp; as they are written.
    values = {child.tag: html.unescape((child.text or "").strip()) for child in transaction}
    payee = values.get("NAME", "") or values.get("PAYEE", "")
    memo = values.get("MEMO", "")
    description = payee if not memo or memo == payee else f"{payee} {memo}".strip()
    return Record(
        line=number,
        date=values.get("DTPOSTED", "")[:8],
        amount=values.get("TRNAMT", ""),
        description=description,
        bank_id=values.get("FITID", ""),
        kind=values.get("TRNTYPE", "").lower(),
        columns=values,
    )
