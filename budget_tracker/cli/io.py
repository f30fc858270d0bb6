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

from budget_tracker.cli.output import announce_first_run, info, warn
from budget_tracker.cli.params import DATE, NAME, FilePath, options_checked, user_option
from budget_tracker.cli.wording import said
from budget_tracker.errors import BudgetError, DatabaseUnavailable, InvalidInput
from budget_tracker.services.bankfiles.records import COLUMN_ROLES

DELIMITERS = {",": ",", ";": ";", "tab": "\t", "|": "|"}


class ColumnMapType(click.ParamType[dict[str, str]]):
    """`FIELD=HEADER[,FIELD=HEADER...]`: which header (or position) holds each field."""

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
            if field not in COLUMN_ROLES:
                self.fail(f"{field!r} is not a field; use {', '.join(COLUMN_ROLES)}", param, ctx)
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
@click.argument("file", type=FilePath(dir_okay=False, allow_dash=True, path_type=str))
@click.option(
    "--columns",
    type=ColumnMapType(),
    default=None,
    help="Map fields to the file's headers (or positions with --no-header): FIELD=HEADER,... "
    "Fields: date, amount, outflow, inflow, direction, description, category, id, status.",
)
@click.option(
    "--delimiter",
    type=click.Choice(list(DELIMITERS)),
    help="Field separator  [default: found from the content]",
)
@click.option("--encoding", help="The file's encoding, e.g. cp1252  [default: detected]")
@click.option("--skip", type=click.IntRange(min=0), help="Lines before the header line.")
@click.option("--no-header", is_flag=True, help="The file has no header line.")
@click.option(
    "--date-format",
    type=DateFormatType(),
    help="strptime format of the dates, e.g. %d.%m.%Y  [default: inferred from every date]",
)
@click.option("--category", type=NAME, help="Put every row into this category.")
@click.option(
    "--signs",
    type=click.Choice(["spending-positive", "spending-negative"]),
    default=None,
    help="How the amount column's sign reads  [default: positive for a `budget export` "
    "file; negative is spending for a bank file]",
)
@click.option("--decimal-comma", is_flag=True, default=None, help="Amounts are written 1.234,56.")
@click.option(
    "--outflow-value",
    help="The direction column's value for money out, e.g. D (default: D, DR, Debit, Af, ...).",
)
@click.option(
    "--description",
    "description_template",
    help="The description: a column, or a template such as '{Payee} {Memo}'.",
)
@click.option(
    "--credits",
    type=click.Choice(["skip", "income"]),
    default=None,
    help="Money coming in: skip (counted and listed) or income (recorded as income, "
    "never twice)  [default: skip]",
)
@click.option("--profile", help="Use the saved import profile NAME.")
@click.option(
    "--rules",
    "rules_file",
    type=FilePath(exists=True, dir_okay=False, path_type=Path),
    help="Use the profile document in FILE (TOML: layout, skip rules, category rules).",
)
@click.option("--save-profile", help="Save this import's options as the profile NAME.")
@click.option("--create-categories", is_flag=True, help="Create categories the file names.")
@click.option("--dry-run", is_flag=True, help="Show what would be stored; write nothing.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: the summary (counts, skipped rows by reason, credits) as one JSON object "
    "on stdout.",
)
@user_option
@click.pass_obj
def import_command(
    state: Any,
    file: str,
    columns: dict[str, str] | None,
    delimiter: str | None,
    encoding: str | None,
    skip: int | None,
    no_header: bool,
    date_format: str | None,
    category: str | None,
    signs: str | None,
    decimal_comma: bool | None,
    outflow_value: str | None,
    description_template: str | None,
    credits: str | None,
    profile: str | None,
    rules_file: Path | None,
    save_profile: str | None,
    create_categories: bool,
    dry_run: bool,
    fmt: str,
    user_email: str | None,
) -> None:
    """Import expenses from a bank statement or CSV file: all rows or none, never twice.

    Reads CSV (any of , ; tab |, a header after preamble lines), OFX/QFX, QIF, CAMT.053
    and MT940, told apart by their content; `-` reads standard input. Credits, pending
    rows, zero rows and balance lines are not spending: they are skipped and counted.
    Every row is checked before anything is written; importing a file again adds only rows
    that are not there yet. The summary goes to stderr. See "Importing from your bank" in
    the README for profiles and rules.

    \b
    Example:
      budget import history.csv
      budget import statement.ofx --category Bank --dry-run
      budget import export.csv --date-format %d.%m.%Y --category Bank --save-profile mybank
      budget import next-month.csv --profile mybank
    """
    from budget_tracker.services import import_profiles

    given: dict[str, Any] = {
        "delimiter": DELIMITERS[delimiter] if delimiter else None,
        "encoding": encoding,
        "skip": skip,
        "no_header": no_header or None,
        "date_format": date_format,
        "decimal_comma": decimal_comma,
        "signs": signs,
        "outflow_value": outflow_value,
        "description": description_template,
        "category": category,
        "credits": credits,
    }
    rules_text = None
    if rules_file is not None:
        rules_text = _read_text(rules_file)
        import_profiles.parse(rules_text, origin=rules_file.name)  # checked before any work

    def work(session: Any) -> Any:
        from budget_tracker.services.importer import import_expenses

        documents: list[tuple[str, str]] = []
        if profile is not None:
            documents.append(
                (
                    f"profile {profile!r}",
                    import_profiles.load_profile(session, user_email=user_email, name=profile),
                )
            )
        if rules_text is not None and rules_file is not None:
            documents.append((rules_file.name, rules_text))
        values, mapping, options = _options(
            documents, given, columns or {}, create_categories, dry_run
        )
        summary = import_expenses(
            session, user_email=user_email, path=file, options=options, progress=progress
        )
        if save_profile is not None and not dry_run:
            import_profiles.save_profile(
                session,
                user_email=user_email,
                name=save_profile,
                document=import_profiles.render(values, mapping, _merged_rules(documents)),
            )
        return summary

    with _progress(file) as progress:
        # A dry run writes nothing, not even the record of its outcome.
        summary = state.database.run(work, write=True, record_outcome=not dry_run)
    _report(summary, as_json=fmt == "json")
    if save_profile is not None:
        if dry_run:
            info(f"Profile {save_profile!r} was not saved (dry run).")
        else:
            info(f"Saved the options as profile {save_profile!r}.")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{path.name} cannot be read as UTF-8 text") from exc


