"""Output for terminals: stored text is never written raw, and tables align by display
width (CJK and emoji take two columns)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from budget_tracker.cli.output import (
    Column,
    column_widths,
    display_width,
    printable,
    render_table,
    terminal_width,
)
from tests.cli_helpers import execute, first_run, ok
from tests.conftest import Backend


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("evil\x1b[2Jclear", "evil\\x1b[2Jclear"),
        ("two\nlines", "two\\nlines"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("bell\x07", "bell\\x07"),
        ("no\u00a0break", "no\u00a0break"),
        ("👩\u200d💻", "👩\u200d💻"),
        ("Café 日本", "Café 日本"),
    ],
)
def test_printable(stored: str, shown: str) -> None:
    assert printable(stored) == shown


def test_display_width() -> None:
    assert display_width("abc") == 3
    assert display_width("日本") == 4
    assert display_width("🍕") == 2
    assert display_width("Cafe\u0301") == 4


def test_table_aligns_by_display_width() -> None:
    columns = [Column("name", "Name"), Column("amount", "Amount", ">")]
    rows = [
        {"name": "日本料理", "amount": Decimal("12.50")},
        {"name": "Pizza 🍕", "amount": Decimal("3.00")},
        {"name": "Cafe\u0301", "amount": Decimal("100.00")},
    ]
    lines = render_table(rows, columns).splitlines()
    assert lines == [
        "Name      Amount",
        "--------  ------",
        "日本料理   12.50",
        "Pizza 🍕    3.00",
        "Cafe\u0301      100.00",
    ]
    assert len({display_width(line) for line in lines}) == 1


def test_column_widths_are_the_rendered_tables() -> None:
    columns = [Column("name", "Name"), Column("amount", "Amount", ">")]
    rows = [{"name": "東京", "amount": Decimal("12.50")}, {"name": "x", "amount": Decimal(1)}]
    footer = {"name": "Total of all", "amount": Decimal("13.50")}
    widths = column_widths(rows, columns, footer=footer)
    assert widths == [12, 6]
    table = render_table(rows, columns, footer=footer)
    assert max(display_width(line) for line in table.splitlines()) == sum(widths) + 2


def test_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert terminal_width() == 100
    # Not a number: ignored; output that is not a terminal (pytest's) has no limit.
    for ignored in ("wide", "0", "-5", "１００"):
        monkeypatch.setenv("COLUMNS", ignored)
        assert terminal_width() is None
    monkeypatch.delenv("COLUMNS")
    assert terminal_width() is None


def test_stored_escape_sequences_are_shown_escaped(backend: Backend) -> None:
    first_run(backend)
    # Written by another client (or an import from before the rules): not through budget.
    execute(
        backend,
        "INSERT INTO expenses (user_id, category_id, amount, spent_on, description) "
        "SELECT u.id, c.id, 100, '2026-03-01', :text FROM users u JOIN categories c "
        "ON c.user_id = u.id WHERE c.name = 'Food'",
        text="pwned\x1b]0;title\x07\x1b[2J\nline\u202e",
    )
    result = ok(backend.invoke(["expenses", "--month", "2026-03"]))
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "pwned\\x1b]0;title\\x07\\x1b[2J\\nline\\u202e" in result.stdout
    deleted = ok(backend.invoke(["delete-expense", "1", "--yes"]))
    assert "\x1b" not in deleted.stdout
