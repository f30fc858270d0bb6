"""Carry a whole budget between databases: copy, back up to one file, restore.

Every table of the schema is carried, generically: the tables are reflected from the
database (so tables added by later revisions travel without changes here) and written in
foreign-key order, each one's rows in primary-key order, ids preserved. Values travel in
a portable form: amounts (the model's `Money` columns, integer cents in the database) as
decimal strings such as "12.50", dates as ISO dates, timestamps in UTC ("...Z"); never a
float. The same form is the backup file's format and the input of the per-table content
checksums, so a copy's checksums and a backup's are the same numbers.

The target side is one transaction over the target's direct URL: migrate to the schema
revision of the data, refuse unless every table is empty, load the rows (one COPY per
table on PostgreSQL, batched INSERTs on SQLite), advance the id sequences past the copied
ids, migrate to head when the data came from an older revision, COMMIT. A process killed
or a connection dropped at any point before the COMMIT leaves the target as it was, and
the command can simply be run again. The rows go over the direct URL because they share
that transaction with the migration (which must not go through a pooler) and because a
bulk load is session-length work that would hold one of the pooler's server connections
for its whole duration anyway; reading the source and verifying the target go through
their app URLs, the way the app will use them.

Unlike the other services these take engines, not a session: a copy spans two databases
and owns its transactions, like `health.check_database`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, suppress
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from json.encoder import encode_basestring
from typing import IO, Any, cast

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from budget_tracker.config import Settings
from budget_tracker.errors import (
    BudgetError,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    SchemaNotMigrated,
    SourceNotMigrated,
)
from budget_tracker.models import Base, Money
from budget_tracker.money import to_cents

FORMAT = "budget-tracker-backup"
FORMAT_VERSION = 1
ALEMBIC_TABLE = "alembic_version"
NOT_COPIED = frozenset({ALEMBIC_TABLE, "unit_outcomes", "category_month_spent"})
"""Tables that belong to one database, not to the budget: the schema revision, the
outcomes its units of work recorded for their own retries (`budget_tracker.outcomes`), and
the per-month sums of expenses its triggers keep (`models.CategoryMonthSpent`): loading
the expenses rebuilds those, so copying them too would count every expense twice."""
BATCH_ROWS = 10_000
COPY_CHUNK_CHARS = 1 << 16
GZIP_MAGIC = b"\x1f\x8b"

Progress = Callable[[int], None]
"""Called with how far the work advanced (rows, or bytes read for a restore)."""


class NotABackup(InvalidInput):
    """The file is not a complete, intact backup in a format this version reads."""


class TargetNotEmpty(Conflict):
    """The target database already holds data: a copy would merge two budgets."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        held = ", ".join(f"{name} {count:,}" for name, count in counts.items())
        super().__init__(
            f"the target database is not empty ({held}): copying into it would merge two "
            "budgets, which is not supported; use an empty database"
        )


class VerificationFailed(BudgetError):
    """After the copy, the two sides differ."""


class CommitUnacknowledged(DatabaseUnavailable):
    """The target's COMMIT was sent and the connection died before its answer came: the
    target holds either the whole load or nothing, and only looking at it tells which."""

    def __init__(self, before: str | None, cause: str) -> None:
        self.before = before
        super().__init__(
            "the connection was lost while the target was committing, so it holds either "
            "the whole budget or nothing, and it could not be read back to tell which: run "
            f"the command again, it will tell ({cause})"
        )


class CommitNotMade(DatabaseUnavailable):
    """The COMMIT's answer was lost and the target, read back, is still empty."""

    def __init__(self) -> None:
        super().__init__(
            "the connection was lost while the target was committing, and the target is "
            "still empty: nothing was written; run the command again"
        )


# --- The portable form of a value -------------------------------------------------------

KINDS = ("integer", "money", "string", "date", "timestamp", "boolean", "decimal")
_MONEY_TEXT = re.compile(r"-?\d+\.\d\d")


def column_kind(table: str, column: Column[Any]) -> str:
    """How a column's values travel: amounts are the model's `Money` columns."""
    model = Base.metadata.tables.get(table)
    model_column = model.c.get(column.name) if model is not None else None
    if model_column is not None and isinstance(model_column.type, Money):
        return "money"
    kind = column.type
    if isinstance(kind, Boolean):
        return "boolean"
    if isinstance(kind, Integer):
        return "integer"
    if isinstance(kind, DateTime):
        return "timestamp"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, Numeric) and not isinstance(kind, Float):
        return "decimal"
    if isinstance(kind, String):
        return "string"
    raise TypeError(f"column {table}.{column.name} has a type backups do not carry: {kind}")


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive UTC timestamps (CURRENT_TIMESTAMP); PostgreSQL aware ones."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _encode_timestamp(value: dt.datetime) -> str:
    return _utc(value).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _decode_timestamp(value: Any) -> dt.datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise ValueError("not a UTC timestamp")
    return dt.datetime.fromisoformat(value[:-1]).replace(tzinfo=dt.UTC)


def _decode_money(value: Any) -> int:
    if not isinstance(value, str) or not _MONEY_TEXT.fullmatch(value):
        raise ValueError("not an amount with two decimals")
    return to_cents(Decimal(value))


def _decode_integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("not an integer")
    return value


def _decode_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def _decode_boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("not true or false")
    return value


def _decode_decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise ValueError("not a decimal string")
    return Decimal(value)


def _decode_date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise ValueError("not a date")
    return dt.date.fromisoformat(value)


def _money_json(cents: int) -> str:
    """Integer cents as a JSON string with two decimals (what `format_amount` writes)."""
    whole, part = divmod(abs(cents), 100)
    return f'"{"-" if cents < 0 else ""}{whole}.{part:02d}"'


@lru_cache(maxsize=4096)  # rows written together share their created_at
def _timestamp_json(value: dt.datetime) -> str:
    return f'"{_encode_timestamp(value)}"'


