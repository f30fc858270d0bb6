"""A bank statement in any format we read, interpreted into the rows to store.

Two passes over the file: the first learns what the file leaves implicit (the date format
from every date, the decimal mark, whether spending is written negative), the second
yields the rows. Credits, pending rows, zero rows, balance lines and rows matched by a skip
rule are not spending: they are counted by reason, never stored as expenses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from budget_tracker.errors import InvalidInput, Wording, option
from budget_tracker.services.bankfiles import amounts, dates, delimited
from budget_tracker.services.bankfiles.records import Record
from budget_tracker.services.bankfiles.source import (
    Source,
    check_encoding,
    detect_encoding,
    detect_format,
)

FORMAT_NAMES = {
    "csv": "CSV",
    "ofx": "OFX",
    "qif": "QIF",
    "camt": "CAMT.053",
    "mt940": "MT940",
}
SPENDING_NEGATIVE = "spending-negative"
SPENDING_POSITIVE = "spending-positive"
OUTFLOW_VALUES = ("d", "dr", "debit", "debet", "af", "s", "soll", "dbit", "out", "withdrawal", "-")
INFLOW_VALUES = (
    "c",
    "cr",
    "credit",
    "kredit",
    "k",
    "bij",
    "h",
    "haben",
    "crdt",
    "in",
    "deposit",
    "+",
)
PENDING = re.compile(
    r"(?i)^(pending|pdng|vorgemerkt|umsatz vorgemerkt|authori[sz]ed|in progress|hold|"
    r"reserverat|reserveret|reservert|venter|afventer|ausstehend|in behandeling)$"
)
NOT_BOOKED = re.compile(r"(?i)^(reverted|declined|failed|cancell?ed|rejected|void)$")
SUMMARY = re.compile(
    r"(?i)^((opening|closing|starting|ending|start|end|new|old|previous|current|available|"
    r"ledger)\s+)?(balance|saldo)(\s+(brought|carried)\s+forward)?:?$|^(anfangs|end|alter|neuer)"
    r"saldo\b.*|^kontostand\b.*|^total\b.*|^summe\b.*|^turnover\b.*|^ums[aä]tze?\s+gesamt.*"
    r"|^(sākuma |beigu )?atlikums$|^apgrozījums$|^(ingående|utgående) saldo.*"
)
MAX_LISTED_CREDITS = 10
ID_DIGEST_CHARS = 53
"""'t' + 53 hex digits: a bank id's key stem, as long as a fingerprint's stem."""


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    column: str | None = None
    category: str | None = None

    def matches(self, record: Record) -> bool:
        if self.column is not None:
            value = record.columns.get(self.column)
            if value is None and self.column.casefold() == "description":
                value = record.description
            return value is not None and self.pattern.search(value) is not None
        texts = [record.description, *record.columns.values()]
        return any(self.pattern.search(text) for text in texts if text)


@dataclass(frozen=True)
class StatementOptions:
    encoding: str | None = None
    layout: delimited.LayoutOptions = field(default_factory=delimited.LayoutOptions)
    date_format: str | None = None
    decimal_comma: bool | None = None
    signs: str | None = None
    outflow_value: str | None = None
    skip_rules: tuple[Rule, ...] = ()
    category_rules: tuple[Rule, ...] = ()
    fallback_category: str | None = None
    category: str | None = None
    keep_credits: bool = False
    """Keep every credit (to record them as income), not only the first few to list."""


@dataclass
class Entry:
    line: int
    date: dt.date
    cents: int
    """Spending, positive."""
    description: str
    category: str
    """The category the options or rules chose; "" when they chose none."""
    file_category: str
    """The category the file itself names (a QIF `L` line, a category column), or ""."""
    identity: str
    """The key stem from the bank's own id, or "" to use the content fingerprint."""


@dataclass
class Credit:
    date: dt.date
    cents: int
    description: str
    kind: str
    identity: str = ""
    """The key stem from the bank's own id, or "" (as for `Entry`)."""


@dataclass
class BadRecord:
    line: int
    column: str
    reason: str | Wording


