"""Import expenses from a bank statement or a CSV file: every row or none, never twice.

One streaming pass reads the file, validates each row and loads the good ones into a
transaction-scoped staging table (PostgreSQL: one `COPY`; SQLite: batched inserts). Bad
rows are collected, not written. Only when the whole file is valid is a single
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` run from the staging table into `expenses`,
in the same transaction as everything else, so a refusal, an error or a killed process
leaves the database as it was. Memory stays flat: rows are never held all at once.

The file `budget export` writes (columns date, amount, category, description) takes a
fast path tuned for millions of rows (`_RowReader`). Anything else is a bank statement:
`bankfiles` tells its format from the content and interprets it (`_StatementReader`);
both feed the same staging table and the same INSERT.

Each row's key, stored in `expenses.idempotency_key`, makes a re-import a no-op. When the
bank gives the row an id (OFX FITID, CAMT AcctSvcrRef, an id column) the key is

    "t" + first 53 hex digits of sha256(id) + ":" + N

and otherwise it is the row's content fingerprint

    YYYYMMDD + first 46 hex digits of sha256("date␟cents␟description") + ":" + N

The category is not part of either, so importing a file again with another category or
profile adds nothing. (Keys written before the category was dropped from the fingerprint
are rewritten to this form by migration 0007.)

where N is the occurrence of that identical row in the file (1 for the first). Identical
rows in one file are therefore kept as separate expenses, and importing the file again (or
an export that overlaps it) finds every key already present. The occurrence number is
computed in SQL (`row_number()` over the staging table), so no per-row state is kept in
Python. The date prefix keeps the unique index's inserts local for files sorted by date
(a random key would touch a random index page per row). The `:` means a fingerprint can
never equal the 32-digit uuid4 hex keys that other commands store.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO
from unicodedata import is_normalized

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    cast,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from budget_tracker.errors import InvalidInput, UnknownCategories, Wording, option
from budget_tracker.models import (
    Category,
    Expense,
    entering_user,
    insert_new_only,
    name_columns,
    name_key,
)
from budget_tracker.money import AmountError, from_cents, parse_amount, to_cents
from budget_tracker.rules import (
    DESCRIPTION_MAX,
    NAME_KEY_MAX,
    NAME_MAX,
    RuleViolation,
    check_date,
    check_description,
    check_name,
)
from budget_tracker.services.bankfiles import amounts as bank_amounts
from budget_tracker.services.bankfiles.delimited import MAX_FIELD_LINES, LayoutOptions
from budget_tracker.services.bankfiles.source import (
    Source,
    check_encoding,
    detect_encoding,
    open_source,
)
from budget_tracker.services.bankfiles.statement import (
    Credit,
    Rule,
    Statement,
    StatementOptions,
)
from budget_tracker.services.users import FirstRun, acting_user

FIELDS = ("date", "amount", "category", "description")
"""The columns `budget export` writes and `budget import` reads by default."""

MAX_REPORTED_ERRORS = 20
PREVIEW_ROWS = 10
MAX_LISTED_CONFLICTS = 5
DEFAULT_CATEGORY = "Uncategorized"
"""Where a bank file's rows go when nothing else names their category (created if needed)."""
FINGERPRINT_DIGEST_CHARS = 46
FINGERPRINT_STEM_CHARS = 8 + FINGERPRINT_DIGEST_CHARS
"""YYYYMMDD + 46 hex digits; with ':' and up to 9 occurrence digits it fits String(64)."""
STAGING_BATCH_ROWS = 5_000
MAX_IMPORT_CENTS = 99_999_999_99
"""The largest amount `money.parse_amount` accepts (8 digits before the point)."""
COPY_CHUNK_CHARS = 1 << 16
IMPORT_WORK_MEM = "256MB"

ProgressCallback = Callable[[int], None]


class Signs(StrEnum):
    """How the sign of an amount is read."""

    SPENDING_POSITIVE = "spending-positive"
    """Every amount is spending and must be positive (the format `budget export` writes)."""
    SPENDING_NEGATIVE = "spending-negative"
    """Bank style: spending is negative; positive amounts (income, refunds) are skipped."""


class Credits(StrEnum):
    """What becomes of money coming in (salary, refunds, interest)."""

    SKIP = "skip"
    """Counted and listed in the summary, not stored."""
    INCOME = "income"
    """Recorded as income, never twice (keyed like expenses)."""


@dataclass(frozen=True)
class ImportOptions:
    columns: Mapping[str, str] = field(default_factory=dict)
    """Field -> the file's header (or 1-based position) for it, when it is not found."""
    delimiter: str | None = None
    """`,`, `;`, tab or `|`; None: found from the content."""
    date_format: str | None = None
    """A strptime format; None: ISO for `budget export` files, inferred for bank files."""
    category: str | None = None
    """Put every row into this category (the file's category column is ignored)."""
    signs: Signs | None = None
    """None: positive for `budget export` files; detected or bank style for bank files."""
    decimal_comma: bool | None = None
    create_categories: bool = False
    dry_run: bool = False
    encoding: str | None = None
    skip: int | None = None
    """Lines before the header (None: the header is found after any preamble)."""
    no_header: bool = False
    outflow_value: str | None = None
    """The direction column's value for money out (None: D, DR, Debit, Af, Soll, ...)."""
    description: str | None = None
    """A column name or a template such as `{Payee} {Memo}`."""
    credits: Credits = Credits.SKIP
    skip_rules: tuple[Rule, ...] = ()
    category_rules: tuple[Rule, ...] = ()
    fallback_category: str | None = None

    def is_plain(self) -> bool:
        """Only options the `budget export` format knows (so the fast path may take it)."""
        return (
            self.skip is None
            and not self.no_header
            and self.outflow_value is None
            and self.description is None
            and not self.skip_rules
            and not self.category_rules
            and self.fallback_category is None
            and set(self.columns) <= set(FIELDS)
            and self.credits is Credits.SKIP
        )