# Each value as its JSON text, exactly as `json.dumps(..., ensure_ascii=False,
# separators=(",", ":"))` writes it, without building a list and a dumps call per row:
# this runs once per row of every table on both sides of a copy.
_JSON_TEXT: dict[str, Callable[[Any], str]] = {
    "integer": int.__repr__,
    "money": _money_json,
    "string": encode_basestring,
    "date": lambda day: f'"{day.isoformat()}"',
    "timestamp": _timestamp_json,
    "boolean": lambda flag: "true" if flag else "false",
    "decimal": lambda value: encode_basestring(str(value)),
}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "integer": _decode_integer,
    "money": _decode_money,
    "string": _decode_string,
    "date": _decode_date,
    "timestamp": _decode_timestamp,
    "boolean": _decode_boolean,
    "decimal": _decode_decimal,
}

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# Stored values as PostgreSQL's COPY text format spells them.
_COPY_TEXT: dict[str, Callable[[Any], str]] = {
    "integer": str,
    "money": str,
    "string": lambda value: value.translate(_COPY_ESCAPES),
    "date": lambda day: day.isoformat(),
    "timestamp": lru_cache(maxsize=4096)(lambda moment: _utc(moment).isoformat()),
    "boolean": lambda flag: "t" if flag else "f",
    "decimal": str,
}
# Stored values as SQLAlchemy's SQLite types store them (ISO text for dates and times).
_SQLITE_VALUE: dict[str, Callable[[Any], Any]] = {
    "integer": lambda value: value,
    "money": lambda value: value,
    "string": lambda value: value,
    "date": lambda day: day.isoformat(),
    "timestamp": lambda moment: _utc(moment).strftime("%Y-%m-%d %H:%M:%S.%f"),
    "boolean": int,
    "decimal": str,
}

_NEEDS_COPY_ESCAPE = re.compile(r"[\\\t\n\r]").search
_PLAIN_KINDS = frozenset({"integer", "money", "string"})
"""Kinds whose line text is computed inline; the others go through a memo (a table's
dates, times and flags repeat a lot, and parsing them is the expensive part)."""

RowEncoder = Callable[[Sequence[Any]], Any]
"""A row (as the driver returns it) → its backup line (bytes), or (line, COPY text)."""


def row_encoder(
    kinds: Sequence[str],
    processors: Sequence[Callable[[Any], Any] | None] | None = None,
    *,
    copy_text: bool = False,
) -> RowEncoder:
    """One function per table shape that turns a row into its backup line (the checksum's
    input) and, with `copy_text`, also into its COPY text line, in one pass.

    This runs once for every row of every table on both sides of a copy, so the function
    is generated with the columns unrolled (as `dataclasses` and `namedtuple` generate
    theirs): no per-value call through a list of converters, no generator, no zip.
    `processors` are the driver-value → Python-value conversions SQLAlchemy would apply
    (SQLite's dates and times are text); they run inside the memo, once per distinct
    value. Values of the wrong type raise (TypeError), as the converters always did.
    """
    names: dict[str, Any] = {
        "_int": int.__repr__,
        "_money": _money_json,
        "_json_str": encode_basestring,
        "_needs_escape": _NEEDS_COPY_ESCAPE,
        "_COPY_ESCAPES": _COPY_ESCAPES,
        "_NULL": ("null", "\\N"),
    }
    body: list[str] = []
    for i, kind in enumerate(kinds):
        process = processors[i] if processors is not None else None
        v = f"v{i}"
        if kind in _PLAIN_KINDS and process is None:
            spelled = {
                "integer": (f"_int({v})", f"_int({v})"),
                "money": (f"_money({v})", f"_int({v})"),
                "string": (
                    f"_json_str({v})",
                    f"({v}.translate(_COPY_ESCAPES) if _needs_escape({v}) else {v})",
                ),
            }[kind]
            body.append(f"    j{i} = 'null' if {v} is None else {spelled[0]}")
            if copy_text:
                body.append(f"    c{i} = {names['_NULL'][1]!r} if {v} is None else {spelled[1]}")
        else:
            names[f"_pair{i}"] = _memo_pair(kind, process)
            body.append(f"    j{i}, c{i} = _NULL if {v} is None else _pair{i}({v})")
    columns = ", ".join(f"v{i}" for i in range(len(kinds)))
    line = "f'[" + ",".join(f"{{j{i}}}" for i in range(len(kinds))) + "]\\n'.encode()"
    result = line
    if copy_text:
        copy = "f'" + "\\t".join(f"{{c{i}}}" for i in range(len(kinds))) + "\\n'"
        result = f"{line}, {copy}"
    source = "\n".join(
        [
            "def encode(row):",
            f"    ({columns}{',' if len(kinds) == 1 else ''}) = row",
            *body,
            f"    return {result}",
        ]
    )
    exec(compile(source, f"<row encoder {','.join(kinds)}>", "exec"), names)
    return cast(RowEncoder, names["encode"])


def _memo_pair(kind: str, process: Callable[[Any], Any] | None) -> Callable[[Any], tuple[str, str]]:
    json_text, copy_text = _JSON_TEXT[kind], _COPY_TEXT[kind]

    def pair(raw: Any) -> tuple[str, str]:
        value = raw if process is None else process(raw)
        if value is None:
            return ("null", "\\N")
        return json_text(value), copy_text(value)

    # Not decimals: equal values with different exponents (1.0, 1.00) are written apart.
    return pair if kind == "decimal" else lru_cache(maxsize=4096)(pair)


# --- Tables -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TableShape:
    """A table as it travels: its columns in a fixed order and how each value is written."""

    name: str
    columns: tuple[str, ...]
    kinds: tuple[str, ...]
    key: tuple[str, ...]
    """Rows travel in this order (the primary key)."""
    id_column: str | None
    """The single integer primary key whose sequence is carried, if there is one."""

    def record(self, last_id: int | None) -> dict[str, Any]:
        return {
            "table": self.name,
            "columns": list(self.columns),
            "types": list(self.kinds),
            "last_id": last_id,
        }

    @cached_property
    def _encoder(self) -> RowEncoder:
        return row_encoder(self.kinds)

    def encode(self, row: Sequence[Any]) -> bytes:
        """One row as a backup line (also what the content checksum reads)."""
        return cast(bytes, self._encoder(row))


