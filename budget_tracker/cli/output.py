"""Output for people and for scripts: aligned tables, JSON and CSV.

Data goes to stdout, messages and warnings to stderr. Colour is used only when the stream
is a terminal and `NO_COLOR` is not set. Amounts are formatted from Decimal (two places),
and in JSON they are strings.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TextIO

import click

from budget_tracker.money import format_amount


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    align: str = "<"  # "<" left, ">" right


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def color_enabled(stream: TextIO | None = None) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return is_terminal(stream if stream is not None else sys.stdout)


def style(text: str, *, err: bool = False, **styles: Any) -> str:
    """`click.style` only when colour is on for the stream the text goes to."""
    if not color_enabled(sys.stderr if err else sys.stdout):
        return text
    return click.style(text, **styles)


def info(message: str) -> None:
    click.echo(message, err=True)


def warn(message: str) -> None:
    click.echo(style(f"Warning: {message}", err=True, fg="yellow"), err=True)


_JOINERS = frozenset("\u200c\u200d")


def printable(text: str) -> str:
    """Text safe to write to a terminal: control characters, line breaks, escape sequences
    and invisible formatting characters (bidi overrides, zero-width spaces) shown escaped
    (`\\x1b`, `\\n`, `\\u202e`), whatever was stored (an older import, another client).

    Spaces of any script and the joiners inside emoji sequences are kept as they are.
    """
    if text.isprintable():
        return text
    import unicodedata  # only text that is not plainly printable needs a closer look

    out = []
    for char in text:
        if char.isprintable() or char in _JOINERS or unicodedata.category(char) == "Zs":
            out.append(char)
        else:
            out.append(ascii(char)[1:-1])
    return "".join(out)


def display_width(text: str) -> int:
    """Columns `text` takes on a terminal: CJK and most emoji take two, combining marks none."""
    if text.isascii():
        return len(text)
    from wcwidth import wcswidth  # only tables with non-ASCII text need it

    width = wcswidth(text)
    return width if width >= 0 else len(text)


def terminal_width() -> int | None:
    """Columns a table may take: `COLUMNS` when set, else the terminal's width when stdout
    is a terminal; None (no limit) when the output goes to a file or a pipe."""
    import shutil

    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isascii() and columns.isdigit() and int(columns) > 0:
        return int(columns)
    if not is_terminal(sys.stdout):
        return None
    return shutil.get_terminal_size().columns


def pad(text: str, width: int, align: str) -> str:
    """`text` padded with spaces to `width` display columns, left ("<") or right (">")."""
    fill = " " * max(0, width - display_width(text))
    return fill + text if align == ">" else text + fill


def plain(value: Any) -> str:
    """A value as text for tables and CSV (amounts with two places, dates ISO)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format_amount(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def jsonable(value: Any) -> Any:
    """Amounts as strings (never floats), dates as ISO strings."""
    if isinstance(value, Decimal):
        return format_amount(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def dump_json(data: Any) -> str:
    import json  # only machine output needs it; the hot path prints a line of text

    return json.dumps(jsonable(data), ensure_ascii=False, indent=2)


# --- One JSON shape per entity --------------------------------------------------------
# Every command that prints an expense, a transfer, a category or a user in JSON builds it
# here, so the keys and value types are the same everywhere: ids are numbers, amounts
# strings with two decimals, dates and months ISO strings, absent values null.


def expense_json(row: Any) -> dict[str, Any]:
    """An expense (an `ExpenseRow`)."""
    return {
        "id": row.id,
        "date": row.date.isoformat(),
        "category": row.category,
        "amount": format_amount(row.amount),
        "description": row.description,
        "entered_by": row.entered_by,
    }


def income_json(row: Any) -> dict[str, Any]:
    """An income entry (an `IncomeRow`)."""
    return {
        "id": row.id,
        "date": row.date.isoformat(),
        "amount": format_amount(row.amount),
        "source": row.source,
        "entered_by": row.entered_by,
    }


def transfer_json(record: Any) -> dict[str, Any]:
    """A budget transfer ledger entry (a `TransferRecord`)."""
    return {
        "id": record.id,
        "month": f"{record.month:%Y-%m}",
        "from": record.source,
        "to": record.target,
        "amount": format_amount(record.amount),
        "note": record.note,
        "reverses": record.reverses_id,
        "undone_by": record.undone_by_id,
        "created_at": record.created_at.replace(microsecond=0).isoformat(),
        "entered_by": record.entered_by,
    }


ENTERED_BY = Column("entered_by", "Entered by")
"""Who entered a row: the last column of the expense, income and transfer listings."""


def entered_by_columns(
    columns: Sequence[Column], rows: Iterable[Any], *, owner_id: int, fmt: str
) -> tuple[Column, ...]:
    """`columns` and `ENTERED_BY`. Always in CSV, a fixed schema for scripts (as the key
    in JSON); in a table only when a row in view (`ExpenseRow`, `IncomeRow`,
    `TransferRecord`, `TopExpense`) was entered by someone other than the budget's own
    user `owner_id`, so a private budget's table does not repeat its owner on each line."""
    if fmt == "table" and all(row.entered_by_id == owner_id for row in rows):
        return tuple(columns)
    return (*columns, ENTERED_BY)


def entered_by_cell(row: Any, fmt: str) -> str | None:
    """The `ENTERED_BY` cell of `row`: the e-mail of who entered it; in a table,
    `(user ID)` for a person this connection may not see (in CSV empty, in JSON null)."""
    email: str | None = row.entered_by
    if email is None and fmt == "table":
        return f"(user {row.entered_by_id})"
    return email


def category_json(category: Any) -> dict[str, Any]:
    """A category: its id, name, colour (or null) and monthly budget."""
    return {
        "id": category.id,
        "name": category.name,
        "color": category.color,
        "monthly_budget": format_amount(category.monthly_budget),
    }


def user_json(user: Any) -> dict[str, Any]:
    """A user: id, e-mail, name, and whether commands act for it when none is named."""
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "default": bool(getattr(user, "default", getattr(user, "is_default", False))),
    }


def print_json(data: Any) -> None:
    click.echo(dump_json(data))


def result_format_option(f: Any) -> Any:
    """`--format text|json` for a command that creates or changes one row."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="json prints the row as `budget` prints it everywhere (for scripts).",
    )(f)


def _cells(
    rows: Sequence[dict[str, Any]], columns: Sequence[Column], footer: dict[str, Any] | None
) -> tuple[list[str], list[list[str]], list[str] | None]:
    header = [column.title for column in columns]
    body = [[printable(plain(row.get(column.key))) for column in columns] for row in rows]
    tail = [printable(plain(footer.get(column.key))) for column in columns] if footer else None
    return header, body, tail


def _widths(header: list[str], body: list[list[str]], tail: list[str] | None) -> list[int]:
    return [
        max(display_width(cell) for cell in cells)
        for cells in zip(header, *body, *([tail] if tail else []), strict=False)
    ]


def column_widths(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    *,
    footer: dict[str, Any] | None = None,
) -> list[int]:
    """The display width of each column `render_table` would print; the table is as wide
    as their sum plus two spaces between columns (its rules are)."""
    return _widths(*_cells(rows, columns, footer))


def render_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    *,
    footer: dict[str, Any] | None = None,
    styles: Sequence[dict[str, Any] | None] | None = None,
) -> str:
    """Aligned columns with a header rule; `footer` is a totals row under a second rule."""
    header, body, tail = _cells(rows, columns, footer)
    widths = _widths(header, body, tail)

    def line(cells: Sequence[str]) -> str:
        parts = [
            pad(cell, width, column.align)
            for cell, column, width in zip(cells, columns, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    out = [line(header), rule]
    for index, cells in enumerate(body):
        text = line(cells)
        row_style = styles[index] if styles else None
        out.append(style(text, **row_style) if row_style else text)
    if tail is not None:
        out.extend([rule, line(tail)])
    return "\n".join(out)


def write_csv(rows: Iterable[dict[str, Any]], columns: Sequence[Column], stream: TextIO) -> None:
    import csv  # only machine output needs it; the hot path prints a line of text

    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([column.key for column in columns])
    for row in rows:
        writer.writerow([plain(row.get(column.key)) for column in columns])


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    fmt: str,
    *,
    footer: dict[str, Any] | None = None,
    json_data: Any = None,
    empty_message: str = "nothing to show",
) -> None:
    """Print a listing in the chosen format. JSON prints `json_data` when given, else rows."""
    if fmt == "json":
        click.echo(dump_json(json_data if json_data is not None else list(rows)))
    elif fmt == "csv":
        write_csv(rows, columns, sys.stdout)
        sys.stdout.flush()
    elif not rows:
        info(empty_message)
    else:
        click.echo(render_table(rows, columns, footer=footer))


def counted(number: int, noun: str) -> str:
    """`1 expense`, `2 expenses`: a count with its noun (plural by adding an s)."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def announce_first_run(first_run: Any) -> None:
    """Say once, on stderr, what the zero-setup first run created (a `FirstRun` or None)."""
    if first_run is None:
        return
    info(
        f"Welcome! Created local user {first_run.user.email} with categories "
        f"{', '.join(first_run.categories)} (set budgets with `budget category set-budget`)."
    )