@dataclass(frozen=True)
class BadRow:
    line: int
    column: str
    value: str
    reason: str | Wording
    """A sentence that names the value (and may name an option)."""

    @property
    def wording(self) -> Wording:
        where = f"line {self.line}, column {self.column}" if self.column else f"line {self.line}"
        return Wording.of(f"{where}: ", self.reason)

    def __str__(self) -> str:
        return str(self.wording)


@dataclass(frozen=True)
class PreviewRow:
    spent_on: dt.date
    cents: int
    category: str
    description: str


@dataclass(frozen=True)
class IdConflict:
    """A row whose bank id is already stored for a row with another date or amount."""

    line: int
    spent_on: dt.date
    cents: int
    stored_on: dt.date
    stored_cents: int


@dataclass(frozen=True)
class ImportSummary:
    file: str
    rows: int
    """Expense rows in the file (skipped income rows not counted)."""
    new: int
    present: int
    skipped_income: int
    created_categories: tuple[str, ...]
    dry_run: bool
    first_run: FirstRun | None
    format: str = "CSV"
    notes: tuple[str | Wording, ...] = ()
    """What was found that the user did not say: the encoding, a preamble, the signs."""
    skipped: Mapping[str, int] = field(default_factory=dict)
    """Rows that are not spending, by reason (credits are in `credit_kinds`)."""
    credit_kinds: Mapping[str, int] = field(default_factory=dict)
    credits: tuple[Credit, ...] = ()
    """The first credits skipped, to show them."""
    credit_cents: int = 0
    income_new: int = 0
    """Credits recorded as income by this import (`--credits income`)."""
    income_present: int = 0
    id_conflicts: int = 0
    """Rows taken as present by the bank's id although the row stored under it differs."""
    id_conflict_rows: tuple[IdConflict, ...] = ()
    """The first of them, to show them."""
    preview: tuple[PreviewRow, ...] = ()
    first_date: dt.date | None = None
    last_date: dt.date | None = None
    total_cents: int = 0