def table_shapes(connection: Connection) -> tuple[list[TableShape], dict[str, Table]]:
    """Every table of the database (bar `NOT_COPIED`), in foreign-key order."""
    metadata = MetaData()
    metadata.reflect(bind=connection)
    shapes: list[TableShape] = []
    tables: dict[str, Table] = {}
    for table in metadata.sorted_tables:
        if table.name in NOT_COPIED:
            continue
        columns = _column_order(table)
        key = tuple(column.name for column in table.primary_key.columns) or tuple(
            column.name for column in columns
        )
        pk = list(table.primary_key.columns)
        id_column = pk[0].name if len(pk) == 1 and isinstance(pk[0].type, Integer) else None
        shapes.append(
            TableShape(
                name=table.name,
                columns=tuple(column.name for column in columns),
                kinds=tuple(column_kind(table.name, column) for column in columns),
                key=key,
                id_column=id_column,
            )
        )
        tables[table.name] = table
    return shapes, tables


def _column_order(table: Table) -> list[Column[Any]]:
    """The model's column order where the model knows the table: the same on both backends
    even when a SQLite batch migration rebuilt the table in another order."""
    model = Base.metadata.tables.get(table.name)
    names = [column.name for column in table.c]
    known = [column.name for column in model.c if column.name in names] if model is not None else []
    rest = [name for name in names if name not in known]
    return [table.c[name] for name in (*known, *rest)]


def row_counts(connection: Connection, tables: Iterable[Table | str]) -> dict[str, int]:
    """Rows per table, in the order given."""
    counts: dict[str, int] = {}
    for table in tables:
        name = table if isinstance(table, str) else table.name
        counts[name] = int(connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
    return counts


def occupied_tables(connection: Connection) -> dict[str, int]:
    """The non-empty tables of a database (any that exist, in foreign-key order), with their
    row counts."""
    names = [
        name
        for name, _keys in inspect(connection).get_sorted_table_and_fkc_names()
        if name is not None and name not in NOT_COPIED
    ]
    return {name: count for name, count in row_counts(connection, names).items() if count}


def last_issued_id(connection: Connection, shape: TableShape) -> int | None:
    """The highest id ever issued for the table: its largest id, or its sequence if ahead."""
    if shape.id_column is None:
        return None
    highest = connection.execute(
        text(f'SELECT max("{shape.id_column}") FROM "{shape.name}"')
    ).scalar()
    top = int(highest or 0)
    if connection.dialect.name == "postgresql":
        sequence = _pg_sequence(connection, shape)
        if sequence is not None:
            last, called = connection.execute(
                text(f"SELECT last_value, is_called FROM {sequence}")
            ).one()
            if called:
                top = max(top, int(last))
    elif _sqlite_autoincrement(connection, shape.name):
        seq = connection.execute(
            text("SELECT seq FROM sqlite_sequence WHERE name = :name"), {"name": shape.name}
        ).scalar()
        top = max(top, int(seq or 0))
    return top


def _pg_sequence(connection: Connection, shape: TableShape) -> str | None:
    # The server quotes the name it returns, so it is safe to put into SQL as it is.
    name = connection.execute(
        text("SELECT pg_get_serial_sequence(:table, :column)"),
        {"table": f'"{shape.name}"', "column": shape.id_column},
    ).scalar()
    return str(name) if name else None


def _sqlite_autoincrement(connection: Connection, table: str) -> bool:
    sql = connection.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
        {"name": table},
    ).scalar()
    return bool(sql) and "AUTOINCREMENT" in str(sql).upper()


def advance_sequence(connection: Connection, shape: TableShape, last_id: int | None) -> None:
    """Make the next id the target issues follow `last_id`, as it would have at the source."""
    if not last_id or shape.id_column is None:
        return
    if connection.dialect.name == "postgresql":
        sequence = _pg_sequence(connection, shape)
        if sequence is not None:
            connection.execute(
                text("SELECT setval(CAST(:sequence AS regclass), :value)"),
                {"sequence": sequence, "value": last_id},
            )
    elif _sqlite_autoincrement(connection, shape.name):
        params = {"name": shape.name, "value": last_id}
        updated = connection.execute(
            text("UPDATE sqlite_sequence SET seq = max(seq, :value) WHERE name = :name"), params
        )
        if not updated.rowcount:
            connection.execute(
                text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :value)"), params
            )


# --- Reading a database -----------------------------------------------------------------


@dataclass
class Digest:
    """Row count and SHA-256 of a table's rows in the portable form."""

    rows: int = 0
    _hash: Any = field(default_factory=hashlib.sha256)

    def add(self, line: bytes) -> None:
        self.rows += 1
        self._hash.update(line)

    def add_lines(self, lines: Sequence[bytes]) -> bytes:
        """Add several lines at once; returns them joined."""
        joined = b"".join(lines)
        self.rows += len(lines)
        self._hash.update(joined)
        return joined

    @property
    def sha256(self) -> str:
        return str(self._hash.hexdigest())


@dataclass
class TableData:
    """One table on its way: its shape, its sequence, and its rows (stored values)."""

    shape: TableShape
    last_id: int | None
    rows: Iterator[Sequence[Any]]
    copy_text: Iterator[str] | None = None
    """The same rows already spelled as COPY text (chunks of whole lines), when the
    source made them: a PostgreSQL target then loads these and never reads `rows`."""


def stream_table(
    connection: Connection, table: Table, shape: TableShape
) -> Iterator[Sequence[Any]]:
    """The table's rows in key order, as Python values (dates as dates, and so on)."""
    processors, batches = _fetch_rows(connection, table, shape)
    if not any(processors):
        for batch in batches:
            yield from batch
        return
    for batch in batches:
        for row in batch:
            yield tuple(
                value if process is None or value is None else process(value)
                for process, value in zip(processors, row, strict=True)
            )


def encoded_batches(
    connection: Connection, table: Table, shape: TableShape, *, copy_text: bool = False
) -> Iterator[list[Any]]:
    """The table's rows in key order, `BATCH_ROWS` at a time, each as its backup line
    (bytes) or, with `copy_text`, as (backup line, COPY text line): straight from the
    driver's values, without building Python dates and times for every row."""
    processors, batches = _fetch_rows(connection, table, shape)
    encode = row_encoder(shape.kinds, processors, copy_text=copy_text)
    for batch in batches:
        yield [encode(row) for row in batch]


_cursor_names = itertools.count(1)


