"""Import expenses from a CSV file: every row or none, and never the same row twice.

One streaming pass reads the file, validates each row and loads the good ones into a
transaction-scoped staging table (PostgreSQL: one `COPY`; SQLite: batched inserts). Bad
rows are collected, not written. Only when the whole file is valid is a single
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` run from the staging table into `expenses`,
in the same transaction as everything else, so a refusal, an error or a killed process
leaves the database as it was. Memory stays flat: rows are never held all at once.

Each row's fingerprint, stored in `expenses.idempotency_key`, makes a re-import a no-op:

    YYYYMMDD + first 46 hex digits of sha256("date␟cents␟category name_key␟description")
    + ":" + N

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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, BinaryIO
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

from budget_tracker.errors import InvalidInput, NotFound
from budget_tracker.models import Category, Expense, insert_new_only, name_key
from budget_tracker.money import AmountError, parse_amount, to_cents
from budget_tracker.rules import (
    DESCRIPTION_MAX,
    NAME_KEY_MAX,
    RuleViolation,
    check_date,
    check_description,
    check_name,
)
from budget_tracker.services.users import FirstRun, acting_user

FIELDS = ("date", "amount", "category", "description")
"""The columns `budget export` writes and `budget import` reads by default."""

MAX_REPORTED_ERRORS = 20
FINGERPRINT_DIGEST_CHARS = 46
FINGERPRINT_STEM_CHARS = 8 + FINGERPRINT_DIGEST_CHARS
"""YYYYMMDD + 46 hex digits; with ':' and up to 9 occurrence digits it fits String(64)."""
STAGING_BATCH_ROWS = 5_000
COPY_CHUNK_CHARS = 1 << 16
IMPORT_WORK_MEM = "256MB"

ProgressCallback = Callable[[int], None]


class Signs(StrEnum):
    """How the sign of an amount is read."""

    SPENDING_POSITIVE = "spending-positive"
    """Every amount is spending and must be positive (the format `budget export` writes)."""
    SPENDING_NEGATIVE = "spending-negative"
    """Bank style: spending is negative; positive amounts (income, refunds) are skipped."""


@dataclass(frozen=True)
class ImportOptions:
    columns: Mapping[str, str] = field(default_factory=dict)
    """Field (one of FIELDS) -> the file's header for it, when it is not the field's name."""
    delimiter: str | None = None
    """`,`, `;` or a tab; None: whichever of them the header line uses most."""
    date_format: str | None = None
    """A strptime format; None: ISO `YYYY-MM-DD`."""
    category: str | None = None
    """Put every row into this category (the file's category column is ignored)."""
    signs: Signs = Signs.SPENDING_POSITIVE
    decimal_comma: bool = False
    create_categories: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class BadRow:
    line: int
    column: str
    value: str
    reason: str
    """A sentence that names the value."""

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}" if self.column else f"line {self.line}"
        return f"{where}: {self.reason}"


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
    path: Path,
    options: ImportOptions,
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import every row of the CSV file at `path` for the acting user, or none of them.

    Raises InvalidInput (bad header or bad rows, listing them) or NotFound (unknown
    categories without `create_categories`); the caller's transaction then rolls back.
    With `dry_run` everything runs inside a savepoint that is rolled back.
    """
    savepoint = session.begin_nested() if options.dry_run else None
    user, first_run = acting_user(session, user_email=user_email)
    reader = _RowReader(path, options, progress)
    _create_staging(session)
    _load_staging(session, reader.rows())
    reader.raise_if_bad()
    created = _resolve_categories(session, user_id=user.id, reader=reader, options=options)
    new = _insert_new_expenses(session, user_id=user.id)
    _drop_staging(session)
    if savepoint is not None:
        savepoint.rollback()
        first_run = None
    return ImportSummary(
        file=path.name,
        rows=reader.row_count,
        new=new,
        present=reader.row_count - new,
        skipped_income=reader.skipped_income,
        created_categories=created,
        dry_run=options.dry_run,
        first_run=first_run,
    )


def fingerprint(
    spent_on: dt.date, cents: int, category_key: str, description: str, occurrence: int
) -> str:
    """The idempotency key of the `occurrence`-th identical row of a file.

    The reading loop computes the same stem inline (for speed) and SQL appends the
    occurrence; tests hold the two equal.
    """
    content = f"{spent_on.isoformat()}\x1f{cents}\x1f{category_key}\x1f{description}"
    digest = hashlib.sha256(content.encode()).hexdigest()[:FINGERPRINT_DIGEST_CHARS]
    return f"{spent_on.strftime('%Y%m%d')}{digest}:{occurrence}"


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

    def __init__(self, path: Path, options: ImportOptions, progress: ProgressCallback | None):
        self.path = path
        self.options = options
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
        raw = self.path.open("rb")
        stream = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        try:
            first = stream.readline()
            if not first.strip():
                raise InvalidInput(f"{self.path.name} is empty: expected a header line first")
            delimiter = self.options.delimiter or _guess_delimiter(first)
            reader = csv.reader(itertools.chain([first], stream), delimiter=delimiter)
            header = next(reader)
            if _SURROGATE.search(first):
                raise InvalidInput(f"{self.path.name}: the header line is not UTF-8 text")
            index = self._column_indexes(header, delimiter)
        except BaseException:
            stream.close()
            raise
        return _closing(stream, self._records(reader, index, len(header), raw))

    def raise_if_bad(self) -> None:
        if not self.bad_count:
            return
        noun = "bad row" if self.bad_count == 1 else "bad rows"
        lines = [f"{self.path.name} has {self.bad_count} {noun}; nothing was imported:"]
        lines += [f"  {bad}" for bad in self.bad_rows]
        if self.bad_count > len(self.bad_rows):
            lines.append(f"  and {self.bad_count - len(self.bad_rows)} more")
        raise InvalidInput("\n".join(lines))

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
                hint = f"map it with --columns {name}=HEADER"
                if name == "category":
                    hint += " or put every row in one category with --category NAME"
                raise InvalidInput(
                    f"{self.path.name} has no column {title!r} (its header, split on "
                    f"{_display(delimiter)!r}, has {found}): {hint}"
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
        line_num = 1  # the header
        for record in reader:
            line = line_num + 1
            line_num = reader.line_num  # type: ignore[attr-defined]
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
            digest = sha256(f"{iso}\x1f{cents}\x1f{key}\x1f{description}".encode()).hexdigest()
            yield (line, iso, cents, key, description, compact + digest[:FINGERPRINT_DIGEST_CHARS])
        if progress is not None:
            progress(raw.tell() - reported)

    def _title(self, name: str) -> str:
        """The column as the user knows it: the mapped header, else the field name."""
        return self.options.columns.get(name, name)

    def _bad(self, line: int, column: str, value: str, reason: str) -> None:
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
                    line, column, text, f"{text!r} is not a date (use YYYY-MM-DD or --date-format)"
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
            cleaned = self._plain_digits(cleaned, text)
            value = parse_amount(cleaned, allow_zero=True)
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
                "writes spending as negative, use --signs spending-negative)",
            )
            return None
        return to_cents(value)

    def _plain_digits(self, cleaned: str, text: str) -> str:
        """Drop thousands separators and turn a decimal comma into a point."""
        if self.options.decimal_comma:
            if _GROUPED_COMMA.fullmatch(cleaned):
                cleaned = cleaned.replace(".", "")
            elif "." in cleaned:
                raise AmountError(f"{text!r} is not an amount with --decimal-comma (use 12,50)")
            return cleaned.replace(",", ".")
        if "," in cleaned:
            if _GROUPED_POINT.fullmatch(cleaned):
                return cleaned.replace(",", "")
            raise AmountError(
                f"{text!r} is not an amount (for a decimal comma like 12,50 use --decimal-comma)"
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


def _closing(stream: IO[str], rows: Iterator[StagingRow]) -> Iterator[StagingRow]:
    with stream:
        yield from rows


def _guess_delimiter(header_line: str) -> str:
    """Whichever of `,` `;` and tab the header line uses most (comma on a tie)."""
    counts = {candidate: header_line.count(candidate) for candidate in _DELIMITER_CANDIDATES}
    best = max(_DELIMITER_CANDIDATES, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


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
    session: Session, *, user_id: int, reader: _RowReader, options: ImportOptions
) -> tuple[str, ...]:
    """Refuse unknown categories, or create them; returns the names created."""
    known = set(session.scalars(select(Category.name_key).where(Category.user_id == user_id)))
    missing = [name for key, name in reader.categories.items() if key not in known]
    if not missing:
        return ()
    if not options.create_categories:
        shown = ", ".join(missing[:MAX_REPORTED_ERRORS])
        if len(missing) > MAX_REPORTED_ERRORS:
            shown += f" and {len(missing) - MAX_REPORTED_ERRORS} more"
        noun = "category" if len(missing) == 1 else "categories"
        raise NotFound(
            f"{reader.path.name} uses {len(missing)} unknown {noun}: {shown}; add them with "
            "`budget category add NAME` or import with --create-categories; nothing was "
            "imported"
        )
    # Another import may be creating the same categories right now: insert only what is
    # not there yet, and report only what this import created.
    insert = insert_new_only(session.get_bind().dialect.name, Category, "user_id", "name_key")
    created = set(
        session.scalars(
            insert.values(
                [{"user_id": user_id, "name": name, "name_key": name_key(name)} for name in missing]
            ).returning(Category.name)
        )
    )
    return tuple(name for name in missing if name in created)


def _insert_new_expenses(session: Session, *, user_id: int) -> int:
    """Move staged rows into `expenses`, skipping fingerprints already present; count new."""
    occurrence = func.row_number().over(partition_by=STAGING.c.fingerprint, order_by=STAGING.c.line)
    numbered = select(
        STAGING.c.line,
        STAGING.c.spent_on,
        STAGING.c.amount,
        STAGING.c.category_key,
        STAGING.c.description,
        (STAGING.c.fingerprint + literal(":") + cast(occurrence, String)).label("key"),
    ).subquery("numbered")
    columns = ["user_id", "category_id", "amount", "description", "spent_on", "idempotency_key"]
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
        )
        .join_from(numbered, Category, Category.name_key == numbered.c.category_key)
        # A WHERE clause is also what SQLite needs to parse INSERT ... SELECT ... ON CONFLICT.
        .where(Category.user_id == user_id)
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
            ],
            rows,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
    )
    result = session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]
