"""Domain errors' wording: options named by keyword for a library caller, spelled by
whoever renders it (the command line: flags), and text from users taken literally."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from budget_tracker.errors import (
    EXIT_BAD_INPUT,
    InsufficientBudget,
    InvalidInput,
    NotFound,
    Option,
    UnknownUser,
    UserNotChosen,
    Wording,
    option,
)


def flags(keyword: str) -> str:
    return "--" + keyword.replace("_", "-")


def test_options_read_as_keywords_and_render_as_the_caller_spells_them() -> None:
    text = option("month") + " cannot be combined with " + option("date_from") + "/to"
    assert str(text) == "month cannot be combined with date_from/to"
    assert text.render(flags) == "--month cannot be combined with --date-from/to"
    assert text.parts == (Option("month"), " cannot be combined with ", Option("date_from"), "/to")


def test_text_from_users_is_never_a_placeholder() -> None:
    cell = "'{date_format}' {0} %s"
    text = f"{cell} is not a date (use " + option("date_format") + ")"
    assert text.render(flags) == "'{date_format}' {0} %s is not a date (use --date-format)"


def test_join_keeps_the_options() -> None:
    lines = Wording.join("\n", ["header", "  " + option("skip") + " 3", "  and 2 more"])
    assert lines.render(flags) == "header\n  --skip 3\n  and 2 more"
    assert Wording.join(", ", [option("columns"), option("no_header")]).render(flags) == (
        "--columns, --no-header"
    )
    assert Wording.of("a", "", Wording.of("b")) == Wording(("ab",))


def test_an_error_reads_with_keywords_and_keeps_its_wording() -> None:
    error = InvalidInput("use " + option("decimal_comma"))
    assert str(error) == "use decimal_comma" and error.args == ("use decimal_comma",)
    assert error.wording.render(flags) == "use --decimal-comma"
    plain = NotFound("no expense 3")
    assert str(plain) == "no expense 3" and plain.wording == Wording(("no expense 3",))


def test_errors_that_call_for_another_command_carry_their_data() -> None:
    unknown = UnknownUser("who@example.com")
    assert isinstance(unknown, NotFound)
    assert (str(unknown), unknown.email) == ("no user 'who@example.com'", "who@example.com")
    several = UserNotChosen()
    assert isinstance(several, InvalidInput) and several.exit_code == EXIT_BAD_INPUT
    assert str(several) == "there are several users: choose one with user_email"
    short = InsufficientBudget("Food", Decimal("3.00"), Decimal("5.00"), dt.date(2026, 3, 1))
    assert str(short) == "Food has only 3.00 available for 2026-03; cannot move 5.00"
