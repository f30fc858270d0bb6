"""Parameter types and shared options: every command validates input the same way.

Bad input fails in click with exit code 2 and a one-line message naming the value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

import click

from budget_tracker import rules
from budget_tracker.cli.state import today_in
from budget_tracker.money import parse_amount
from budget_tracker.services.budgets import add_months

F = TypeVar("F", bound=Callable[..., Any])


def listing_window(
    month: dt.date | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
    min_amount: Decimal | None,
    max_amount: Decimal | None,
) -> tuple[dt.date | None, dt.date | None]:
    """The day bounds of a listing's `--month` / `--from` / `--to`, with `--min`/`--max`
    checked against each other: the options `expenses` and `income` share."""
    from budget_tracker.services.budgets import date_range

    with options_checked():
        start, end = date_range(month, date_from, date_to)
    if min_amount is not None and max_amount is not None and min_amount > max_amount:
        raise click.BadParameter(
            f"--min {min_amount} is larger than --max {max_amount}", param_hint="'--min'"
        )
    return start, end


def listing_options(*, searched: str) -> Callable[[F], F]:
    """The options `expenses` and `income` share: a period (`--month`, or days `--from` and
    `--to`), `--search` in `searched`, amounts `--min` and `--max`, and `--limit`. The
    command checks how they combine with `listing_window`."""
    options = (
        click.option("--month", type=MONTH, help="Only this month (YYYY-MM)."),
        click.option("--from", "date_from", type=DATE, help="From this day (inclusive)."),
        click.option("--to", "date_to", type=DATE, help="Up to this day (inclusive)."),
        click.option("--search", type=DESCRIPTION, help=f"Text {searched} contains (any case)."),
        click.option("--min", "min_amount", type=AMOUNT, help="Smallest amount (inclusive)."),
        click.option("--max", "max_amount", type=AMOUNT, help="Largest amount (inclusive)."),
        click.option("--limit", type=COUNT, help="Show at most this many."),
    )

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@contextmanager
def options_checked() -> Iterator[None]:
    """Report a service's refusal of how options combine (`--month` with `--from`, a
    period that ends before it starts) as a usage error: usage line, hint, exit 2."""
    from budget_tracker.cli.wording import for_people
    from budget_tracker.errors import InvalidInput

    try:
        yield
    except InvalidInput as exc:
        raise click.UsageError(for_people(exc, click.get_current_context())) from None


def _refuse(
    param_type: click.ParamType[Any],
    exc: rules.RuleViolation,
    param: click.Parameter | None,
    ctx: click.Context | None,
) -> NoReturn:
    """A broken rule of `budget_tracker.rules` as click's one-line usage error (exit 2)."""
    param_type.fail(exc.reason, param, ctx)


class AmountType(click.ParamType[Decimal]):
    """A positive amount with at most two decimals (`12`, `12.5`, `12.50`)."""

    name = "amount"

    def __init__(self, *, allow_zero: bool = False) -> None:
        self.allow_zero = allow_zero

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Decimal:
        try:
            if isinstance(value, Decimal):
                return rules.check_amount(value, allow_zero=self.allow_zero)
            return parse_amount(str(value), allow_zero=self.allow_zero)
        except rules.RuleViolation as exc:
            _refuse(self, exc, param, ctx)


class IntType(click.ParamType[int]):
    """A positive whole number in ASCII digits: an id, or a count such as `--limit`."""

    name = "integer"

    def __init__(self, *, maximum: int = rules.ID_MAX) -> None:
        self.maximum = maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            if isinstance(value, int) and not isinstance(value, bool):
                return rules.check_int(value, field=self.name, maximum=self.maximum)
            return rules.parse_int(str(value), field=self.name, maximum=self.maximum)
        except rules.RuleViolation as exc:
            _refuse(self, exc, param, ctx)


class DateType(click.ParamType[dt.date]):
    """An ISO date `YYYY-MM-DD`, or `today` / `yesterday`."""

    name = "date"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.date:
        try:
            if isinstance(value, dt.date):
                return rules.check_date(value)
            text = str(value).strip(rules.ASCII_SPACE).lower()
            today = today_in(ctx)
            if text == "today":
                return rules.check_date(today)
            if text == "yesterday":
                return rules.check_date(today - dt.timedelta(days=1))
            return rules.parse_date(str(value))
        except rules.RuleViolation as exc:
            if "use YYYY-MM-DD" in exc.reason:
                self.fail(
                    f"{value!r} is not a date (use YYYY-MM-DD, today or yesterday)", param, ctx
                )
            _refuse(self, exc, param, ctx)


RELATIVE_MONTHS = {"last": -1, "this": 0, "next": 1}
"""Month words every month option accepts, as offsets from the current month."""


class MonthType(click.ParamType[dt.date]):
    """A month `YYYY-MM`, or `this`, `last` or `next` (month), as the date of its first day."""

    name = "month"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.date:
        try:
            if isinstance(value, dt.date):
                return rules.check_month(value)
            offset = RELATIVE_MONTHS.get(str(value).strip().lower())
            if offset is not None:
                return rules.check_month(add_months(today_in(ctx), offset))
            return rules.parse_month(str(value))
        except rules.RuleViolation as exc:
            _refuse(self, exc, param, ctx)


class ColorType(click.ParamType[str]):
    """A colour `#RRGGBB` (stored upper-case)."""

    name = "color"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return rules.check_color(str(value))
        except rules.RuleViolation as exc:
            _refuse(self, exc, param, ctx)


class TextType(click.ParamType[str]):
    """One line of text, trimmed and NFC-normalized; refused when empty (unless allowed),
    longer than `max_length`, or holding control or invisible formatting characters."""

    name = "text"

    def __init__(self, check: Callable[[str], str]) -> None:
        self.check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return self.check(str(value))
        except rules.RuleViolation as exc:
            _refuse(self, exc, param, ctx)


class EmailType(click.ParamType[str]):
    """An e-mail address, normalised to lower case."""

    name = "email"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return rules.check_email(str(value))
        except rules.RuleViolation as exc:
            _refuse(self, exc, param, ctx)


class FilePath(click.Path):
    """A file argument as `click.Path` checks it, refused when empty: the operating
    system reads an empty name as the current directory."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "":
            self.fail("the file name is empty", param, ctx)
        return super().convert(value, param, ctx)


AMOUNT = AmountType()
BUDGET_AMOUNT = AmountType(allow_zero=True)
ID = IntType()
COUNT = IntType(maximum=rules.COUNT_MAX)
DATE = DateType()
MONTH = MonthType()
COLOR = ColorType()
EMAIL = EmailType()
NAME = TextType(rules.check_name)
USER_NAME = TextType(rules.check_user_name)
DESCRIPTION = TextType(rules.check_description)


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


def entered_by_option(f: F) -> F:
    """`--entered-by EMAIL`: only rows that user entered (in a shared budget, a member)."""
    return click.option(
        "--entered-by",
        "entered_by",
        type=EMAIL,
        metavar="EMAIL",
        help="Only what the user with this e-mail entered (a shared budget's members).",
    )(f)