def _fetch_rows(
    connection: Connection, table: Table, shape: TableShape
) -> tuple[list[Callable[[Any], Any] | None], Iterator[list[Sequence[Any]]]]:
    """Run the table's SELECT on the driver's own cursor (a server-side cursor on
    PostgreSQL, transaction-scoped and so safe through PgBouncer): the conversions
    SQLAlchemy would apply to each value, and the rows as the driver returns them,
    `BATCH_ROWS` per fetch. Driver errors are raised as SQLAlchemy's, as on any
    other statement."""
    statement = select(*(table.c[name] for name in shape.columns)).order_by(
        *(table.c[name] for name in shape.key)
    )
    dialect = connection.dialect
    sql = str(statement.compile(dialect=dialect))
    dbapi_connection: Any = connection.connection.dbapi_connection
    with _driver_errors(connection, sql):
        if dialect.name == "postgresql":
            cursor = dbapi_connection.cursor(name=f"portable_rows_{next(_cursor_names)}")
            cursor.itersize = BATCH_ROWS
        else:
            cursor = dbapi_connection.cursor()
        cursor.execute(sql)
        # A named cursor describes its columns only once it has fetched.
        first = cursor.fetchmany(BATCH_ROWS) if dialect.name == "postgresql" else None
    processors: list[Callable[[Any], Any] | None] = [
        table.c[name].type.dialect_impl(dialect).result_processor(dialect, described[1])
        for name, described in zip(shape.columns, cursor.description, strict=True)
    ]

    def batches() -> Iterator[list[Sequence[Any]]]:
        try:
            batch = first
            while True:
                if batch is None:
                    with _driver_errors(connection, sql):
                        batch = cursor.fetchmany(BATCH_ROWS)
                if not batch:
                    return
                yield batch
                if len(batch) < BATCH_ROWS:
                    return
                batch = None
        finally:
            with suppress(Exception):
                cursor.close()

    return processors, batches()


@contextmanager
def _driver_errors(connection: Connection, statement: str) -> Iterator[None]:
    """Raise the driver's errors from a raw cursor the way SQLAlchemy would wrap them, so
    the error boundary (and the retry rules) see the usual exception types."""
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        yield
    except dbapi_error as exc:
        raise DBAPIError.instance(
            statement, None, exc, dbapi_error, dialect=connection.dialect
        ) from exc


def _digested(
    rows: Iterable[Sequence[Any]], shape: TableShape, digest: Digest, progress: Progress | None
) -> Iterator[Sequence[Any]]:
    for count, row in enumerate(rows, 1):
        digest.add(shape.encode(row))
        yield row
        if progress is not None and count % 1000 == 0:
            progress(1000)
    if progress is not None:
        progress(digest.rows % 1000)


def _digested_copy_text(
    connection: Connection,
    table: Table,
    shape: TableShape,
    digest: Digest,
    progress: Progress | None,
) -> Iterator[str]:
    """The table as COPY text, one chunk per fetched batch, each row encoded once for
    both the checksum (its backup line) and the COPY stream."""
    for batch in encoded_batches(connection, table, shape, copy_text=True):
        digest.add_lines([line for line, _copy in batch])
        yield "".join([copy for _line, copy in batch])
        if progress is not None:
            progress(len(batch))


def read_consistently(connection: Connection) -> Connection:
    """One snapshot across every table: REPEATABLE READ on PostgreSQL (SQLite's read
    transaction already is one)."""
    if connection.dialect.name == "postgresql":
        return connection.execution_options(isolation_level="REPEATABLE READ")
    return connection


def digest_database(connection: Connection) -> dict[str, Digest]:
    """Every table's count and content checksum."""
    shapes, tables = table_shapes(connection)
    digests: dict[str, Digest] = {}
    for shape in shapes:
        digest = digests[shape.name] = Digest()
        for batch in encoded_batches(connection, tables[shape.name], shape):
            digest.add_lines(batch)
    return digests


# --- Writing into the target ------------------------------------------------------------


def schema_revision(connection: Connection) -> str | None:
    from budget_tracker.migrate import current_revision

    return current_revision(connection)


def migrate_within(connection: Connection, revision: str) -> None:
    """Bring the schema to `revision` inside the caller's transaction (up, or down for an
    empty database that is ahead of an older backup)."""
    from alembic.script import ScriptDirectory

    from alembic import command
    from budget_tracker.migrate import alembic_config

    current = schema_revision(connection)
    if current == revision:
        return
    config = alembic_config()
    config.attributes["connection"] = connection
    script = ScriptDirectory.from_config(config)
    ancestors = {rev.revision for rev in script.iterate_revisions(revision, "base")}
    if current is None or current in ancestors:
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


def known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from budget_tracker.migrate import alembic_config

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def _lock_for_load(connection: Connection, tables: Iterable[Table]) -> None:
    """On PostgreSQL keep every writer out until COMMIT, so the emptiness check holds."""
    names = [f'"{table.name}"' for table in tables]
    if connection.dialect.name == "postgresql" and names:
        connection.execute(text(f"LOCK TABLE {', '.join(names)} IN SHARE ROW EXCLUSIVE MODE"))