def _merged_rules(documents: list[tuple[str, str]]) -> str | None:
    """The rules of the profile and the rules file, the file's after the profile's."""
    if not documents:
        return None
    import tomllib

    merged: dict[str, list[Any]] = {"skip_rows": [], "category_rules": []}
    for _origin, text in documents:
        data = tomllib.loads(text)
        for table in merged:
            merged[table] += data.get(table, [])
    import json

    lines = []
    for table, items in merged.items():
        for item in items:
            lines.append(f"[[{table}]]")
            lines += [
                f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in item.items()
            ]
    return "\n".join(lines) + "\n" if lines else None


def _options(
    documents: list[tuple[str, str]],
    given: dict[str, Any],
    columns: dict[str, str],
    create_categories: bool,
    dry_run: bool,
) -> tuple[dict[str, Any], dict[str, str], Any]:
    """Profile, then rules file, then command-line options: later ones win."""
    from budget_tracker.services import import_profiles
    from budget_tracker.services.importer import Credits, ImportOptions, Signs

    values: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    skip_rules: list[Any] = []
    category_rules: list[Any] = []
    for origin, text in documents:
        parsed = import_profiles.parse(text, origin=origin)
        values.update(parsed.values)
        mapping.update(parsed.columns)
        skip_rules += parsed.skip_rules
        category_rules += parsed.category_rules
    values.update({key: value for key, value in given.items() if value is not None})
    mapping.update(columns)
    options = ImportOptions(
        columns=mapping,
        delimiter=values.get("delimiter"),
        date_format=values.get("date_format"),
        category=values.get("category"),
        signs=Signs(values["signs"]) if values.get("signs") else None,
        decimal_comma=values.get("decimal_comma"),
        create_categories=create_categories,
        dry_run=dry_run,
        encoding=values.get("encoding"),
        skip=values.get("skip"),
        no_header=bool(values.get("no_header")),
        outflow_value=values.get("outflow_value"),
        description=values.get("description"),
        credits=Credits(values.get("credits") or "skip"),
        skip_rules=tuple(skip_rules),
        category_rules=tuple(category_rules),
        fallback_category=values.get("fallback_category"),
    )
    return values, mapping, options


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


SKIP_REASONS = {
    "pending": "pending",
    "not booked": "not booked (declined or reverted)",
    "zero": "zero amount",
    "summary": "balance or summary line",
    "rule": "matched a skip rule",
}


def _summary_json(summary: Any) -> dict[str, Any]:
    credits = dict(summary.credit_kinds) or (
        {"credit": summary.skipped_income} if summary.skipped_income else {}
    )
    return {
        "file": summary.file,
        "format": summary.format,
        "dry_run": summary.dry_run,
        "rows": summary.rows,
        "new": summary.new,
        "present": summary.present,
        "created_categories": list(summary.created_categories),
        "notes": [said(note) for note in summary.notes],
        "credits": credits,
        "credit_total": _money(summary.credit_cents),
        "income": {"new": summary.income_new, "present": summary.income_present},
        "skipped": dict(summary.skipped),
        "id_conflicts": summary.id_conflicts,
        "preview": [
            {
                "date": row.spent_on.isoformat(),
                "amount": _money(row.cents),
                "category": row.category,
                "description": row.description,
            }
            for row in summary.preview
        ],
        "first_date": summary.first_date.isoformat() if summary.first_date else None,
        "last_date": summary.last_date.isoformat() if summary.last_date else None,
        "total": _money(summary.total_cents) if summary.dry_run else None,
    }


