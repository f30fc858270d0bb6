"""`budget import` and `budget export`: bring history in from CSV, take it out again."""

from __future__ import annotations

import datetime as dt
import io
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import click

from budget_tracker.cli.output import announce_first_run, info
from budget_tracker.cli.params import DATE, NAME, options_checked, user_option
from budget_tracker.errors import BudgetError, DatabaseUnavailable, InvalidInput

IMPORT_FIELDS = ("date", "amount", "category", "description")
DELIMITERS = {",": ",", ";": ";", "tab": "\t"}


class ColumnMapType(click.ParamType[dict[str, str]]):
    """`FIELD=HEADER[,FIELD=HEADER...]`: which header of the file holds each field."""

    name = "mapping"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dict[str, str]:
        if isinstance(value, dict):
            return value
        mapping: dict[str, str] = {}
        for part in str(value).split(","):
            field, equals, header = part.partition("=")
            field = field.strip().lower()
            if not equals or not header.strip():
                self.fail(
                    f"{part.strip()!r} is not FIELD=HEADER (e.g. date='Booking date')", param, ctx
                )
            if field not in IMPORT_FIELDS:
                self.fail(f"{field!r} is not a field; use {', '.join(IMPORT_FIELDS)}", param, ctx)
            if field in mapping:
                self.fail(f"{field!r} is mapped twice", param, ctx)
            mapping[field] = header.strip()
        return mapping


class DateFormatType(click.ParamType[str]):
    """A strptime format with at least one directive, e.g. `%d.%m.%Y`."""

    name = "format"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if "%" not in text:
            self.fail(f"{text!r} has no % directive (e.g. %d.%m.%Y)", param, ctx)
        try:
            dt.date(2001, 2, 3).strftime(text)
        except ValueError:
            self.fail(f"{text!r} is not a strptime format", param, ctx)
        return text


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--columns",
    type=ColumnMapType(),
    default=None,
    help="Map fields to the file's headers: FIELD=HEADER,... (fields: date, amount, "
    "category, description; headers match case-insensitively).",
)
@click.option(
    "--delimiter",
    type=click.Choice(list(DELIMITERS)),
    help="Field separator  [default: whichever of , ; tab the header line uses most]",
)
@click.option(
    "--date-format",
    type=DateFormatType(),
    help="strptime format of the date column, e.g. %d.%m.%Y  [default: YYYY-MM-DD]",
)
@click.option("--category", type=NAME, help="Put every row into this category.")
@click.option(
    "--signs",
    type=click.Choice(["spending-positive", "spending-negative"]),
    default="spending-positive",
    show_default=True,
    help="spending-negative: a bank export where spending is negative; rows with positive "
    "amounts (income) are skipped and counted.",
)
@click.option("--decimal-comma", is_flag=True, help="Amounts are written 1.234,56.")
@click.option("--create-categories", is_flag=True, help="Create categories the file names.")
@click.option("--dry-run", is_flag=True, help="Validate and count; write nothing.")
@user_option
@click.pass_obj
def import_command(
    state: Any,
    file: Path,
    columns: dict[str, str] | None,
    delimiter: str | None,
    date_format: str | None,
    category: str | None,
    signs: str,
    decimal_comma: bool,
    create_categories: bool,
    dry_run: bool,
    user_email: str | None,
) -> None:
    """Import expenses from a CSV file: all rows or none, never the same row twice.

    The default columns are date,amount,category,description (the format `budget export`
    writes). Every row is checked before anything is written; with bad rows nothing is
    imported and each is listed (line, column, reason). Importing a file again adds only
    rows that are not there yet. The summary goes to stderr.

    \b
    Example:
      budget import history.csv
      budget import bank.csv --columns "date=Booking date,amount=Amount,description=Payee" \\
          --date-format %d.%m.%Y --decimal-comma --signs spending-negative --category Bank
    """
    from budget_tracker.services.importer import ImportOptions, Signs, import_expenses

    options = ImportOptions(
        columns=columns or {},
        delimiter=DELIMITERS[delimiter] if delimiter else None,
        date_format=date_format,
        category=category,
        signs=Signs(signs),
        decimal_comma=decimal_comma,
        create_categories=create_categories,
        dry_run=dry_run,
    )
    with _progress(file) as progress:
        summary = state.database.run(
            lambda session: import_expenses(
                session, user_email=user_email, path=file, options=options, progress=progress
            ),
            write=True,
            # A dry run writes nothing, not even the record of its outcome.
            record_outcome=not dry_run,
        )
    announce_first_run(summary.first_run)
    if summary.created_categories:
        verb = "Would create" if summary.dry_run else "Created"
        info(f"{verb} categories: {', '.join(summary.created_categories)}.")
    if summary.skipped_income:
        info(f"Skipped {summary.skipped_income} rows with positive amounts (income).")
    counts = f"{summary.new} new, {summary.present} already present ({summary.rows} rows)"
    if summary.dry_run:
        info(f"Dry run of {summary.file}: {counts}; nothing was written.")
    else:
        info(f"Imported {summary.file}: {counts}.")