def load_into(
    engine: Engine,
    *,
    revision: str,
    tables: Iterable[TableData],
    finish: Callable[[], None] | None = None,
) -> str | None:
    """Load `tables` (data at schema `revision`) into the empty database behind `engine`
    (its direct URL), all in one transaction; returns the revision the target had before.

    `finish` runs after the last row and before COMMIT: raising there (a backup file whose
    end record is missing, say) rolls everything back.
    """
    from sqlalchemy.exc import OperationalError

    from budget_tracker.driver_errors import first_line, is_connection_lost
    from budget_tracker.engine import SQLITE_BEGIN_OPTION
    from budget_tracker.migrate import head_revision

    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection = connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        transaction = connection.begin()
        try:
            before = schema_revision(connection)
            if before is not None and not known_revision(before):
                raise SchemaNotMigrated(
                    f"the target database is at schema revision {before}, which this version "
                    "does not know: use the newer version of Budget Tracker that wrote it"
                )
            occupied = occupied_tables(connection)
            if occupied:
                raise TargetNotEmpty(occupied)
            migrate_within(connection, revision)
            shapes, target_tables = table_shapes(connection)
            _lock_for_load(connection, target_tables.values())
            expected = {shape.name: shape for shape in shapes}
            loaded: list[str] = []
            for data in tables:
                shape = expected.get(data.shape.name)
                if shape is None or dict(zip(shape.columns, shape.kinds, strict=True)) != dict(
                    zip(data.shape.columns, data.shape.kinds, strict=True)
                ):
                    raise InvalidInput(
                        f"table {data.shape.name} does not match schema revision {revision} "
                        "of this version; nothing was written"
                    )
                write_rows(connection, data)
                advance_sequence(connection, shape, data.last_id)
                loaded.append(shape.name)
            if finish is not None:
                finish()
            missing = sorted(set(expected) - set(loaded))
            if missing:
                raise InvalidInput(
                    f"the data has no table {', '.join(missing)} of schema revision {revision}; "
                    "nothing was written"
                )
            if revision != head_revision():
                migrate_within(connection, "head")
            _analyze(connection)
        except DBAPIError as exc:
            with suppress(DBAPIError):  # the connection may be gone already
                transaction.rollback()
            if is_connection_lost(exc) or isinstance(exc, OperationalError):
                raise DatabaseUnavailable(
                    "a database connection was lost before the target was committed, so the "
                    f"target is unchanged: run the command again ({first_line(exc)})"
                ) from None
            raise
        except BaseException:
            transaction.rollback()
            raise
        try:
            transaction.commit()
        except DBAPIError as exc:
            if is_connection_lost(exc) or isinstance(exc, OperationalError):
                raise CommitUnacknowledged(before, first_line(exc)) from None
            raise
    return before


def _analyze(connection: Connection) -> None:
    """On PostgreSQL, gather the planner's statistics of the loaded tables before COMMIT:
    a bulk load leaves none until autovacuum comes by, and until then the reports plan
    as if the tables were empty (the verification's reports, and the user's first ones)."""
    if connection.dialect.name != "postgresql":
        return
    names = [name for name in inspect(connection).get_table_names() if name not in NOT_COPIED]
    if names:
        quoted = ", ".join(f'"{name}"' for name in names)
        connection.execute(text(f"ANALYZE {quoted}"))


def write_rows(connection: Connection, data: TableData) -> None:
    """One streamed COPY on PostgreSQL; batched multi-row INSERTs on SQLite."""
    shape = data.shape
    columns = ", ".join(f'"{name}"' for name in shape.columns)
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        source = _CopyText(
            data.copy_text
            if data.copy_text is not None
            else _copy_lines(data.rows, [_COPY_TEXT[kind] for kind in shape.kinds])
        )
        # When the connection dies mid-COPY, psycopg2 prints the server's error chained to
        # a SystemError on sys.stderr (from C) before raising it; the error is raised and
        # reported in one line all the same, so that print is kept off the terminal.
        statement = f'COPY "{shape.name}" ({columns}) FROM STDIN'
        dbapi_error = connection.dialect.loaded_dbapi.Error
        try:
            with redirect_stderr(io.StringIO()):
                cursor.copy_expert(statement, source, size=COPY_CHUNK_CHARS)
        except dbapi_error as exc:
            # The raw cursor bypasses SQLAlchemy: wrap its error the way SQLAlchemy would,
            # so the error boundary (and the retry rules) see the usual exception types.
            raise DBAPIError.instance(
                statement, None, exc, dbapi_error, dialect=connection.dialect
            ) from exc
        finally:
            with suppress(Exception):
                cursor.close()
        if source.error is not None:
            raise source.error
        return
    convert = [_SQLITE_VALUE[kind] for kind in shape.kinds]
    placeholders = ", ".join("?" for _ in shape.columns)
    statement = f'INSERT INTO "{shape.name}" ({columns}) VALUES ({placeholders})'
    batch: list[tuple[Any, ...]] = []
    for row in data.rows:
        batch.append(
            tuple(
                None if value is None else to_stored(value)
                for to_stored, value in zip(convert, row, strict=True)
            )
        )
        if len(batch) >= BATCH_ROWS:
            connection.exec_driver_sql(statement, batch)
            batch = []
    if batch:
        connection.exec_driver_sql(statement, batch)


def _copy_lines(rows: Iterator[Sequence[Any]], spell: list[Callable[[Any], str]]) -> Iterator[str]:
    """Rows (stored values) as COPY text lines."""
    for row in rows:
        yield (
            "\t".join(
                "\\N" if value is None else text_of(value)
                for text_of, value in zip(spell, row, strict=True)
            )
            + "\n"
        )


class _CopyText:
    """A file-like object for psycopg2's `copy_expert`: COPY text on demand, so the rows
    stream from their source into the server without being held in memory."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self.error: Exception | None = None
        """An error raised while producing rows, re-raised after COPY (psycopg2 masks it)."""

    def read(self, size: int = COPY_CHUNK_CHARS) -> bytes:
        # Bytes, not text: psycopg2 then sends them as they are, with no decoding step
        # of its own that could fail noisily when the connection dies during the COPY.
        # Whole lines (or chunks of them) of about `size` characters at a time.
        try:
            parts: list[str] = []
            length = 0
            for chunk in self._chunks:
                parts.append(chunk)
                length += len(chunk)
                if length >= size:
                    break
            return "".join(parts).encode()
        except Exception as exc:
            self.error = exc
            return b""  # ends the COPY; the caller raises and the transaction rolls back

    readline = read


# --- Copy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableCheck:
    name: str
    rows: int
    sha256: str
    target_rows: int | None
    target_sha256: str | None

    @property
    def matches(self) -> bool:
        return self.rows == self.target_rows and self.sha256 == self.target_sha256


@dataclass(frozen=True)
class CopySummary:
    revision: str
    target_revision_before: str | None
    tables: tuple[TableCheck, ...]
    report_months: int
    """How many months of users' reports were compared (the sum over users)."""
    report_mismatch: str | None
    already_there: bool = False
    """The target already held exactly this budget (an earlier run whose COMMIT's answer
    was lost, or the same copy run twice): nothing was written."""

    @property
    def verified(self) -> bool:
        return self.report_mismatch is None and all(check.matches for check in self.tables)