# The staging table lives only inside the import's transaction: on PostgreSQL it is
# dropped at COMMIT (so it is safe through PgBouncer in transaction mode); on SQLite it is
# dropped explicitly before the commit. Its own MetaData keeps it out of the app schema
# and out of Alembic's autogenerate.
_staging_metadata = MetaData()
STAGING = Table(
    "budget_import_staging",
    _staging_metadata,
    Column("line", Integer, nullable=False),
    Column("spent_on", Date, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("category_key", String(NAME_KEY_MAX), nullable=False),
    Column("description", String(DESCRIPTION_MAX), nullable=False),
    # Byte order on PostgreSQL: the occurrence numbering sorts by it, and the database's
    # default collation compares through the C library (slower, and no abbreviated keys).
    Column(
        "fingerprint",
        String(FINGERPRINT_STEM_CHARS).with_variant(
            String(FINGERPRINT_STEM_CHARS, collation="C"), "postgresql"
        ),
        nullable=False,
    ),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
STAGING_COLUMNS = tuple(column.name for column in STAGING.columns)

StagingRow = tuple[int, str, int, str, str, str]
"""line, ISO date, cents, category name_key, description, fingerprint stem."""


def import_expenses(
    session: Session,
    *,
    user_email: str | None,
    path: Path | str,
    options: ImportOptions,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import every row of the CSV file at `path` for the acting user, or none of them.

    Raises InvalidInput (bad header or bad rows, listing them) or UnknownCategories
    (without `create_categories`); the caller's transaction then rolls back.
    With `dry_run` everything runs inside a savepoint that is rolled back.
    """
    source = open_source(path)
    try:
        reader = _open_reader(source, options, progress)
        savepoint = session.begin_nested() if options.dry_run else None
        acting = acting_user(session, user_email=user_email)
        user, first_run = acting.user, acting.first_run
        known = set(session.scalars(select(Category.name_key).where(Category.user_id == user.id)))
        if isinstance(reader, _StatementReader):
            reader.known_categories = known
        _create_staging(session)
        _load_staging(session, reader.rows())
        reader.raise_if_bad()
        created = _resolve_categories(session, user_id=user.id, reader=reader, options=options)
        preview: tuple[PreviewRow, ...] = ()
        first = last = None
        total = 0
        if options.dry_run:
            preview, first, last, total = _preview(session, names=reader.categories)
        conflicts: tuple[int, tuple[IdConflict, ...]] = (0, ())
        if isinstance(reader, _StatementReader):
            conflicts = _id_conflicts(session, user_id=user.id)
        new = _insert_new_expenses(session, user_id=user.id)
        _drop_staging(session)
        income_new = income_rows = 0
        if options.credits is Credits.INCOME and isinstance(reader, _StatementReader):
            income_rows = len(reader.statement.credits)
            income_new = _insert_new_income(
                session, user_id=user.id, credits=reader.statement.credits
            )
        if savepoint is not None:
            savepoint.rollback()
            first_run = None
    finally:
        source.close()
    statement = reader.statement if isinstance(reader, _StatementReader) else None
    return ImportSummary(
        file=source.name,
        rows=reader.row_count,
        new=new,
        present=reader.row_count - new,
        skipped_income=reader.skipped_income,
        created_categories=created,
        dry_run=options.dry_run,
        first_run=first_run,
        format=statement.format_name if statement else "CSV",
        notes=tuple(reader.notes),
        skipped=dict(statement.skipped) if statement else {},
        credit_kinds=dict(statement.credit_kinds) if statement else {},
        credits=tuple(statement.credits) if statement else (),
        credit_cents=statement.credit_total if statement else 0,
        id_conflicts=conflicts[0],
        id_conflict_rows=conflicts[1],
        preview=preview,
        first_date=first,
        last_date=last,
        total_cents=total,
        income_new=income_new,
        income_present=income_rows - income_new,
    )


def _open_reader(
    source: Source, options: ImportOptions, progress: ProgressCallback | None
) -> _RowReader | _StatementReader:
    """The fast reader for the format `budget export` writes; the statement reader else."""
    head = source.head()
    if not head.strip():
        raise InvalidInput(f"{source.name} is empty: expected a header line first")
    encoding, worth_saying = options.encoding, False
    if encoding is not None:
        check_encoding(encoding)
    else:
        encoding, worth_saying = detect_encoding(head)
    if options.is_plain() and not encoding.startswith("utf-16"):
        first = head.decode(encoding, errors="replace").lstrip("\ufeff").split("\n", 1)[0]
        if _is_export_header(first, options):
            reader = _RowReader(source, options, progress, encoding=encoding)
            if worth_saying:
                reader.notes.append(f"the file is {encoding}")
            return reader
    return _StatementReader(source, options)


def _is_export_header(line: str, options: ImportOptions) -> bool:
    titles = {options.columns.get(name, name).strip().casefold() for name in FIELDS}
    delimiter = options.delimiter or _guess_delimiter(line)
    cells = [cell.strip().casefold() for cell in next(csv.reader([line], delimiter=delimiter), [])]
    # A file `budget export` wrote always has a category column.
    needed = {options.columns.get(name, name).strip().casefold() for name in FIELDS[:3]}
    return bool(cells) and set(cells) <= titles and needed <= set(cells)


def _preview(
    session: Session, *, names: Mapping[str, str]
) -> tuple[tuple[PreviewRow, ...], dt.date | None, dt.date | None, int]:
    """The first staged rows as they will be stored, the date range and the total."""
    rows = session.execute(
        select(STAGING.c.spent_on, STAGING.c.amount, STAGING.c.category_key, STAGING.c.description)
        .order_by(STAGING.c.line)
        .limit(PREVIEW_ROWS)
    ).all()
    first, last, total = session.execute(
        select(
            func.min(STAGING.c.spent_on), func.max(STAGING.c.spent_on), func.sum(STAGING.c.amount)
        )
    ).one()
    preview = tuple(
        PreviewRow(
            dt.date.fromisoformat(str(spent_on)), int(cents), names.get(key, key), description
        )
        for spent_on, cents, key, description in rows
    )
    return preview, _as_date(first), _as_date(last), int(total or 0)


def _as_date(value: object) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def fingerprint(spent_on: dt.date, cents: int, description: str, occurrence: int) -> str:
    """The idempotency key of the `occurrence`-th identical row of a file.

    The reading loop computes the same stem inline (for speed) and SQL appends the
    occurrence; tests hold the two equal.
    """
    return f"{fingerprint_stem(spent_on.isoformat(), cents, description)}:{occurrence}"


def fingerprint_stem(iso_date: str, cents: int, description: str) -> str:
    """YYYYMMDD and the digest of the row's content (not its category: see the module)."""
    digest = hashlib.sha256(f"{iso_date}\x1f{cents}\x1f{description}".encode()).hexdigest()
    return iso_date.replace("-", "") + digest[:FINGERPRINT_DIGEST_CHARS]


# --- reading and validating ---------------------------------------------------------------

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Exactly the grammar of money.parse_amount, with an optional minus: sign, units, cents.
_FAST_AMOUNT = re.compile(r"(-?)([0-9]{1,8})(?:\.([0-9]{1,2}))?")
_FAST_AMOUNT_COMMA = re.compile(r"(-?)([0-9]{1,8})(?:,([0-9]{1,2}))?")
_SURROGATE = re.compile("[\udc80-\udcff]")
CACHE_LIMIT = 100_000
"""Distinct date and category texts remembered while reading (keeps memory bounded)."""
_GROUPED_POINT = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_GROUPED_COMMA = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]+)?")
_DELIMITER_CANDIDATES = (",", ";", "\t")


def _display(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else delimiter


class _RowReader:
    """Streams a CSV file as staging rows, recording bad rows instead of yielding them.

    The loop in `_records` is the import's hot path (a million rows should parse in a few
    seconds), so the common case is handled inline: ISO dates and categories are cached
    by their text, and plain amounts (`12`, `-12.5`) are turned into cents by a regex that
    accepts exactly what `money.parse_amount` accepts. Anything else takes the slow path
    through `parse_amount` and the checks below, which also word the error messages.
    """

    def __init__(
        self,
        source: Source,
        options: ImportOptions,
        progress: ProgressCallback | None,
        *,
        encoding: str = "utf-8",
    ):
        self.encoding = "utf-8-sig" if encoding == "utf-8" else encoding
        self.name = source.name
        self.source = source
        self.options = options
        self.notes: list[str | Wording] = []
        self.progress = progress
        self.row_count = 0
        self.skipped_income = 0
        self.bad_rows: list[BadRow] = []
        self.bad_count = 0
        self.categories: dict[str, str] = {}
        """name_key -> the name as first written in the file (created with that spelling)."""
        self._fixed_category: str | None = None
        if options.category is not None:
            name = " ".join(options.category.split())
            self._fixed_category = name_key(name)
            self.categories[self._fixed_category] = name

    def rows(self) -> Iterator[StagingRow]:
        """Open the file and check its header now; the rows follow as they are read."""
        # surrogateescape: bytes that are not UTF-8 survive decoding as lone surrogates,
        # so the row holding them is reported with its line number instead of the whole
        # read failing. utf-8-sig drops a leading byte-order mark.
        raw = self.source.stream
        raw.seek(0)
        stream = io.TextIOWrapper(raw, encoding=self.encoding, errors="surrogateescape", newline="")
        try:
            first = stream.readline()
            if not first.strip():
                raise InvalidInput(f"{self.name} is empty: expected a header line first")
            delimiter = self.options.delimiter or _guess_delimiter(first)
            # strict: a quote that is never closed is an error, not the rest of the file
            # swallowed into one field.
            reader = csv.reader(itertools.chain([first], stream), delimiter=delimiter, strict=True)
            header = next(reader)
            if _SURROGATE.search(first):
                raise InvalidInput(f"{self.name}: the header line is not UTF-8 text")
            index = self._column_indexes(header, delimiter)
        except BaseException:
            stream.detach()
            raise
        return _detaching(stream, self._records(reader, index, len(header), raw))

    def raise_if_bad(self) -> None:
        if not self.bad_count:
            return
        raise _bad_rows(self.name, self.bad_count, self.bad_rows)

    def _column_indexes(self, header: list[str], delimiter: str) -> dict[str, int | None]:
        positions: dict[str, int] = {}
        for at, cell in enumerate(header):
            positions.setdefault(cell.strip().casefold(), at)
        needed = [name for name in FIELDS if not (name == "category" and self._fixed_category)]
        index: dict[str, int | None] = {"category": None, "description": None}
        for name in needed:
            title = self._title(name)
            position = positions.get(title.strip().casefold())
            if position is None and (name != "description" or name in self.options.columns):
                found = ", ".join(repr(cell.strip()) for cell in header)
                hint = "map it with " + option("columns") + f" {name}=HEADER"
                if name == "category":
                    hint += " or put every row in one category with " + option("category")
                    hint += " NAME"
                raise InvalidInput(
                    f"{self.name} has no column {title!r} (its header, split on "
                    f"{_display(delimiter)!r}, has {found}): " + hint
                )
            index[name] = position
        return index

    def _records(
        self,
        reader: Iterator[list[str]],
        index: Mapping[str, int | None],
        width: int,
        raw: BinaryIO,
    ) -> Iterator[StagingRow]:
        line_num = 1  # the header
        try:
            yield from self._parsed(reader, index, width, raw, line_num)
        except csv.Error as exc:
            raise _unreadable_field(self.name, self._line_reached, exc) from exc

    _line_reached = 1

    def _parsed(
        self,
        reader: Iterator[list[str]],
        index: Mapping[str, int | None],
        width: int,
        raw: BinaryIO,
        line_num: int,
    ) -> Iterator[StagingRow]:
        date_at = index["date"]
        amount_at = index["amount"]
        category_at = index["category"]
        description_at = index["description"]
        assert date_at is not None and amount_at is not None
        titles = {name: self._title(name) for name in FIELDS}
        fast_amount = (_FAST_AMOUNT_COMMA if self.options.decimal_comma else _FAST_AMOUNT).fullmatch
        negative_is_spending = self.options.signs is Signs.SPENDING_NEGATIVE
        dates: dict[str, tuple[str, str]] = {}  # text -> (ISO date, YYYYMMDD)
        categories: dict[str, str] = {}  # text -> name_key
        sha256 = hashlib.sha256
        progress = self.progress
        reported = raw.tell()
        for record in reader:
            line = line_num + 1
            line_num = reader.line_num  # type: ignore[attr-defined]
            self._line_reached = line_num
            if line_num - line >= MAX_FIELD_LINES:
                raise InvalidInput(
                    f"{self.name}: line {line}: a quoted field opens there and runs over "
                    f"{line_num - line + 1} lines; is a closing quote missing? Nothing was "
                    "imported"
                )
            if progress is not None and not line_num & 0x1FFF:
                position = raw.tell()
                progress(position - reported)
                reported = position
            if not record:
                continue  # a blank line
            if len(record) != width:
                self._bad(
                    line,
                    "",
                    "",
                    f"has {len(record)} fields but the header has {width} "
                    "(quote fields that contain the delimiter)",
                )
                continue
            errors_before = self.bad_count

            date_text = record[date_at]
            date = dates.get(date_text)
            if date is None:
                date = self._date(line, titles["date"], date_text)
                if date is not None and len(dates) < CACHE_LIMIT:
                    dates[date_text] = date

            amount_text = record[amount_at]
            match = fast_amount(amount_text)
            cents: int | None = None
            if match is not None:
                sign, whole, fraction = match.groups()
                cents = int(whole) * 100
                if fraction:
                    cents += int(fraction) * (10 if len(fraction) == 1 else 1)
                if negative_is_spending and cents:
                    cents = cents if sign else 0  # 0: income, skipped below
                elif sign or not cents:
                    cents = None  # zero, or a refused sign: the slow path words the error
            if cents is None:
                cents = self._cents(line, titles["amount"], amount_text)

            if self._fixed_category is not None:
                key = self._fixed_category
            else:
                assert category_at is not None
                category_text = record[category_at]
                key = categories.get(category_text, "")
                if not key:
                    key = self._category(line, titles["category"], category_text)
                    if key and len(categories) < CACHE_LIMIT:
                        categories[category_text] = key

            description = ""
            if description_at is not None:
                description = record[description_at].strip()
                if "\n" in description or "\r" in description:
                    description = " ".join(description.split())  # one line, as typed
                if (
                    len(description) > DESCRIPTION_MAX
                    or not description.isprintable()
                    or (not description.isascii() and not is_normalized("NFC", description))
                ):
                    description = self._description(
                        line, titles["description"], record[description_at]
                    )

            if self.bad_count != errors_before or date is None or cents is None:
                continue
            if cents == 0:  # income under --signs spending-negative
                self.skipped_income += 1
                continue
            self.row_count += 1
            iso, compact = date
            digest = sha256(f"{iso}\x1f{cents}\x1f{description}".encode()).hexdigest()
            yield (line, iso, cents, key, description, compact + digest[:FINGERPRINT_DIGEST_CHARS])
        if progress is not None:
            progress(raw.tell() - reported)

    def _title(self, name: str) -> str:
        """The column as the user knows it: the mapped header, else the field name."""
        return self.options.columns.get(name, name)

    def _bad(self, line: int, column: str, value: str, reason: str | Wording) -> None:
        self.bad_count += 1
        if len(self.bad_rows) < MAX_REPORTED_ERRORS:
            self.bad_rows.append(BadRow(line, column, value, reason))

    def _date(self, line: int, column: str, text: str) -> tuple[str, str] | None:
        cleaned = text.strip()
        fmt = self.options.date_format
        try:
            if fmt is not None:
                if not cleaned.isascii():  # strptime's %d would take any script's digits
                    raise ValueError(cleaned)
                parsed = dt.datetime.strptime(cleaned, fmt).date()
            elif _ISO_DATE.fullmatch(cleaned):
                parsed = dt.date.fromisoformat(cleaned)
            else:
                self._bad(
                    line,
                    column,
                    text,
                    f"{text!r} is not a date (use YYYY-MM-DD or " + option("date_format") + ")",
                )
                return None
        except ValueError:
            if fmt is not None:
                self._bad(line, column, text, f"{text!r} is not a date in the format {fmt!r}")
            else:
                self._bad(line, column, text, f"{text!r} is not a real date")
            return None
        try:
            check_date(parsed)
        except RuleViolation as exc:
            self._bad(line, column, text, exc.reason)
            return None
        return parsed.isoformat(), parsed.strftime("%Y%m%d")

    def _cents(self, line: int, column: str, text: str) -> int | None:
        """Integer cents of spending; 0 for an income row to skip; None when bad."""
        cleaned = text.strip()
        negative = cleaned.startswith("-")
        if cleaned[:1] in ("-", "+"):
            cleaned = cleaned[1:].strip()
        try:
            if bank_amounts.has_currency_symbol(cleaned):
                signed = bank_amounts.parse_amount(text, decimal_comma=self.options.decimal_comma)
                negative, cleaned = signed < 0, f"{abs(signed) // 100}.{abs(signed) % 100:02d}"
            cleaned = self._plain_digits(cleaned, text)
            value = parse_amount(cleaned, allow_zero=True)
        except bank_amounts.BadAmount as exc:
            self._bad(line, column, text, str(exc))
            return None
        except _NotPlain as exc:
            self._bad(line, column, text, exc.wording)
            return None
        except AmountError as exc:
            message = str(exc).replace(repr(cleaned), repr(text)) if cleaned != text else str(exc)
            self._bad(line, column, text, message)
            return None
        if value == 0:
            self._bad(line, column, text, f"{text!r} is zero; an expense must be positive")
            return None
        if self.options.signs is Signs.SPENDING_NEGATIVE:
            return to_cents(value) if negative else 0
        if negative:
            self._bad(
                line,
                column,
                text,
                f"{text!r} is negative; expenses are positive (for a bank export that "
                "writes spending as negative, use " + option("signs") + " spending-negative)",
            )
            return None
        return to_cents(value)

    def _plain_digits(self, cleaned: str, text: str) -> str:
        """Drop thousands separators and turn a decimal comma into a point."""
        if self.options.decimal_comma:
            if _GROUPED_COMMA.fullmatch(cleaned):
                cleaned = cleaned.replace(".", "")
            elif "." in cleaned:
                raise _NotPlain(
                    f"{text!r} is not an amount with " + option("decimal_comma") + " (use 12,50)"
                )
            return cleaned.replace(",", ".")
        if "," in cleaned:
            if _GROUPED_POINT.fullmatch(cleaned):
                return cleaned.replace(",", "")
            raise _NotPlain(
                f"{text!r} is not an amount (for a decimal comma like 12,50 use "
                + option("decimal_comma")
                + ")"
            )
        return cleaned

    def _category(self, line: int, column: str, text: str) -> str:
        """The category's name_key, remembering how the file spells it; "" when bad."""
        name = " ".join(text.split())
        if not name:
            self._bad(line, column, text, "the category is empty")
            return ""
        try:
            name = check_name(name, field="category")
        except RuleViolation as exc:
            self._bad(line, column, text, _why(exc))
        else:
            key = name_key(name)
            self.categories.setdefault(key, name)
            return key
        return ""

    def _description(self, line: int, column: str, text: str) -> str:
        """The description by the rules (NFC, one line, within the limit); "" when bad."""
        try:
            return check_description(text)
        except RuleViolation as exc:
            self._bad(line, column, text, _why(exc))
            return ""


def _why(exc: RuleViolation) -> str:
    """A broken rule worded for a bad-row line: `the description is 201 characters...`."""
    return exc.reason if exc.reason[:1] in ("'", '"') else f"the {exc.field} {exc.reason}"


def _detaching(stream: io.TextIOWrapper, rows: Iterator[StagingRow]) -> Iterator[StagingRow]:
    """Yield the rows, then let go of the text layer (the caller closes the source)."""
    try:
        yield from rows
    finally:
        stream.detach()


class _NotPlain(ValueError):
    """An amount `_RowReader._plain_digits` cannot read; `wording` says why."""

    def __init__(self, wording: Wording) -> None:
        super().__init__(str(wording))
        self.wording = wording


def _bad_rows(name: str, count: int, shown: Sequence[BadRow]) -> InvalidInput:
    """The refusal listing a file's bad rows (the first of them, and how many more)."""
    noun = "bad row" if count == 1 else "bad rows"
    lines: list[str | Wording] = [f"{name} has {count} {noun}; nothing was imported:"]
    lines += ["  " + bad.wording for bad in shown]
    if count > len(shown):
        lines.append(f"  and {count - len(shown)} more")
    return InvalidInput(Wording.join("\n", lines))


def _unreadable_field(name: str, line_reached: int, exc: csv.Error) -> InvalidInput:
    """The one-line refusal for what the csv module cannot read, naming where it began."""
    line = line_reached + 1
    if "field larger than field limit" in str(exc):
        return InvalidInput(
            f"{name}: line {line}: a field is longer than {csv.field_size_limit()} "
            "characters; nothing was imported"
        )
    return InvalidInput(
        f"{name}: line {line}: a quoted field opens there and is not closed properly "
        "(is a closing quote missing?); nothing was imported"
    )


def _guess_delimiter(header_line: str) -> str:
    """Whichever of `,` `;` and tab the header line uses most (comma on a tie)."""
    counts = {candidate: header_line.count(candidate) for candidate in _DELIMITER_CANDIDATES}
    best = max(_DELIMITER_CANDIDATES, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


class _StatementReader:
    """A bank statement (any format `bankfiles` reads) as staging rows.

    Mirrors `_RowReader`'s interface. The statement's first pass runs on `rows()`; rows
    that are not spending are counted in the statement, bad rows collected here.
    """

    def __init__(self, source: Source, options: ImportOptions) -> None:
        self.name = source.name
        self.options = options
        fixed = " ".join(options.category.split()) if options.category is not None else None
        self.statement = Statement(
            source,
            StatementOptions(
                encoding=options.encoding,
                layout=LayoutOptions(
                    delimiter=options.delimiter,
                    skip=options.skip,
                    no_header=options.no_header,
                    columns=dict(options.columns),
                    description=options.description,
                ),
                date_format=options.date_format,
                decimal_comma=options.decimal_comma,
                signs=options.signs.value if options.signs is not None else None,
                outflow_value=options.outflow_value,
                skip_rules=options.skip_rules,
                category_rules=options.category_rules,
                fallback_category=options.fallback_category,
                category=fixed,
                keep_credits=options.credits is Credits.INCOME,
            ),
        )
        self.row_count = 0
        self.skipped_income = 0
        self.bad_rows: list[BadRow] = []
        self.bad_count = 0
        self.categories: dict[str, str] = {}
        self.shortened = 0
        self.created_without_asking: set[str] = set()
        """Keys of categories to create even without --create-categories (the default)."""
        self.known_categories: set[str] = set()
        self.notes: list[str | Wording] = []

    def rows(self) -> Iterator[StagingRow]:
        statement = self.statement
        statement.prepare()
        self.notes = [f"read as {statement.format_name}", *statement.notes]
        if statement.signs_detected:
            self.notes.append(statement.signs_detected)
        return self._rows()

    def _rows(self) -> Iterator[StagingRow]:
        categories: dict[str, str] = {}
        for entry in self.statement.entries():
            description = " ".join(entry.description.split())  # continuation lines joined
            if len(description) > DESCRIPTION_MAX:
                # Payee and memo together can outgrow the limit; keep their start.
                description = description[: DESCRIPTION_MAX - 1].rstrip() + "…"
                self.shortened += 1
            try:
                description = check_description(description)
            except RuleViolation as exc:
                self._bad(entry.line, "description", _why(exc))
                continue
            if entry.cents > MAX_IMPORT_CENTS:
                self._bad(entry.line, "amount", f"{entry.cents / 100:.2f} is too large")
                continue
            name = self._category_name(entry.category, entry.file_category)
            key = categories.get(name)
            if key is None:
                try:
                    name = check_name(name, field="category")
                except RuleViolation as exc:
                    self._bad(entry.line, "category", _why(exc))
                    continue
                key = name_key(name)
                categories[name] = key
                self.categories.setdefault(key, name)
            iso = entry.date.isoformat()
            stem = entry.identity or fingerprint_stem(iso, entry.cents, description)
            self.row_count += 1
            yield (entry.line, iso, entry.cents, key, description, stem)
        self.skipped_income = sum(self.statement.credit_kinds.values())
        if self.shortened:
            self.notes.append(
                f"{self.shortened} descriptions longer than {DESCRIPTION_MAX} characters "
                "were shortened"
            )

    def _category_name(self, chosen: str, in_file: str) -> str:
        """The options' or rules' choice; else the file's own category if it exists (or
        --create-categories); else the profile's fallback; else DEFAULT_CATEGORY.

        Categories a profile names (rules, fallback) and DEFAULT_CATEGORY are created
        when missing; a file's own categories and --category only with
        --create-categories."""
        name = " ".join(chosen.split())
        if name:
            if self.options.category is None:  # a category rule: named in a profile
                self.created_without_asking.add(name_key(name))
            return name
        in_file = " ".join(in_file.split())
        if (
            in_file
            and len(in_file) <= NAME_MAX
            and (self.options.create_categories or name_key(in_file) in self.known_categories)
        ):
            return in_file
        if self.options.fallback_category:
            fallback = " ".join(self.options.fallback_category.split())
            self.created_without_asking.add(name_key(fallback))
            return fallback
        self.created_without_asking.add(name_key(DEFAULT_CATEGORY))
        return DEFAULT_CATEGORY

    def _bad(self, line: int, column: str, reason: str | Wording) -> None:
        self.bad_count += 1
        if len(self.bad_rows) < MAX_REPORTED_ERRORS:
            self.bad_rows.append(BadRow(line, column, "", reason))

    def raise_if_bad(self) -> None:
        for bad in self.statement.bad:
            self._bad(bad.line, bad.column, bad.reason)
        self.bad_count += self.statement.bad_count - len(self.statement.bad)
        self.bad_rows.sort(key=lambda bad: bad.line)
        if self.bad_count:
            raise _bad_rows(self.name, self.bad_count, self.bad_rows)


# --- writing ------------------------------------------------------------------------------


def _create_staging(session: Session) -> None:
    STAGING.create(session.connection())


def _drop_staging(session: Session) -> None:
    if session.get_bind().dialect.name != "postgresql":
        STAGING.drop(session.connection())  # PostgreSQL drops it at COMMIT by itself


def _load_staging(session: Session, rows: Iterator[StagingRow]) -> None:
    """Fill the staging table: one streamed COPY on PostgreSQL, batches on SQLite."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        source = _CopySource(rows)
        try:
            cursor.copy_expert(
                f"COPY {STAGING.name} ({', '.join(STAGING_COLUMNS)}) FROM STDIN",
                source,
                size=COPY_CHUNK_CHARS,
            )
        finally:
            cursor.close()
        if source.error is not None:
            raise source.error
        return
    # Plain DB-API parameters: the rows are already in the stored form (ISO date text,
    # integer cents), exactly what SQLAlchemy's SQLite Date and Money types would write.
    placeholders = ", ".join("?" for _ in STAGING_COLUMNS)
    statement = f"INSERT INTO {STAGING.name} VALUES ({placeholders})"
    while batch := list(itertools.islice(rows, STAGING_BATCH_ROWS)):
        connection.exec_driver_sql(statement, batch)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class _CopySource:
    """A file-like object for psycopg2's `copy_expert`: staging rows as COPY text on demand.

    COPY pulls `read(size)` chunks while the rows are parsed, so the file is parsed and
    sent in one stream without ever being held in memory.
    """

    def __init__(self, rows: Iterator[StagingRow]) -> None:
        self._rows = rows
        self.error: Exception | None = None
        """An error raised while reading, re-raised after COPY (psycopg2 would mask it)."""

    def read(self, size: int = COPY_CHUNK_CHARS) -> str:
        try:
            return self._read(size)
        except Exception as exc:
            self.error = exc
            return ""  # ends the COPY; the caller raises and the transaction rolls back

    def _read(self, size: int) -> str:
        parts: list[str] = []
        length = 0
        for line, spent_on, cents, key, description, fingerprint in self._rows:
            text = (
                f"{line}\t{spent_on}\t{cents}\t{key.translate(_COPY_ESCAPES)}\t"
                f"{description.translate(_COPY_ESCAPES)}\t{fingerprint}\n"
            )
            parts.append(text)
            length += len(text)
            if length >= size:
                break
        return "".join(parts)

    readline = read


def _resolve_categories(
    session: Session,
    *,
    user_id: int,
    reader: _RowReader | _StatementReader,
    options: ImportOptions,
) -> tuple[str, ...]:
    """Refuse unknown categories, or create them; returns the names created."""
    known = set(session.scalars(select(Category.name_key).where(Category.user_id == user_id)))
    missing = [name for key, name in reader.categories.items() if key not in known]
    if not missing:
        return ()
    automatic = reader.created_without_asking if isinstance(reader, _StatementReader) else set()
    refused = [name for name in missing if name_key(name) not in automatic]
    if refused and not options.create_categories:
        raise UnknownCategories(reader.name, refused, shown=MAX_REPORTED_ERRORS)
    # Another import may be creating the same categories right now: insert only what is
    # not there yet, and report only what this import created.
    insert = insert_new_only(session.get_bind().dialect.name, Category, "user_id", "name_key")
    created = set(
        session.scalars(
            insert.values(
                [{"user_id": user_id, **name_columns(name)} for name in missing]
            ).returning(Category.name)
        )
    )
    return tuple(name for name in missing if name in created)


def _insert_new_income(session: Session, *, user_id: int, credits: Sequence[Credit]) -> int:
    """Record credits as income, keyed like expenses (bank id, else content + occurrence),
    so importing the file again records nothing twice; returns how many were new."""
    from budget_tracker.models import Income

    if not credits:
        return 0
    seen: dict[str, int] = {}
    rows = []
    for credit in credits:
        source = credit.description[:DESCRIPTION_MAX]
        try:
            source = check_description(" ".join(source.split()))
        except RuleViolation:
            source = ""
        stem = credit.identity or fingerprint_stem(credit.date.isoformat(), credit.cents, source)
        seen[stem] = occurrence = seen.get(stem, 0) + 1
        rows.append(
            {
                "amount": from_cents(credit.cents),
                "source": source,
                "received_on": credit.date,
                "idempotency_key": f"{stem}:{occurrence}",
            }
        )
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(Income) if dialect == "postgresql" else sqlite.insert(Income)
    # One statement run for many rows: SQLAlchemy sends them in batches of a few hundred
    # (its "insertmanyvalues"), so a file with many credits stays within the parameters a
    # statement may hold and is compiled once; RETURNING counts the new ones.
    statement = (
        insert.values(user_id=user_id, entered_by=entering_user(user_id))
        .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
        .returning(Income.id)
    )
    return len(session.execute(statement, rows).all())


def _numbered() -> Subquery:
    """The staged rows with their full keys (stem, ':' and the occurrence in the file)."""
    occurrence = func.row_number().over(partition_by=STAGING.c.fingerprint, order_by=STAGING.c.line)
    return select(
        STAGING.c.line,
        STAGING.c.spent_on,
        STAGING.c.amount,
        STAGING.c.category_key,
        STAGING.c.description,
        (STAGING.c.fingerprint + literal(":") + cast(occurrence, String)).label("key"),
    ).subquery("numbered")


def _id_conflicts(session: Session, *, user_id: int) -> tuple[int, tuple[IdConflict, ...]]:
    """Staged rows keyed by a bank id that is already stored for another date or amount.

    A bank's id is unique only within one account (OFX FITIDs are often small sequence
    numbers), so such a row is counted as present but may be another account's
    transaction: the summary shows them rather than passing over them in silence.
    """
    numbered = _numbered()
    rows = session.execute(
        select(
            numbered.c.line,
            numbered.c.spent_on,
            numbered.c.amount,
            Expense.spent_on.label("stored_on"),
            cast(Expense.amount, BigInteger).label("stored_cents"),
            func.count().over().label("total"),
        )
        .join_from(
            numbered,
            Expense,
            (Expense.user_id == user_id) & (Expense.idempotency_key == numbered.c.key),
        )
        .where(
            numbered.c.key.startswith("t"),
            (Expense.spent_on != numbered.c.spent_on)
            | (cast(Expense.amount, BigInteger) != numbered.c.amount),
        )
        .order_by(numbered.c.line)
        .limit(MAX_LISTED_CONFLICTS)
    ).all()
    if not rows:
        return 0, ()
    listed = tuple(
        IdConflict(int(line), _day(spent_on), int(cents), _day(stored_on), int(stored))
        for line, spent_on, cents, stored_on, stored, _total in rows
    )
    return int(rows[0][5]), listed


def _day(value: object) -> dt.date:
    day = _as_date(value)
    assert day is not None
    return day


def _insert_new_expenses(session: Session, *, user_id: int) -> int:
    """Move staged rows into `expenses`, skipping fingerprints already present; count new."""
    numbered = _numbered()
    columns = [
        "user_id",
        "category_id",
        "amount",
        "description",
        "spent_on",
        "idempotency_key",
        "entered_by",
    ]
    if session.get_bind().dialect.name == "postgresql":
        return _insert_new_expenses_postgresql(session, user_id=user_id, numbered=numbered)
    rows = (
        select(
            literal(user_id, Integer),
            Category.id,
            numbered.c.amount,
            numbered.c.description,
            numbered.c.spent_on,
            numbered.c.key,
            entering_user(user_id),
        )
        .join_from(numbered, Category, Category.name_key == numbered.c.category_key)
        # Rows already present are left out before inserting: with AUTOINCREMENT, SQLite
        # would burn an id for each row ON CONFLICT skips. (A WHERE clause is also what
        # SQLite needs to parse INSERT ... SELECT ... ON CONFLICT.)
        .where(
            Category.user_id == user_id,
            ~select(literal(1))
            .where(Expense.user_id == user_id, Expense.idempotency_key == numbered.c.key)
            .exists(),
        )
        # New ids follow the file's order, so an export lists same-day rows as the file did.
        .order_by(numbered.c.line)
    )
    statement = (
        sqlite.insert(Expense)
        .from_select(columns, rows)
        .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
    )
    result = session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


def _insert_new_expenses_postgresql(session: Session, *, user_id: int, numbered: Subquery) -> int:
    """The same rows as on SQLite, written in index order instead of file order.

    Inserting a large file row by row in file order touches the unique index on
    (user_id, idempotency_key) and the date-led indexes at scattered pages; once they
    outgrow shared buffers every row costs page reads and full-page WAL writes. So the
    new rows' ids are drawn from the sequence in file order first (ids still follow the
    file, as on SQLite), and the rows are then inserted sorted by their key, which starts
    with the date: each index is filled in a few ascending runs. Rows already present
    are left out before drawing ids (no ids burnt by a re-import); ON CONFLICT still
    covers a concurrent import of the same rows.
    """
    sequence = select(
        func.pg_get_serial_sequence(Expense.__tablename__, "id").cast(postgresql.REGCLASS)
    ).scalar_subquery()  # evaluated once, not per row
    present = select(literal(1)).where(
        Expense.user_id == user_id, Expense.idempotency_key == numbered.c.key
    )
    fresh = (
        select(
            # Volatile, so PostgreSQL evaluates it after the sort: ids in file order.
            func.nextval(sequence).label("id"),
            Category.id.label("category_id"),
            numbered.c.amount,
            numbered.c.description,
            numbered.c.spent_on,
            numbered.c.key,
        )
        .join_from(numbered, Category, Category.name_key == numbered.c.category_key)
        .where(Category.user_id == user_id, ~present.exists())
        .order_by(numbered.c.line)
        .cte("fresh")
        .prefix_with("MATERIALIZED")
    )
    rows = select(
        fresh.c.id,
        literal(user_id, Integer),
        fresh.c.category_id,
        fresh.c.amount,
        fresh.c.description,
        fresh.c.spent_on,
        fresh.c.key,
        entering_user(user_id),
    ).order_by(fresh.c.key.collate("C"))
    # The numbering and the sorts of a large import spill to disk at the default 4MB, and
    # JIT compiling this one-off statement costs more than it saves. SET LOCAL ends with
    # this transaction, so it is pooler-safe.
    session.execute(text(f"SET LOCAL work_mem = '{IMPORT_WORK_MEM}'; SET LOCAL jit = off"))
    statement = (
        postgresql.insert(Expense)
        .from_select(
            [
                "id",
                "user_id",
                "category_id",
                "amount",
                "description",
                "spent_on",
                "idempotency_key",
                "entered_by",
            ],
            rows,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
    )
    result = session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]
