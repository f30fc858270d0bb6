"""Opening what `budget import` is given, and telling what kind of file it is.

A regular file is read in place. Standard input (`-`), `/dev/stdin` and FIFOs are copied
once into a private temporary file, up to a limit, so every reader can take the two
passes it needs; `/dev/zero` and other binary input are refused after the first block.
The format is decided from the content, never from the file name.
"""

from __future__ import annotations

import codecs
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from budget_tracker.errors import InvalidInput

SNIFF_BYTES = 64 * 1024
CENTRAL_EUROPEAN = frozenset(
    {"Czech", "Polish", "Slovak", "Hungarian", "Croatian", "Slovene", "Romanian", "Serbian"}
)
MAX_STREAM_BYTES = 1 << 30
"""Standard input or a FIFO longer than this is refused (it may never end)."""

_NOT_READ = {
    b"PK\x03\x04": "an Excel workbook or another zip archive (save it as CSV first)",
    b"\xd0\xcf\x11\xe0": "an Excel 97-2003 workbook (save it as CSV first)",
    b"%PDF": "a PDF document (ask your bank for a CSV, OFX, QIF, CAMT or MT940 export)",
    b"\x1f\x8b": "a gzip archive (unpack it first)",
}


@dataclass
class Source:
    name: str
    """What messages call the file: its name, or `stdin`."""
    stream: BinaryIO
    """Seekable, positioned at 0."""
    size: int

    def close(self) -> None:
        self.stream.close()

    def head(self) -> bytes:
        self.stream.seek(0)
        data = self.stream.read(SNIFF_BYTES)
        self.stream.seek(0)
        return data


def open_source(path: Path | str) -> Source:
    """Open `path` (`-` is standard input) for reading; refuses what cannot be a statement."""
    if str(path) == "-":
        return _spool(sys.stdin.buffer, "stdin")
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise InvalidInput(f"{path.name} is a directory, not a file")
        raw: BinaryIO = path.open("rb")
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path} does not exist") from exc
    except PermissionError as exc:
        raise InvalidInput(f"{path} cannot be read (permission denied)") from exc
    except OSError as exc:
        raise InvalidInput(f"{path} cannot be read ({exc.strerror})") from exc
    if stat.S_ISREG(mode):
        source = Source(path.name, raw, os.fstat(raw.fileno()).st_size)
        try:
            _refuse_binary(source.name, source.head())
        except InvalidInput:
            raw.close()
            raise
        return source
    with raw:
        return _spool(raw, path.name)


def _spool(raw: BinaryIO, name: str) -> Source:
    first = raw.read(SNIFF_BYTES)
    _refuse_binary(name, first)
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (returned open, closed by the caller)
    size = len(first)
    spool.write(first)
    while chunk := raw.read(1 << 20):
        size += len(chunk)
        if size > MAX_STREAM_BYTES:
            spool.close()
            raise InvalidInput(
                f"{name} is longer than {MAX_STREAM_BYTES >> 20} MiB; save it to a file first"
            )
        spool.write(chunk)
    spool.seek(0)
    return Source(name, spool, size)


def _refuse_binary(name: str, head: bytes) -> None:
    for magic, what in _NOT_READ.items():
        if head.startswith(magic):
            raise InvalidInput(f"{name} is {what}")
    if not head.strip():
        if head:
            raise InvalidInput(f"{name} holds only blank space, not a statement")
        return
    if _utf16(head) is None and b"\x00" in head:
        raise InvalidInput(f"{name} is a binary file, not a bank statement")


def _utf16(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:200]
    if len(sample) >= 8:
        if sample[1::2].count(0) > len(sample) // 3 and not sample[0::2].count(0):
            return "utf-16-le"
        if sample[0::2].count(0) > len(sample) // 3 and not sample[1::2].count(0):
            return "utf-16-be"
    return None