def copy_database(
    *,
    source: Engine,
    target_direct: Engine,
    target_app: Engine,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
) -> CopySummary:
    """Copy every table of `source` into the empty target, then verify both sides.

    The source is read in one snapshot through its app URL; the target is written in one
    transaction over `target_direct` and read back for verification through `target_app`
    after the COMMIT: counts and content checksums per table, and every month's category
    report of every user.
    """
    from budget_tracker.migrate import head_revision

    head = head_revision()
    digests: dict[str, Digest] = {}
    with source.connect() as raw:
        connection = read_consistently(raw)
        with connection.begin():
            revision = schema_revision(connection)
            if revision != head:
                raise SourceNotMigrated(revision, head)
            shapes, tables = table_shapes(connection)
            if on_total is not None:
                on_total(sum(row_counts(connection, tables.values()).values()))

            to_postgresql = target_direct.dialect.name == "postgresql"

            def produce() -> Iterator[TableData]:
                for shape in shapes:
                    digest = digests[shape.name] = Digest()
                    table = tables[shape.name]
                    last_id = last_issued_id(connection, shape)
                    if to_postgresql:
                        chunks = _digested_copy_text(connection, table, shape, digest, progress)
                        yield TableData(shape, last_id, iter(()), chunks)
                    else:
                        rows = stream_table(connection, table, shape)
                        yield TableData(shape, last_id, _digested(rows, shape, digest, progress))

            refused: TargetNotEmpty | None = None
            lost: CommitUnacknowledged | None = None
            before: str | None = None
            try:
                before = load_into(target_direct, revision=head, tables=produce())
            except TargetNotEmpty as refusal:
                # Maybe this very budget, from an earlier run whose COMMIT's answer was
                # lost: the same rows in every table, then the same checksums and reports.
                if refusal.counts != occupied_tables(connection):
                    raise
                refused = refusal
                digests = digest_database(connection)
            except CommitUnacknowledged as unknown:
                lost, before = unknown, unknown.before
            source_reports = monthly_reports(connection)
    with _settling(lost), target_app.connect() as connection, connection.begin():
        target_digests = digest_database(connection)
        checks = _checks(digests, target_digests)
        equal = all(check.matches for check in checks)
        target_reports = monthly_reports(connection) if equal or not refused else {}
    if refused is not None and not equal:
        raise refused
    if lost is not None and not equal:
        if not any(digest.rows for digest in target_digests.values()):
            raise CommitNotMade()
        raise lost
    summary = CopySummary(
        revision=head,
        target_revision_before=before,
        tables=checks,
        report_months=_months_covered(source_reports),
        report_mismatch=_first_difference(source_reports, target_reports),
        already_there=refused is not None,
    )
    if refused is not None and not summary.verified:
        raise refused
    return summary


def _checks(source: dict[str, Digest], target: dict[str, Digest]) -> tuple[TableCheck, ...]:
    return tuple(
        TableCheck(
            name,
            digest.rows,
            digest.sha256,
            target[name].rows if name in target else None,
            target[name].sha256 if name in target else None,
        )
        for name, digest in source.items()
    )


@contextmanager
def _settling(lost: CommitUnacknowledged | None) -> Iterator[None]:
    """Reading the target back after a lost COMMIT answer: if that fails too, say that the
    outcome is unknown (not that the read failed)."""
    if lost is None:
        yield
        return
    try:
        yield
    except DBAPIError:
        raise lost from None


def monthly_reports(connection: Connection) -> dict[tuple[int, str], Any]:
    """Every user's reports over their whole history (first entry's month to last's).

    Two statements per user, whatever the length of the history: the month-by-month
    report (`report --by month`: every month's budget and spending) and the category
    report over the same months (every category's budget, transfers and spending). The
    per-table checksums already prove every row equal; these prove the reports read them
    the same way on both backends.
    """
    from budget_tracker.models import BudgetTransfer, Expense, User
    from budget_tracker.services.budgets import Period
    from budget_tracker.services.reports import category_lines, monthly_trend

    spans: dict[int, tuple[dt.date, dt.date]] = {}
    queries = (
        select(Expense.user_id, func.min(Expense.spent_on), func.max(Expense.spent_on)).group_by(
            Expense.user_id
        ),
        select(
            BudgetTransfer.user_id, func.min(BudgetTransfer.month), func.max(BudgetTransfer.month)
        ).group_by(BudgetTransfer.user_id),
    )
    for query in queries:
        for user_id, first, last in connection.execute(query):
            if user_id in spans:
                first, last = min(first, spans[user_id][0]), max(last, spans[user_id][1])
            spans[user_id] = (first, last)
    emails = {row.id: row.email for row in connection.execute(select(User.id, User.email))}
    reports: dict[tuple[int, str], Any] = {}
    with Session(bind=connection) as session:
        for user_id, (first, last) in sorted(spans.items()):
            period = Period(first.replace(day=1), last.replace(day=1))
            reports[(user_id, "months")] = monthly_trend(
                session, user_email=emails[user_id], period=period
            )
            reports[(user_id, "categories")] = category_lines(
                session, user_id=user_id, period=period
            )
    return reports


def _months_covered(reports: dict[tuple[int, str], Any]) -> int:
    return sum(len(report.lines) for (_user, kind), report in reports.items() if kind == "months")


def _first_difference(
    source: dict[tuple[int, str], Any], target: dict[tuple[int, str], Any]
) -> str | None:
    for key in sorted(source.keys() | target.keys()):
        if source.get(key) != target.get(key):
            user_id, kind = key
            view = "month-by-month" if kind == "months" else "category"
            return f"the {view} report of user {user_id} differs"
    return None


# --- Backup and restore -----------------------------------------------------------------


@dataclass(frozen=True)
class BackupSummary:
    revision: str
    tables: dict[str, Digest]