class Statement:
    """A statement file opened for import; iterate `entries()` once after `prepare()`."""

    def __init__(self, source: Source, options: StatementOptions) -> None:
        self.source = source
        self.options = options
        head = source.head()
        if options.encoding is not None:
            self.encoding, self.encoding_named = check_encoding(options.encoding), True
        else:
            self.encoding, self.encoding_named = detect_encoding(head)
        self.format = detect_format(head, self.encoding)
        if self.format == "xml":
            raise InvalidInput(f"{source.name} is an XML file but not a CAMT statement")
        if self.format == "excel-xml":
            raise InvalidInput(
                f"{source.name} is an Excel 2003 XML workbook (save it as CSV first)"
            )
        if self.format == "html":
            # Several banks' "Excel" download is a web page with a table in it.
            raise InvalidInput(
                f"{source.name} is a web page (HTML), not a spreadsheet or a statement: open "
                "it in a spreadsheet program and save it as CSV"
            )
        layout_options = options.layout
        csv_only = [
            named
            for named, given in (
                (option("columns"), bool(layout_options.columns)),
                (option("skip"), layout_options.skip is not None),
                (option("no_header"), layout_options.no_header),
                (option("delimiter"), layout_options.delimiter is not None),
            )
            if given
        ]
        if self.format != "csv" and csv_only:
            raise InvalidInput(
                f"{source.name} is an {self.format_name} file, not CSV: "
                + Wording.join(", ", csv_only)
                + " only apply to CSV files"
            )
        self.layout: delimited.Layout | None = None
        if self.format == "csv":
            text = head.decode(self.encoding, errors="replace")
            self.layout = delimited.detect_layout(source.name, text, options.layout)
        self.direction_named = (
            "direction" in options.layout.columns or options.outflow_value is not None
        )
        self.date_format = options.date_format
        self.decimal_comma = options.decimal_comma
        self.signs = options.signs
        self.signs_detected: Wording | None = None
        self.skipped: Counter[str] = Counter()
        self.credits: list[Credit] = []
        self.credit_kinds: Counter[str] = Counter()
        self.credit_total = 0
        self.bad: list[BadRecord] = []
        self.bad_count = 0
        self.notes: list[str] = []

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES[self.format]

    def records(self) -> Iterator[Record]:
        from budget_tracker.services.bankfiles import camt, mt940, ofx, qif

        if self.format == "csv":
            assert self.layout is not None
            return delimited.records(self.source, self.encoding, self.layout)
        if self.format == "ofx":
            return ofx.records(self.source)
        if self.format == "qif":
            return qif.records(self.source, self.encoding)
        if self.format == "camt":
            return camt.records(self.source)
        return mt940.records(self.source, self.encoding)

    def prepare(self) -> None:
        """The first pass: decide the date format, the decimal mark and the signs."""
        date_texts: set[str] = set()
        comma = point = negatives = positives = 0
        for record in self.records():
            if self._summary(record) or self._blank(record) or PENDING.match(record.date.strip()):
                continue
            if self.layout is not None and delimited.column_role(record.date) == "date":
                raise InvalidInput(
                    f"{self.source.name}: line {record.line} is another header line "
                    f"({record.date!r} where a date belongs): if the table starts there, give "
                    + option("skip")
                    + f" {record.line - 1}; nothing was imported"
                )
            date_texts.add(record.date)
            for text in (record.amount, record.outflow, record.inflow):
                tail = text.strip().rstrip("-+ CRDcrd€$£").strip()
                if re.search(r",\d{1,2}$", tail):
                    comma += 1
                elif re.search(r"\.\d{1,2}$", tail):
                    point += 1
            if record.amount.strip():
                try:
                    signed = amounts.parse_amount(record.amount)
                except amounts.BadAmount:
                    signed = 0
                negatives += signed < 0
                positives += signed > 0
        if self.decimal_comma is None and (comma or point):
            self.decimal_comma = comma > point
        if self.date_format is None:
            try:
                self.date_format = dates.infer_format(date_texts)
            except dates.DateProblem as exc:
                raise InvalidInput(f"{self.source.name}: " + exc.wording) from exc
        else:
            failing = sorted(t for t in date_texts if not _reads(t, self.date_format))
            if failing:
                raise InvalidInput(
                    f"{self.source.name}: "
                    + option("date_format")
                    + f" {self.date_format} does not read {failing[0]!r} ({len(failing)} of "
                    f"{len(date_texts)} dates in the file); nothing was imported"
                )
        self._decide_signs(negatives, positives)
        if self.layout is not None and self.layout.header_line > 1:
            self.notes.append(f"the header is on line {self.layout.header_line} after a preamble")
        if self.encoding_named:
            self.notes.append(f"the file is {self.encoding}")

    def _decide_signs(self, negatives: int, positives: int) -> None:
        if self.signs is not None:
            return
        layout = self.layout
        if self.format != "csv" or (layout is not None and "direction" in layout.roles):
            self.signs = SPENDING_NEGATIVE
            return
        if layout is not None and "outflow" in layout.roles:
            self.signs = SPENDING_NEGATIVE
            return
        self.signs = SPENDING_NEGATIVE
        if negatives == 0 and positives and not (layout and "direction" in layout.roles):
            raise InvalidInput(
                f"{self.source.name}: every amount is positive, so the file does not show "
                "which way its signs go: give "
                + option("signs")
                + " spending-positive (positive amounts are spending) or "
                + option("signs")
                + " spending-negative (they are money coming in)"
            )
        if positives > negatives:
            # A bank account has more money going out than coming in; a card statement
            # that writes purchases positive and payments negative looks the other way.
            raise InvalidInput(
                f"{self.source.name}: {positives} of {positives + negatives} amounts are "
                "positive, as on a card statement that writes purchases positive: give "
                + option("signs")
                + " spending-positive (positive amounts are spending) or "
                + option("signs")
                + " spending-negative (negative amounts are spending)"
            )
        else:
            self.signs_detected = (
                "negative amounts read as spending (bank style; "
                + option("signs")
                + " spending-positive for the other way round)"
            )

    def entries(self) -> Iterator[Entry]:
        assert self.date_format is not None
        for record in self.records():
            entry = self._entry(record)
            if entry is not None:
                yield entry

    def _entry(self, record: Record) -> Entry | None:
        if self._blank(record):
            if any(record.columns.values()):  # a balance or a footer without a date
                self.skipped["summary"] += 1
            return None
        if self._summary(record):
            self.skipped["summary"] += 1
            return None
        if PENDING.match(record.status.strip()) or PENDING.match(record.date.strip()):
            self.skipped["pending"] += 1
            return None
        if record.status and NOT_BOOKED.match(record.status.strip()):
            self.skipped["not booked"] += 1
            return None
        assert self.date_format is not None
        try:
            date = dates.parse(record.date, self.date_format)
        except ValueError:
            self._bad(
                record.line,
                "date",
                f"{record.date!r} is not a date in the format {self.date_format}",
            )
            return None
        cents = self._cents(record)
        if cents is None:
            return None
        if cents == 0:
            self.skipped["zero"] += 1
            return None
        for rule in self.options.skip_rules:
            if rule.matches(record):
                self.skipped["rule"] += 1
                return None
        if cents > 0:
            self.credit_total += cents
            kind = record.kind or "credit"
            self.credit_kinds[kind] += 1
            if len(self.credits) < MAX_LISTED_CREDITS or self.options.keep_credits:
                self.credits.append(
                    Credit(date, cents, record.description, kind, _identity(record.bank_id))
                )
            return None
        category = self._category(record)
        identity = _identity(record.bank_id)
        return Entry(
            record.line, date, -cents, record.description, category, record.category, identity
        )

    def _category(self, record: Record) -> str:
        if self.options.category is not None:
            return self.options.category
        for rule in self.options.category_rules:
            if rule.matches(record):
                return rule.category or ""
        return ""

    def _cents(self, record: Record) -> int | None:
        """Signed cents, negative for money out; None when the row is bad."""
        comma = self.decimal_comma
        try:
            if record.amount or not (record.outflow or record.inflow):
                value = amounts.parse_amount(record.amount, decimal_comma=comma)
                if record.direction:
                    direction = record.direction.strip().casefold()
                    outflow = self.options.outflow_value
                    if outflow is not None:
                        is_out = direction == outflow.casefold()
                    elif direction in OUTFLOW_VALUES:
                        is_out = True
                    elif direction in INFLOW_VALUES:
                        is_out = False
                    elif self.direction_named:
                        self._bad(
                            record.line,
                            "direction",
                            f"{record.direction!r} is neither debit nor credit (name the "
                            "money-out value with " + option("outflow_value") + ")",
                        )
                        return None
                    else:  # a type column that does not say debit or credit: the sign does
                        return -value if self.signs == SPENDING_POSITIVE else value
                    return -abs(value) if is_out else abs(value)
                return -value if self.signs == SPENDING_POSITIVE else value
            out = (
                abs(amounts.parse_amount(record.outflow, decimal_comma=comma))
                if record.outflow
                else 0
            )
            into = (
                abs(amounts.parse_amount(record.inflow, decimal_comma=comma))
                if record.inflow
                else 0
            )
            return into - out
        except amounts.BadAmount as exc:
            message = str(exc)
            if "is not an amount" in message and comma is not None:
                mark = "comma" if comma else "point"
                message += f" (the file writes a decimal {mark})"
            self._bad(record.line, "amount", message)
            return None

    def _bad(self, line: int, column: str, reason: str | Wording) -> None:
        self.bad_count += 1
        if len(self.bad) < 20:
            self.bad.append(BadRecord(line, column, reason))

    @staticmethod
    def _blank(record: Record) -> bool:
        return not record.date and not (record.amount or record.outflow or record.inflow)

    @staticmethod
    def _summary(record: Record) -> bool:
        if SUMMARY.match(record.description.strip()):
            return True
        return any(
            len(value) < 40 and SUMMARY.match(value.strip())
            for value in (record.date, *record.columns.values())
            if value
        )


def _identity(bank_id: str) -> str:
    """A row's key stem from the bank's own id ("" without one)."""
    if not bank_id:
        return ""
    return "t" + hashlib.sha256(bank_id.encode()).hexdigest()[:ID_DIGEST_CHARS]


def _reads(text: str, fmt: str) -> bool:
    try:
        dates.parse(text, fmt)
    except ValueError:
        return False
    return True


def rule(pattern: str, *, column: str | None = None, category: str | None = None) -> Rule:
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise InvalidInput(f"{pattern!r} is not a valid pattern ({exc})") from exc
    return Rule(compiled, column, category)


def columns_option(mapping: Mapping[str, str]) -> dict[str, str]:
    return dict(mapping)