def _report(summary: Any, *, as_json: bool = False) -> None:
    """The import's summary on stderr (or as JSON on stdout); a dry run's preview rows."""
    announce_first_run(summary.first_run)
    if as_json:
        import json

        click.echo(json.dumps(_summary_json(summary), ensure_ascii=False))
    if summary.notes:
        info(f"{summary.file}: {'; '.join(said(note) for note in summary.notes)}.")
    if summary.dry_run and summary.preview and not as_json:
        click.echo(f"First {len(summary.preview)} rows as they would be stored:")
        for row in summary.preview:
            click.echo(
                f"  {row.spent_on.isoformat()}  {_money(row.cents):>12}  "
                f"{row.category:<20}  {row.description}"
            )
        click.echo(
            f"Dates {summary.first_date} to {summary.last_date}; "
            f"total {_money(summary.total_cents)}."
        )
    if summary.created_categories:
        verb = "Would create" if summary.dry_run else "Created"
        info(f"{verb} categories: {', '.join(summary.created_categories)}.")
    if summary.skipped_income:
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(summary.credit_kinds.items()))
        total = f" totalling {_money(summary.credit_cents)}" if summary.credit_cents else ""
        detail = f" ({kinds})" if kinds and set(summary.credit_kinds) != {"credit"} else ""
        credits = "credit" if summary.skipped_income == 1 else "credits"
        if summary.income_new or summary.income_present:
            verb = "Would record" if summary.dry_run else "Recorded"
            info(
                f"{verb} {summary.skipped_income} {credits}{total}{detail} as income: "
                f"{summary.income_new} new, {summary.income_present} already present."
            )
        else:
            info(
                f"Skipped {summary.skipped_income} {credits}{total}{detail}: money coming in "
                "is not spending."
            )
        for credit in summary.credits:
            info(f"  {credit.date.isoformat()}  {_money(credit.cents):>12}  {credit.description}")
        if summary.skipped_income > len(summary.credits) and summary.credits:
            info(f"  and {summary.skipped_income - len(summary.credits)} more")
    if summary.skipped:
        reasons = ", ".join(
            f"{count} {SKIP_REASONS.get(reason, reason)}"
            for reason, count in summary.skipped.items()
        )
        info(f"Skipped rows that are not spending: {reasons}.")
    if summary.id_conflicts:
        noun = "row" if summary.id_conflicts == 1 else "rows"
        verb = "was" if summary.id_conflicts == 1 else "were"
        warn(
            f"{summary.id_conflicts} {noun} of {summary.file} {verb} taken as already present "
            "by the bank's transaction id, but the row stored under that id has another date "
            "or amount (is this another account's file?):"
        )
        for conflict in summary.id_conflict_rows:
            info(
                f"  line {conflict.line}: {conflict.spent_on.isoformat()} "
                f"{_money(conflict.cents)} in the file, {conflict.stored_on.isoformat()} "
                f"{_money(conflict.stored_cents)} stored"
            )
        if summary.id_conflicts > len(summary.id_conflict_rows):
            info(f"  and {summary.id_conflicts - len(summary.id_conflict_rows)} more")
    counts = f"{summary.new} new, {summary.present} already present ({summary.rows} rows)"
    if summary.dry_run:
        info(f"Dry run of {summary.file}: {counts}; nothing was written.")
    else:
        info(f"Imported {summary.file}: {counts}.")


@contextmanager
def _progress(file: str) -> Iterator[Any]:
    """A byte-count progress bar on stderr, only for a regular file and a terminal."""
    path = Path(file)
    if file == "-" or not sys.stderr.isatty() or not path.is_file():
        yield None
        return
    with click.progressbar(
        length=path.stat().st_size, label=f"Importing {path.name}", file=sys.stderr
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
    type=FilePath(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
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
    """Where an export goes: stdout (no path), or `output_file(path)`; what is written
    straight through (stdout, a FIFO, a device) cannot restart on a retry."""
    if path is None:
        if optional:
            yield None
            return
        yield _WriteThrough(sys.stdout)
        sys.stdout.flush()
        return
    with output_file(path) as (stream, through):
        yield _WriteThrough(stream) if through else stream


@contextmanager
def output_file(path: Path, *, binary: bool = False) -> Iterator[tuple[Any, bool]]:
    """A file the command writes: the stream, and whether it is written straight through.

    Only a regular file, or a path where nothing is yet, is written under a temporary
    name beside it and renamed over it when the command succeeds, keeping an existing
    file's permission bits (a new one is private, 0600, as `mkstemp` creates it). A
    symlink is followed: its target is what is written (the link stays). Anything else
    (`/dev/null`, a FIFO, a terminal) is written through and never replaced. A failure to
    write is one line, and a file that was there is kept.
    """
    options: dict[str, Any] = {} if binary else {"encoding": "utf-8", "newline": ""}
    mode_letters = "wb" if binary else "w"
    target = Path(os.path.realpath(path))
    try:
        mode: int | None = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _cannot_write(path, exc, existed=False) from None
    if mode is not None and not stat.S_ISREG(mode):
        try:
            with target.open(mode_letters, **options) as handle:
                yield handle, True
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
        with os.fdopen(handle_fd, mode_letters, **options) as stream:
            yield stream, False
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