def check_encoding(name: str) -> str:
    """`name` when Python decodes text with it (`--encoding`, a profile's `encoding`);
    refused as bad input otherwise, including codecs that are not text encodings."""
    try:
        b"a".decode(name)  # empty bytes decode without looking the codec up
    except LookupError:
        raise InvalidInput(f"{name!r} is not an encoding I know") from None
    except UnicodeDecodeError:
        pass  # a text encoding (one byte is not whole UTF-16, for one)
    return name


def detect_encoding(head: bytes) -> tuple[str, bool]:
    """The encoding of a file starting with `head`, and whether it is worth saying.

    A byte-order mark or UTF-16 wins; then UTF-8 when the bytes are UTF-8; otherwise the
    legacy encoding charset-normalizer finds (cp1252, latin-1, cp1250, ...).
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", False
    utf16 = _utf16(head)
    if utf16 is not None:
        return utf16, True
    try:
        head.decode("utf-8")
        return "utf-8", False
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:  # a character cut by the sniff's end
            return "utf-8", False
    from charset_normalizer import from_bytes

    results = from_bytes(head, cp_isolation=["cp1252", "latin_1", "cp1250", "iso8859_15", "cp850"])
    best = results.best()
    encoding = best.encoding if best is not None else "cp1252"
    if encoding in ("cp1250", "cp1252", "latin_1") and not (
        best is not None and best.language in CENTRAL_EUROPEAN
    ):
        # cp1250 and cp1252 share most letters and differ in symbols (cp1252's £ is
        # cp1250's Ł, its ¿ is cp1250's ż). On a short text the language guess is weak,
        # so the words decide: the right encoding does not put symbols inside words
        # ("spo¿ywcze"); on a tie, the file is in the encoding most bank exports use.
        try:
            western = _symbols_in_words(head.decode("cp1252"))
        except UnicodeDecodeError:
            western = None
        central = _symbols_in_words(head.decode("cp1250", errors="replace"))
        if western is not None and western <= central:
            encoding = "cp1252" if encoding == "cp1250" else encoding
        elif western is not None:
            encoding = "cp1250"
    try:
        # Where the text reads the same either way, name the most common one.
        if head.decode("cp1252") == head.decode(encoding, errors="replace"):
            encoding = "cp1252"
    except (UnicodeDecodeError, LookupError):
        pass
    return {"latin_1": "latin-1", "iso8859_15": "iso8859-15"}.get(encoding, encoding), True


def _symbols_in_words(text: str) -> int:
    """How many non-ASCII characters that are not letters touch a letter (`spo¿ywcze`)."""
    count = 0
    for at, char in enumerate(text):
        if char.isascii() or char.isalpha() or char == "\ufffd":
            continue
        before = text[at - 1] if at else ""
        after = text[at + 1] if at + 1 < len(text) else ""
        count += before.isalpha() or after.isalpha()
    return count


def detect_format(head: bytes, encoding: str) -> str:
    """One of csv, ofx, qif, camt, mt940, or what we do not read: a web page ("html"), an
    Excel 2003 XML workbook ("excel-xml") or another XML ("xml"), from the first bytes."""
    text = head.decode(encoding, errors="replace").lstrip("\ufeff \t\r\n")
    upper = text[:4096].upper()
    if upper.startswith("OFXHEADER") or "<OFX>" in upper or "<?OFX" in upper:
        return "ofx"
    if text.startswith("<?xml") or text.startswith("<"):
        if "camt.05" in text[:4096] or "<BkToCstmrStmt" in text[:4096]:
            return "camt"
        if "URN:SCHEMAS-MICROSOFT-COM:OFFICE:SPREADSHEET" in upper or "EXCEL.SHEET" in upper:
            return "excel-xml"
        if upper.startswith(("<!DOCTYPE HTML", "<HTML")) or "<TABLE" in upper:
            return "html"
        return "xml"
    if upper.startswith("!TYPE:") or upper.startswith("!ACCOUNT") or upper.startswith("!OPTION"):
        return "qif"
    if text.startswith(("{1:", ":20:")) or ("\n:20:" in text[:2048] and ":61:" in text):
        return "mt940"
    return "csv"