@contextmanager
def _progress(file: Path) -> Iterator[Any]:
    """A byte-count progress callback drawing a bar on stderr, only when it is a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(
        length=file.stat().st_size, label=f"Importing {file.name}", file=sys.stderr
    ) as bar:
        yield bar.update


@click.command("export")
@click.option("--from", "date_from", type=DATE, help="First date to include.")
@click.option("--to", "date_to", type=DATE, help="Last date to include.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="csv is what `budget import` reads back.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
    help="Write to this file (replaced only when the export succeeds; a FIFO or device is "
    "written into, never replaced; - is stdout)  [default: stdout]",
)
@click.option(
    "--transfers",
    is_flag=True,
    help="Also export the budget transfer ledger (csv: to FILE.transfers.csv; json: a "
    '"transfers" key).',
)
@user_option
@click.pass_obj
def export_command(
    state: Any,
    date_from: dt.date | None,
    date_to: dt.date | None,
    fmt: str,
    output: Path | None,
    transfers: bool,
    user_email: str | None,
) -> None:
    """Export expenses, ordered by date, in the format `budget import` reads back.

    CSV columns: date,amount,category,description. JSON: {"expenses": [...]} with the
    same keys (amounts as strings). Dates are inclusive.

    \b
    Example:
      budget export -o history.csv
      budget export --from 2026-01-01 --to 2026-03-31 --format json --transfers
    """
    from budget_tracker.services.budgets import date_range
    from budget_tracker.services.exporter import export

    with options_checked():
        date_range(None, date_from, date_to)
    if output is not None and str(output) == "-":
        output = None  # `-o -` is stdout, as `-` is for every command that takes a file
    if transfers and fmt == "csv" and output is None:
        raise click.UsageError(
            "--transfers with --format csv needs -o FILE (transfers go "
            "to a second file, FILE.transfers.csv)"
        )
    transfers_path = transfers_file(output) if transfers and fmt == "csv" and output else None
    with _destination(output) as stream, _destination(transfers_path, optional=True) as tstream:

        def work(session: Any) -> Any:
            # A retried unit of work starts the files again; stdout cannot be taken back.
            if any(getattr(out, "written", False) for out in (stream, tstream)):
                raise DatabaseUnavailable(
                    "the database connection was lost after the export had started writing "
                    "to stdout, a pipe or a device; run it again (with -o FILE a lost "
                    "connection is retried)"
                )
            return export(
                session,
                user_email=user_email,
                stream=_restart(stream),
                fmt=fmt,
                date_from=date_from,
                date_to=date_to,
                transfers_stream=_restart(tstream) if tstream is not None else None,
                include_transfers=transfers,
            )

        summary = state.database.run(work, write=False)
    announce_first_run(summary.first_run)
    if output is not None:
        message = f"Exported {summary.expenses} expenses to {output}"
        if transfers_path is not None:
            message += f" and {summary.transfers} transfers to {transfers_path}"
        info(message + ".")


def transfers_file(output: Path) -> Path:
    """`history.csv` -> `history.transfers.csv`."""
    return output.with_name(f"{output.stem}.transfers{output.suffix or '.csv'}")


class _WriteThrough:
    """stdout, a FIFO or a device: remembers whether anything was written to it.

    What went there cannot be taken back, so a retried unit of work must not write it
    again.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.written = False

    def write(self, text: str) -> int:
        self.written = True
        return int(self.stream.write(text))


def _restart(stream: Any) -> Any:
    """Empty a file before a (re)try of the unit of work writes it from the start."""
    if isinstance(stream, io.TextIOBase) and stream.seekable():
        stream.seek(0)
        stream.truncate()
    return stream


@contextmanager
def _destination(path: Path | None, *, optional: bool = False) -> Iterator[Any]:
    """Where an export goes: stdout (no path), a file replaced only on success, or a
    FIFO or device written into.

    Only a regular file, or a path where nothing is yet, is written under a temporary
    name beside it and renamed over it when the export succeeds, keeping an existing
    file's permission bits. A symlink is followed: its target is what is written (the
    link stays). Anything else (`/dev/null`, a FIFO, a terminal) is written through and
    never replaced. A failure to write is one line, and a file that was there is kept.
    """
    if path is None:
        if optional:
            yield None
            return
        yield _WriteThrough(sys.stdout)
        sys.stdout.flush()
        return
    target = Path(os.path.realpath(path))
    try:
        mode: int | None = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _cannot_write(path, exc, existed=False) from None
    if mode is not None and not stat.S_ISREG(mode):
        try:
            with target.open("w", encoding="utf-8", newline="") as handle:
                yield _WriteThrough(handle)
        except OSError as exc:
            raise _cannot_write(path, exc, existed=False) from None
        return
    try:
        handle_fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise _cannot_write(path, exc, existed=mode is not None) from None
    try:
        if mode is not None:
            os.chmod(temporary, stat.S_IMODE(mode))
        with os.fdopen(handle_fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
        os.replace(temporary, target)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc, existed=mode is not None) from None
        raise


def _cannot_write(path: Path, exc: OSError, *, existed: bool) -> BudgetError:
    """One line for an output that could not be written (exit 2 for a missing folder)."""
    if isinstance(exc, FileNotFoundError) and not path.parent.is_dir():
        return InvalidInput(f"cannot write {path}: no directory {path.parent}")
    reason = exc.strerror or str(exc)
    kept = f"; {path} was left as it was" if existed else ""
    return BudgetError(f"cannot write {path}: {reason}{kept}")
