"""The input rules (`budget_tracker.rules`) and every layer that must hold them: the click
parameter types, the services called directly, and the importer."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from budget_tracker import rules
from budget_tracker.errors import EXIT_BAD_INPUT, InvalidInput
from budget_tracker.services.budgets import add_months
from budget_tracker.services.categories import add_category, rename_category
from budget_tracker.services.expenses import add_expense, delete_expense
from budget_tracker.services.income import add_income, delete_income, edit_income
from budget_tracker.services.transfers import transfer_budget
from budget_tracker.services.users import add_user
from tests.cli_helpers import first_run, ok
from tests.conftest import Backend

NBSP = "\u00a0"
LOOKALIKE_DIGITS = ["١٢", "１２", "𝟏𝟐", f"12{NBSP}", f"{NBSP}12", "1_2", "+12", "12\u200b"]


# --- the module on its own ------------------------------------------------------------------


def test_the_rules_module_is_light() -> None:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(rules))
    imported = {
        ((node.module or "") if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "datetime", "re", "unicodedata", "decimal", "budget_tracker"}


@pytest.mark.parametrize("text", LOOKALIKE_DIGITS)
def test_ids_counts_dates_and_months_take_ascii_digits_only(text: str) -> None:
    with pytest.raises(rules.RuleViolation):
        rules.parse_int(text, field="id")
    with pytest.raises(rules.RuleViolation):
        rules.parse_date(f"2026-03-{text}")
    with pytest.raises(rules.RuleViolation):
        rules.parse_month(f"2026-{text}")


def test_integers_past_64_bits_are_refused_cleanly() -> None:
    assert rules.parse_int(str(2**63 - 1), field="id") == 2**63 - 1
    for text in (str(2**63), str(2**64), "9" * 5000):
        with pytest.raises(rules.RuleViolation, match="larger than the maximum"):
            rules.parse_int(text, field="id")
    with pytest.raises(rules.RuleViolation, match="not positive"):
        rules.parse_int("0", field="id")
    with pytest.raises(rules.RuleViolation):
        rules.check_id(2**63)


@pytest.mark.parametrize(
    ("text", "ok_"),
    [
        ("1900-01-01", True),
        ("2999-12-31", True),
        ("9999-12-31", False),
        ("0001-01-01", False),
        ("1899-12-31", False),
        ("3000-01-01", False),
    ],
)
def test_date_range(text: str, ok_: bool) -> None:
    if ok_:
        assert rules.parse_date(text) == dt.date.fromisoformat(text)
    else:
        with pytest.raises(rules.RuleViolation, match="outside the supported dates"):
            rules.parse_date(text)


@pytest.mark.parametrize("text", ["9999-12", "0001-05", "0000-01", "1899-12", "3000-01"])
def test_month_range(text: str) -> None:
    with pytest.raises(rules.RuleViolation):
        rules.parse_month(text)


def test_month_arithmetic_stays_inside_the_supported_range() -> None:
    # A year back from the first month and a month on from the last are still dates.
    assert add_months(rules.MONTH_MAX, 1) == dt.date(3000, 1, 1)
    assert add_months(rules.MONTH_MIN, -11) == dt.date(1899, 2, 1)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Lunch\nwith Ana", "line break (U+000A)"),
        ("Lunch\r", None),  # trimmed at the end: fine
        ("a\tb", "control character (U+0009)"),
        ("evil\x1b[31mred", "control character (U+001B)"),
        ("zero\u200bwidth", "invisible formatting character (U+200B)"),
        ("bidi\u202eoverride", "invisible formatting character (U+202E)"),
        ("\ufeffbom", "invisible formatting character (U+FEFF)"),
        ("para\u2029sep", "line break (U+2029)"),
        ("bad\udce9bytes", "not UTF-8"),
        ("\u200dleading joiner", "U+200D"),
    ],
)
def test_text_refuses_control_and_invisible_characters(text: str, why: str | None) -> None:
    if why is None:
        assert rules.check_description(text) == text.strip()
        return
    with pytest.raises(rules.RuleViolation, match=re.escape(why)):
        rules.check_description(text)
    with pytest.raises(rules.RuleViolation):
        rules.check_name(text)


def test_text_is_nfc_and_emoji_sequences_are_text() -> None:
    decomposed = "Cafe\u0301"
    assert rules.check_name(decomposed) == "Caf\u00e9"
    for text in ("👩‍💻 dev", "👨‍👩‍👧", "🇩🇪", "नमस्‍ते", "quotes ' \" ; DROP TABLE"):
        assert rules.check_description(text) == text


def test_text_lengths() -> None:
    assert rules.check_name("n" * 50) == "n" * 50
    with pytest.raises(rules.RuleViolation, match="51 characters long; the limit is 50"):
        rules.check_name("n" * 51)
    with pytest.raises(rules.RuleViolation, match="must not be empty"):
        rules.check_name("   ")
    assert rules.check_description("") == ""
    with pytest.raises(rules.RuleViolation, match="201 characters long; the limit is 200"):
        rules.check_description("d" * 201)
    # NFKC can lengthen a name 18-fold: its identity key has a limit of its own.
    with pytest.raises(rules.RuleViolation, match="too long once normalized"):
        rules.check_name("\ufdfa" * 20)


def test_name_key_is_nfkc_casefolded() -> None:
    assert rules.name_key("Ｆｏｏｄ") == rules.name_key("food") == rules.name_key(" FOOD ")
    assert rules.name_key("Straße") == rules.name_key("STRASSE")
    assert rules.name_key(f"Eating{NBSP}Out") == rules.name_key("eating   out")


@pytest.mark.parametrize("text", ["#zzzzzz", "#12345", "#1234567", "123456", "#１２３４５６"])
def test_colour_is_ascii_hex(text: str) -> None:
    with pytest.raises(rules.RuleViolation, match="is not a colour"):
        rules.check_color(text)


def test_colour_is_stored_upper_case() -> None:
    assert rules.check_color(" #a1b2c3 ") == "#A1B2C3"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (Decimal("0"), "is zero"),
        (Decimal("-1"), "is negative"),
        (Decimal("12.345"), "more than two decimal places"),
        (Decimal("100000000"), "larger than the maximum"),
        (Decimal("1E+30"), "larger than the maximum"),
        (Decimal("NaN"), "not an amount"),
        (Decimal("Infinity"), "not an amount"),
    ],
)
def test_amount_rule(value: Decimal, why: str) -> None:
    with pytest.raises(rules.AmountError, match=why):
        rules.check_amount(value)


def test_rule_violations_carry_data() -> None:
    with pytest.raises(rules.RuleViolation) as caught:
        rules.check_name("n" * 60)
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert error.exit_code == EXIT_BAD_INPUT
    assert (error.field, error.value) == ("category name", "n" * 60)
    assert str(error) == "category name is 60 characters long; the limit is 50"


# --- the command line -----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["١", "１", "𝟏", f"1{NBSP}"])
def test_delete_expense_with_lookalike_digit_deletes_nothing(backend: Backend, text: str) -> None:
    ok(backend.invoke(["add-expense", "12", "Food"]))
    before = backend.snapshot()
    result = backend.invoke(["delete-expense", text, "--yes"])
    assert result.exit_code == 2
    assert (
        result.stderr == f"Error: Invalid value for 'ID': {text!r} is not a positive whole number\n"
    )
    assert backend.snapshot() == before


@pytest.mark.parametrize("text", ["١٢", "１２", "𝟏𝟐", f"12{NBSP}"])
def test_amounts_take_ascii_digits_only(backend: Backend, text: str) -> None:
    first_run(backend)
    before = backend.snapshot()
    result = backend.invoke(["add-expense", text, "Food"])
    assert result.exit_code == 2, result.stdout
    assert result.stderr.count("\n") == 1
    assert backend.snapshot() == before


@pytest.mark.parametrize(
    "args",
    [
        ["delete-expense", str(2**64), "--yes"],
        ["edit-expense", str(2**63), "--amount", "1"],
        ["expenses", "--limit", str(2**70)],
        ["report", "--top", str(2**64)],
        ["transfer", "--undo", str(2**64)],
    ],
)
def test_integers_past_64_bits_are_one_line(backend: Backend, args: list[str]) -> None:
    first_run(backend)
    result = backend.invoke(args)
    assert result.exit_code == 2
    assert "larger than the maximum of 9223372036854775807" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["add-expense", "1", "Food", "--date", "9999-12-31"],
        ["add-expense", "1", "Food", "--date", "0001-01-01"],
        ["edit-expense", "1", "--date", "9999-12-31"],
        ["expenses", "--month", "9999-12"],
        ["expenses", "--from", "0001-01-01"],
        ["expenses", "--to", "9999-12-31"],
        ["report", "--month", "9999-12"],
        ["report", "--to", "0001-05"],
        ["report", "--by", "month", "--to", "0001-05"],
        ["report", "--from", "9999-12"],
        ["category", "list", "--month", "9999-12"],
        ["transfer", "1", "--from", "Food", "--to", "Transport", "--month", "9999-12"],
        ["transfers", "--month", "0001-01"],
        ["export", "--from", "0001-01-01"],
        ["export", "--to", "9999-12-31"],
    ],
)
def test_dates_and_months_at_the_edges_are_one_line(backend: Backend, args: list[str]) -> None:
    ok(backend.invoke(["add-expense", "1", "Food"]))
    before = backend.snapshot()
    result = backend.invoke(args)
    assert result.exit_code == 2, result.stdout
    assert "outside the supported" in result.stderr
    assert result.stderr.count("\n") == 1
    assert backend.snapshot() == before


def test_fullwidth_name_is_the_same_category(backend: Backend) -> None:
    first_run(backend)
    result = backend.invoke(["category", "add", "Ｆｏｏｄ"])
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    ok(backend.invoke(["add-expense", "3", "ＦＯＯＤ"]))
    assert backend.scalar("SELECT count(*) FROM expenses") == 1


@pytest.mark.parametrize("text", ["Lunch\nSECOND LINE", "evil\x1b[2J", "rtl\u202eevil"])
def test_control_characters_refused_on_the_command_line(backend: Backend, text: str) -> None:
    first_run(backend)
    before = backend.snapshot()
    for args in (["add-expense", "1", "Food", text], ["category", "add", text]):
        result = backend.invoke(args)
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1
    assert backend.snapshot() == before


# --- the services called directly -----------------------------------------------------------


def _service(backend: Backend) -> Session:
    return backend.database.sessions()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda s: add_category(
                s,
                user_email=None,
                name="n" * 60,
                monthly_budget=Decimal(0),
                color=None,
                from_month=dt.date(2026, 1, 1),
            ),
            "category name is 60 characters long; the limit is 50",
        ),
        (
            lambda s: add_category(
                s,
                user_email=None,
                name="Fine",
                monthly_budget=Decimal(0),
                color="#zzzzzz",
                from_month=dt.date(2026, 1, 1),
            ),
            "'#zzzzzz' is not a colour (use #RRGGBB)",
        ),
        (
            lambda s: add_category(
                s,
                user_email=None,
                name="Fine",
                monthly_budget=Decimal("-1"),
                color=None,
                from_month=dt.date(2026, 1, 1),
            ),
            "'-1' is negative; amounts must be positive",
        ),
        (
            lambda s: rename_category(s, user_email=None, name="Food", new_name="a\nb"),
            "'a\\nb' contains a line break (U+000A)",
        ),
        (
            lambda s: add_expense(
                s,
                user_email=None,
                category="Food",
                amount=Decimal("0"),
                spent_on=dt.date(2026, 1, 1),
                description="",
                idempotency_key=None,
            ),
            "'0' is zero; amounts must be positive",
        ),
        (
            lambda s: add_expense(
                s,
                user_email=None,
                category="Food",
                amount=Decimal("1"),
                spent_on=dt.date(2026, 1, 1),
                description="d" * 300,
                idempotency_key=None,
            ),
            "description is 300 characters long; the limit is 200",
        ),
        (
            lambda s: add_expense(
                s,
                user_email=None,
                category="Food",
                amount=Decimal("1"),
                spent_on=dt.date(9999, 12, 31),
                description="",
                idempotency_key=None,
            ),
            "'9999-12-31' is outside the supported dates 1900-01-01 to 2999-12-31",
        ),
        (
            lambda s: delete_expense(s, user_email=None, expense_id=2**64),
            "'18446744073709551616' is larger than the maximum of 9223372036854775807",
        ),
        (
            lambda s: add_user(s, email="not-an-address", name="X"),
            "'not-an-address' is not an e-mail address",
        ),
        (
            lambda s: transfer_budget(
                s,
                user_email=None,
                source="Food",
                target="Transport",
                amount=Decimal("100000000"),
                month=dt.date(2026, 1, 1),
                allow_overdraw=True,
            ),
            "'100000000' is larger than the maximum of 99999999.99",
        ),
        (
            lambda s: add_income(
                s,
                user_email=None,
                amount=Decimal("100000000"),
                received_on=dt.date(2026, 1, 1),
                source="",
                idempotency_key=None,
            ),
            "'100000000' is larger than the maximum of 99999999.99",
        ),
        (
            lambda s: add_income(
                s,
                user_email=None,
                amount=Decimal("1"),
                received_on=dt.date(2026, 1, 1),
                source="s" * 300,
                idempotency_key=None,
            ),
            "source is 300 characters long; the limit is 200",
        ),
        (
            lambda s: edit_income(s, user_email=None, income_id=1, source="pay\u202eday"),
            "'pay\\u202eday' contains an invisible formatting character (U+202E)",
        ),
        (
            lambda s: delete_income(s, user_email=None, income_id=2**64),
            "'18446744073709551616' is larger than the maximum of 9223372036854775807",
        ),
    ],
)
def test_services_hold_the_rules(
    backend: Backend, call: Callable[[Session], object], message: str
) -> None:
    first_run(backend)
    before = backend.snapshot()
    with _service(backend) as session, session.begin(), pytest.raises(InvalidInput) as caught:
        call(session)
    assert str(caught.value) == message
    assert backend.snapshot() == before


# --- the importer ---------------------------------------------------------------------------


def test_import_refuses_lookalike_digits_and_control_characters(
    backend: Backend, tmp_path: Path
) -> None:
    first_run(backend)
    csv_file = tmp_path / "odd.csv"
    csv_file.write_text(
        "date,amount,category,description\n"
        "2026-03-01,１２,Food,full-width amount\n"
        "2026-03-0١,12,Food,arabic digit in the date\n"
        "2026-03-01,12,Food,two\x1blines\n"
        "2026-03-01,12,Fo\u200bod,zero width in the category\n"
        "9999-12-31,12,Food,far future\n",
        encoding="utf-8",
    )
    before = backend.snapshot()
    result = backend.invoke(["import", str(csv_file)])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1:] == [
        "  line 2, column amount: '１２' is not an amount (use digits, e.g. 12.50)",
        "  line 3, column date: '2026-03-0١' is not a date (use YYYY-MM-DD or --date-format)",
        # (A quoted line break is a multi-line description, which an import joins.)
        "  line 4, column description: 'two\\x1blines' contains a control character (U+001B)",
        "  line 5, column category: 'Fo\\u200bod' contains an invisible formatting character "
        "(U+200B)",
        "  line 6, column date: '9999-12-31' is outside the supported dates 1900-01-01 to "
        "2999-12-31",
    ]
    assert backend.snapshot() == before


def test_import_date_format_takes_ascii_digits_only(backend: Backend, tmp_path: Path) -> None:
    first_run(backend)
    csv_file = tmp_path / "odd.csv"
    csv_file.write_text(
        "date,amount,category,description\n٠١/٠٣/٢٠٢٦,12,Food,x\n", encoding="utf-8"
    )
    result = backend.invoke(["import", str(csv_file), "--date-format", "%d/%m/%Y"])
    assert result.exit_code == 2
    assert "is not a date in the format" in result.stderr