def _record(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def write_backup(
    source: Engine,
    out: IO[bytes],
    *,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
) -> BackupSummary:
    """Write every table of `source` to `out` in the backup format (see docs/backup-format.md)."""
    digests: dict[str, Digest] = {}
    with source.connect() as raw:
        connection = read_consistently(raw)
        with connection.begin():
            revision = schema_revision(connection)
            if revision is None:
                raise SchemaNotMigrated(
                    "the database has no schema yet: there is nothing to back up"
                )
            shapes, tables = table_shapes(connection)
            counts = row_counts(connection, tables.values())
            if on_total is not None:
                on_total(sum(counts.values()))
            out.write(
                _record(
                    {
                        "format": FORMAT,
                        "version": FORMAT_VERSION,
                        "schema_revision": revision,
                        "rows": sum(counts.values()),
                    }
                )
            )
            for shape in shapes:
                record = shape.record(last_issued_id(connection, shape))
                record["rows"] = counts[shape.name]
                out.write(_record(record))
                digest = digests[shape.name] = Digest()
                for batch in encoded_batches(connection, tables[shape.name], shape):
                    out.write(digest.add_lines(batch))
                    if progress is not None:
                        progress(len(batch))
            out.write(
                _record(
                    {
                        "end": FORMAT,
                        "tables": {
                            name: {"rows": digest.rows, "sha256": digest.sha256}
                            for name, digest in digests.items()
                        },
                    }
                )
            )
    return BackupSummary(revision, digests)


def open_backup_output(stream: IO[bytes], *, compress: bool) -> IO[bytes]:
    """`stream`, gzip'd when asked; the gzip header carries no name and no time, so the
    same budget always gives the same bytes."""
    if not compress:
        return stream
    return cast(
        "IO[bytes]",
        gzip.GzipFile(filename="", mode="wb", fileobj=stream, mtime=0, compresslevel=6),
    )


class BackupReader:
    """Reads a backup file as it streams by, checking everything on the way.

    The header is read at once (so a file that is not a backup is refused before anything
    is touched); the rows are decoded while the target loads them; `finish` checks the end
    record (row counts and checksums per table), which a truncated file lacks.
    """

    def __init__(self, stream: IO[bytes], label: str, progress: Progress | None = None) -> None:
        self.label = label
        self._progress = progress
        # Peek at the first bytes without consuming them: gzip'd or plain.
        buffered: Any = stream if hasattr(stream, "peek") else io.BufferedReader(cast(Any, stream))
        head = buffered.peek(2)[:2]
        self._stream: IO[bytes] = (
            cast("IO[bytes]", gzip.GzipFile(fileobj=buffered, mode="rb"))
            if head == GZIP_MAGIC
            else buffered
        )
        self._line_number = 0
        self._ahead: Any = None
        self.digests: dict[str, Digest] = {}
        self._expected_rows: dict[str, int] = {}
        self._trailer: dict[str, Any] | None = None
        header = self._next_value()
        if header is None:
            raise NotABackup(f"{label} is empty: it is not a Budget Tracker backup")
        _raw, value = header
        if not isinstance(value, dict) or value.get("format") != FORMAT:
            raise NotABackup(
                f"{label} is not a Budget Tracker backup (its first line is not a backup header)"
            )
        version = value.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise NotABackup(
                f"{label} is in backup format {version}, newer than this version reads "
                f"({FORMAT_VERSION}): use a newer version of Budget Tracker"
            )
        revision = value.get("schema_revision")
        if not isinstance(revision, str) or not known_revision(revision):
            raise NotABackup(
                f"{label} was written at schema revision {revision}, which this version does "
                "not know: use a newer version of Budget Tracker"
            )
        self.revision = revision
        total = value.get("rows")
        self.total_rows = total if isinstance(total, int) else None

    def _next_value(self) -> tuple[bytes, Any] | None:
        try:
            raw = self._stream.readline()
        except (OSError, EOFError) as exc:
            raise self._damaged(f"it cannot be read ({exc})") from None
        if not raw:
            return None
        self._line_number += 1
        if not raw.endswith(b"\n"):
            raise self._damaged("it is truncated")
        try:
            return raw, json.loads(raw)
        except ValueError:
            if self._line_number == 1:
                raise NotABackup(
                    f"{self.label} is not a Budget Tracker backup (its first line is not a "
                    "backup header)"
                ) from None
            raise self._damaged(f"line {self._line_number} is not valid JSON") from None

    def _damaged(self, why: str) -> NotABackup:
        return NotABackup(f"{self.label} is damaged: {why}; nothing was restored")

    def tables(self) -> Iterator[TableData]:
        """The tables in file order; each one's rows must be consumed before the next."""
        item = self._next_value()
        while True:
            if item is None:
                raise self._damaged("it is truncated (its end record is missing)")
            _raw, value = item
            if isinstance(value, dict) and value.get("end") == FORMAT:
                self._trailer = value
                return
            shape, last_id = self._table_record(value)
            digest = self.digests[shape.name] = Digest()
            self._ahead = None
            rows = self._rows(shape, digest)
            yield TableData(shape, last_id, rows)
            for _ in rows:  # a consumer that stopped early still leaves us at the next record
                pass
            item = self._ahead

    def _table_record(self, value: Any) -> tuple[TableShape, int | None]:
        where = f"line {self._line_number}"
        if not isinstance(value, dict) or not isinstance(value.get("table"), str):
            raise self._damaged(f"{where} should start a table")
        columns, kinds = value.get("columns"), value.get("types")
        last_id = value.get("last_id")
        if (
            not isinstance(columns, list)
            or not isinstance(kinds, list)
            or len(columns) != len(kinds)
            or not all(isinstance(name, str) for name in columns)
            or not all(kind in KINDS for kind in kinds)
            or not (last_id is None or isinstance(last_id, int))
            or value["table"] in self.digests
        ):
            raise self._damaged(f"{where} is not a valid table record")
        rows = value.get("rows")
        if isinstance(rows, int):
            self._expected_rows[value["table"]] = rows
        shape = TableShape(value["table"], tuple(columns), tuple(kinds), (), None)
        return shape, last_id

    def _rows(self, shape: TableShape, digest: Digest) -> Iterator[tuple[Any, ...]]:
        decoders = [_DECODERS[kind] for kind in shape.kinds]
        width = len(decoders)
        while (item := self._next_value()) is not None:
            raw, value = item
            if not isinstance(value, list):
                self._ahead = item
                return
            if len(value) != width:
                raise self._damaged(
                    f"line {self._line_number} has {len(value)} values, not {width}"
                )
            try:
                row = tuple(
                    None if cell is None else decode(cell)
                    for decode, cell in zip(decoders, value, strict=True)
                )
            except (ValueError, TypeError, InvalidOperation) as exc:
                raise self._damaged(f"line {self._line_number}: {exc}") from None
            digest.add(raw)
            yield row
            if self._progress is not None and digest.rows % 1000 == 0:
                self._progress(1000)
        self._ahead = None
        if self._progress is not None:
            self._progress(digest.rows % 1000)

    def finish(self) -> None:
        """The end record is there, nothing follows it, and every table's rows match it."""
        if self._trailer is None:
            raise self._damaged("it is truncated (its end record is missing)")
        if self._next_value() is not None:
            raise self._damaged(f"line {self._line_number} follows the end record")
        recorded = self._trailer.get("tables")
        actual = {
            name: {"rows": digest.rows, "sha256": digest.sha256}
            for name, digest in self.digests.items()
        }
        if recorded != actual:
            raise self._damaged("its rows do not match the counts and checksums of its end record")
        for name, rows in self._expected_rows.items():
            if actual[name]["rows"] != rows:
                raise self._damaged(f"table {name} should have {rows} rows")


@dataclass(frozen=True)
class RestoreSummary:
    revision: str
    """The schema revision the backup was written at."""
    upgraded_to: str | None
    """The head it was upgraded to, when it was older."""
    tables: tuple[TableCheck, ...]
    already_there: bool = False
    """The target already held exactly this backup (an earlier run whose COMMIT's answer
    was lost, or the same restore run twice): nothing was written."""


def restore_backup(
    stream: IO[bytes],
    label: str,
    *,
    target_direct: Engine,
    target_app: Engine,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
) -> RestoreSummary:
    """Load a backup into the empty target in one transaction, then verify it.

    A backup of an older schema revision is loaded into the schema of that revision and
    migrated to head in the same transaction. Verification reads the target back through
    its app URL: row counts per table, and (when no migration ran) the content checksums.
    """
    from budget_tracker.migrate import head_revision

    backup = BackupReader(stream, label, progress)
    if on_total is not None and backup.total_rows is not None:
        on_total(backup.total_rows)
    head = head_revision()
    refused: TargetNotEmpty | None = None
    lost: CommitUnacknowledged | None = None
    try:
        load_into(
            target_direct, revision=backup.revision, tables=backup.tables(), finish=backup.finish
        )
    except TargetNotEmpty as refusal:
        # Maybe this very backup, restored by an earlier run whose COMMIT's answer was
        # lost: as many rows, then the same checksums (comparable at the same revision).
        if backup.revision != head or backup.total_rows != sum(refusal.counts.values()):
            raise
        refused = refusal
        for _table in backup.tables():  # reads (and checks) the whole file
            pass
        backup.finish()
    except CommitUnacknowledged as unknown:
        lost = unknown
    with _settling(lost), target_app.connect() as connection, connection.begin():
        if backup.revision == head:
            target = digest_database(connection)
        else:
            counts = row_counts(connection, list(backup.digests))
            target = {name: Digest(rows=count) for name, count in counts.items()}
    checks = tuple(
        TableCheck(
            name,
            digest.rows,
            digest.sha256,
            target[name].rows if name in target else None,
            (target[name].sha256 if backup.revision == head else digest.sha256)
            if name in target
            else None,
        )
        for name, digest in backup.digests.items()
    )
    equal = all(check.matches for check in checks)
    if refused is not None and not equal:
        raise refused
    if lost is not None and not equal:
        if not any(digest.rows for digest in target.values()):
            raise CommitNotMade()
        raise lost
    return RestoreSummary(
        revision=backup.revision,
        upgraded_to=head if backup.revision != head else None,
        tables=checks,
        already_there=refused is not None,
    )


def require_verified(checks: Iterable[TableCheck], mismatch: str | None = None) -> None:
    """Raise when a verification found a difference (after the data was committed)."""
    for check in checks:
        if not check.matches:
            raise VerificationFailed(
                f"verification failed after COMMIT: table {check.name} has {check.rows:,} rows "
                f"(sha256 {check.sha256[:12]}) in the source and "
                f"{'none' if check.target_rows is None else f'{check.target_rows:,}'} "
                f"(sha256 {(check.target_sha256 or '-')[:12]}) in the target"
            )
    if mismatch is not None:
        raise VerificationFailed(f"verification failed after COMMIT: {mismatch}")


# --- Which databases ---------------------------------------------------------------------

LOCAL = "local"


@dataclass(frozen=True)
class Endpoint:
    """A database named on the command line: its app URL and its direct URL."""

    url: URL
    direct_url: URL

    @property
    def label(self) -> str:
        from budget_tracker.config import mask_url

        return mask_url(self.url)


def resolve_endpoint(
    settings: Settings,
    given: str | None,
    *,
    label: str,
    direct: str | None = None,
    direct_label: str = "",
) -> Endpoint:
    """`local`, a URL, or (None) the database in use; the direct URL by the migration rules:
    `direct` when given, DATABASE_URL_UNPOOLED when `given` is the configured DATABASE_URL,
    derived from a Neon `-pooler` host otherwise. `label` and `direct_label` name where
    the caller took the two URLs from, for the messages about them."""
    from budget_tracker.config import derive_direct_url, local_sqlite_url, parse_database_url
    from budget_tracker.errors import ConfigError

    if given is None:
        return Endpoint(settings.database_url, settings.migration_url)
    if given.strip() == LOCAL:
        url = local_sqlite_url()
        return Endpoint(url, url)
    try:
        url = parse_database_url(given, label)
        direct_url = parse_database_url(direct, direct_label) if direct else None
    except ConfigError as exc:
        raise InvalidInput(str(exc)) from None
    if direct_url is None:
        if url == settings.database_url:
            direct_url = settings.migration_url
        else:
            direct_url = derive_direct_url(url) or url
    return Endpoint(url, direct_url)


def engine_for(settings: Settings, url: URL) -> Engine:
    """An engine without a pool (one command, one or two connections) for `url`."""
    from sqlalchemy.pool import NullPool

    from budget_tracker.engine import create_app_engine, instrument_engine

    engine = create_app_engine(settings, url=url, poolclass=NullPool)
    instrument_engine(engine)
    return engine
