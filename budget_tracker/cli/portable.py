"""`budget db copy`, `budget backup`, `budget restore`: carry a whole budget elsewhere."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from budget_tracker.cli.output import info
from budget_tracker.cli.params import FilePath
from budget_tracker.cli.state import AppState

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from budget_tracker.services.portable import TableCheck


class _Progress:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._bar: Any = None

    def total(self, length: int) -> None:
        if sys.stderr.isatty() and length > 0:
            self._bar = click.progressbar(length=length, label=self.label, file=sys.stderr)
            self._bar.__enter__()

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@contextmanager
def _progress(label: str) -> Iterator[_Progress]:
    bar = _Progress(label)
    try:
        yield bar
    finally:
        bar.close()


def _require_file(url: URL, what: str) -> None:
    """A SQLite source must exist: reading it must not create an empty file."""
    from budget_tracker.errors import NotFound

    path = url.database if url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not Path(path).is_file():
        raise NotFound(f"the {what} SQLite file {url.database} does not exist")


def _print_checks(checks: tuple[TableCheck, ...]) -> None:
    width = max([len("table"), *(len(check.name) for check in checks)])
    rows = max([len("rows"), *(len(f"{check.rows:,}") for check in checks)])
    click.echo(f"  {'table':<{width}}  {'rows':>{rows}}  sha256        target")
    for check in checks:
        state = "equal" if check.matches else "DIFFERENT"
        click.echo(f"  {check.name:<{width}}  {check.rows:>{rows},}  {check.sha256[:12]}  {state}")


@click.command("copy")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL|local",
    help="The empty database to copy into (`local`: the embedded SQLite file).",
)
@click.option(
    "--from",
    "source",
    metavar="URL|local",
    help="The database to copy from (default: the one in use, DATABASE_URL or local).",
)
@click.option(
    "--to-direct",
    metavar="URL",
    help="The target's direct (unpooled) URL, for migrating and loading it. Default: "
    "DATABASE_URL_UNPOOLED when --to is DATABASE_URL, else --to without Neon's -pooler.",
)
@click.pass_obj
def copy_command(state: AppState, target: str, source: str | None, to_direct: str | None) -> None:
    """Copy every table of a budget into an empty database, ids kept, then verify it.

    The target is migrated to this version's schema and loaded in one transaction over
    its direct URL: it ends with the whole copy or unchanged, so an interrupted copy can
    be run again. A target that holds any other data is refused (merging two budgets is
    not supported); one that already holds exactly this budget is reported as such. At
    the end both sides are compared: row counts and a content checksum per table, and
    every month's report of every user.

    \b
    Example:
      budget db copy --from local --to "$DATABASE_URL"
      budget db copy --from "$NEON_URL" --to local
    """
    from budget_tracker.services.portable import (
        copy_database,
        engine_for,
        require_verified,
        resolve_endpoint,
    )

    settings = state.database.settings
    origin = resolve_endpoint(settings, source, label="--from")
    destination = resolve_endpoint(
        settings, target, label="--to", direct=to_direct, direct_label="--to-direct"
    )
    _require_file(origin.url, "source")
    if origin.url == destination.url:
        from budget_tracker.errors import InvalidInput

        raise InvalidInput("--from and --to name the same database")
    engines = [
        engine_for(settings, origin.url),
        engine_for(settings, destination.direct_url),
        engine_for(settings, destination.url),
    ]
    try:
        with _progress("Copying") as bar:
            summary = copy_database(
                source=engines[0],
                target_direct=engines[1],
                target_app=engines[2],
                progress=bar.advance,
                on_total=bar.total,
            )
    finally:
        for engine in engines:
            engine.dispose()
    if summary.already_there:
        click.echo(
            f"{destination.label} already holds this budget, the same as {origin.label} "
            f"(schema revision {summary.revision}): nothing was written."
        )
    else:
        click.echo(
            f"Copied {origin.label} to {destination.label} (schema revision {summary.revision}):"
        )
    _print_checks(summary.tables)
    require_verified(summary.tables, summary.report_mismatch)
    click.echo(
        f"Verified: row counts and checksums of {len(summary.tables)} tables, and the "
        f"reports of {summary.report_months} month{'' if summary.report_months == 1 else 's'} "
        "(by month and by category), are equal on both sides."
    )


@click.command("backup")
@click.argument("file", type=FilePath(dir_okay=False, allow_dash=True, path_type=str))
@click.pass_obj
def backup_command(state: AppState, file: str) -> None:
    """Write the whole budget to FILE (`-` for stdout), one portable versioned file.

    JSON lines: a header with the format version and the schema revision, then each
    table's rows (amounts as strings such as "12.50"), then an end record with row counts
    and checksums. A name ending in `.gz` is gzip'd. `budget restore` reads it back into
    an empty database of either kind.

    \b
    Example:
      budget backup budget-2026-11-30.jsonl.gz
      budget backup - | gzip > budget.jsonl.gz
    """
    from budget_tracker.services.portable import (
        engine_for,
        open_backup_output,
        resolve_endpoint,
        write_backup,
    )

    settings = state.database.settings
    origin = resolve_endpoint(settings, None, label="DATABASE_URL")
    _require_file(origin.url, "database")
    engine = engine_for(settings, origin.url)
    try:
        with _progress("Backing up") as bar:
            if file == "-":
                out = open_backup_output(sys.stdout.buffer, compress=False)
                summary = write_backup(engine, out, progress=bar.advance, on_total=bar.total)
                out.flush()
            else:
                summary = _backup_to_file(Path(file), engine, bar)
    finally:
        engine.dispose()
    rows = sum(digest.rows for digest in summary.tables.values())
    where = "stdout" if file == "-" else file
    info(
        f"Backed up {rows:,} rows of {len(summary.tables)} tables "
        f"(schema revision {summary.revision}) to {where}"
    )


def _backup_to_file(path: Path, engine: Any, bar: _Progress) -> Any:
    """Write FILE as `export -o` writes its file (`output_file`): a regular file is
    replaced only when the backup is whole; a device or FIFO is written through."""
    from budget_tracker.cli.io import output_file
    from budget_tracker.services.portable import open_backup_output, write_backup

    with output_file(path, binary=True) as (raw, _through):
        out = open_backup_output(raw, compress=path.suffix == ".gz")
        summary = write_backup(engine, out, progress=bar.advance, on_total=bar.total)
        out.flush()
        if out is not raw:
            out.close()  # the gzip trailer; the file itself is closed by output_file
    return summary


@click.command("restore")
@click.argument("file", type=FilePath(dir_okay=False, allow_dash=True, path_type=str))
@click.pass_obj
def restore_command(state: AppState, file: str) -> None:
    """Load a backup FILE (`-` for stdin) into the database in use, which must be empty.

    A backup written at an older schema revision is loaded into that revision's schema
    and upgraded to this version's in the same transaction. All or nothing: a damaged or
    truncated file is refused and nothing is written. The restored tables are then read
    back and compared with the file.

    \b
    Example:
      budget restore budget-2026-11-30.jsonl.gz
    """
    from budget_tracker.errors import InvalidInput
    from budget_tracker.services.portable import (
        engine_for,
        require_verified,
        resolve_endpoint,
        restore_backup,
    )

    settings = state.database.settings
    destination = resolve_endpoint(settings, None, label="DATABASE_URL")
    try:
        stream = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}") from None
    engines = [engine_for(settings, destination.direct_url), engine_for(settings, destination.url)]
    label = "stdin" if file == "-" else file
    try:
        with _progress("Restoring") as bar:
            summary = restore_backup(
                stream,
                label,
                target_direct=engines[0],
                target_app=engines[1],
                progress=bar.advance,
                on_total=bar.total,
            )
    finally:
        if file != "-":
            stream.close()
        for engine in engines:
            engine.dispose()
    upgraded = f", upgraded to {summary.upgraded_to}" if summary.upgraded_to else ""
    if summary.already_there:
        click.echo(
            f"{destination.label} already holds this budget, the same as {label} "
            f"(schema revision {summary.revision}): nothing was written."
        )
    else:
        click.echo(
            f"Restored {label} (schema revision {summary.revision}{upgraded}) "
            f"into {destination.label}:"
        )
    _print_checks(summary.tables)
    require_verified(summary.tables)
    what = "row counts and checksums" if summary.upgraded_to is None else "row counts"
    click.echo(f"Verified: {what} of {len(summary.tables)} tables equal the backup's.")
