"""Parameter types and shared options: every command validates input the same way.

Bad input fails in click with exit code 2 and a one-line message naming the value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

import click

from budget_tracker.money import AmountError, parse_amount

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def options_checked() -> Iterator[None]:
    """Report a service's refusal of how options combine (`--month` with `--from`, a
    period that ends before it starts) as a usage error: usage line, hint, exit 2."""
    from budget_tracker.errors import InvalidInput

    try:
        yield
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from None


class AmountType(click.ParamType[Decimal]):
    """A positive amount with at most two decimals (`12`, `12.5`, `12.50`)."""

    name = "amount"

    def __init__(self, *, allow_zero: bool = False) -> None:
        self.allow_zero = allow_zero

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            return parse_amount(str(value), allow_zero=self.allow_zero)
        except AmountError as exc:
            self.fail(str(exc), param, ctx)


class DateType(click.ParamType[dt.date]):
    """An ISO date `YYYY-MM-DD`, or `today` / `yesterday`."""

    name = "date"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.date:
        if isinstance(value, dt.date):
            return value
        text = str(value).strip().lower()
        today = dt.date.today()
        if text == "today":
            return today
        if text == "yesterday":
            return today - dt.timedelta(days=1)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            self.fail(f"{value!r} is not a date (use YYYY-MM-DD, today or yesterday)", param, ctx)
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is not a real date", param, ctx)


class MonthType(click.ParamType[dt.date]):
    """A month `YYYY-MM`, returned as the date of its first day."""

    name = "month"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.date:
        if isinstance(value, dt.date):
            return value.replace(day=1)
        text = str(value).strip()
        match = re.fullmatch(r"(\d{4})-(\d{2})", text)
        if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
            self.fail(f"{value!r} is not a month (use YYYY-MM)", param, ctx)
        return dt.date(int(match.group(1)), int(match.group(2)), 1)


class ColorType(click.ParamType[str]):
    """A colour `#RRGGBB` (stored upper-case)."""

    name = "color"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", text):
            self.fail(f"{value!r} is not a colour (use #RRGGBB)", param, ctx)
        return text.upper()


class TextType(click.ParamType[str]):
    """Free text, trimmed, refused when empty (unless allowed) or longer than `max_length`."""

    name = "text"

    def __init__(self, max_length: int, *, allow_empty: bool = False) -> None:
        self.max_length = max_length
        self.allow_empty = allow_empty

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if not text and not self.allow_empty:
            self.fail("must not be empty", param, ctx)
        if len(text) > self.max_length:
            self.fail(f"is {len(text)} characters long; the limit is {self.max_length}", param, ctx)
        return text


class EmailType(click.ParamType[str]):
    """An e-mail address, normalised to lower case."""

    name = "email"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip().lower()
        if not re.fullmatch(r"[^@\s]+@[^@\s]+", text) or len(text) > 254:
            self.fail(f"{value!r} is not an e-mail address", param, ctx)
        return text


AMOUNT = AmountType()
BUDGET_AMOUNT = AmountType(allow_zero=True)
DATE = DateType()
MONTH = MonthType()
COLOR = ColorType()
EMAIL = EmailType()
NAME = TextType(50)
DESCRIPTION = TextType(200, allow_empty=True)


def user_option(f: F) -> F:
    """`--user EMAIL` (or BUDGET_USER): whose data a command reads and writes."""
    return click.option(
        "--user",
        "user_email",
        type=EMAIL,
        envvar="BUDGET_USER",
        show_envvar=True,
        help="Act for this user (needed only when there are several).",
    )(f)


def format_option(f: F) -> F:
    """`--format table|json|csv`: human output by default, machine formats for scripts."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json", "csv"]),
        default="table",
        show_default=True,
        help="Output format; json and csv are for scripts (amounts as strings).",
    )(f)


ID_MAX = 2**63 - 1
"""The largest id either database stores (BIGINT); larger numbers are bad input, not a
driver overflow."""


class PositiveInt(click.IntRange):
    """An id or a count: 1 or more, and at most `ID_MAX`."""

    def __init__(self) -> None:
        super().__init__(min=1)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if number > ID_MAX:
            self.fail(f"{number} is too large (at most {ID_MAX})", param, ctx)
        return number


ROW_ID = PositiveInt()
COUNT = PositiveInt()
