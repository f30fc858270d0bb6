"""The budget of a category for a period, and the calendar of months budgets are kept in.

One vocabulary for every command:

* **budget** — what a category may spend in a period: its monthly budget plus budget
  transfers into it minus transfers out of it, month by month (summed over a range).
  A category with no monthly budget and no transfers has *no budget*: `None`, not zero.
* **spent** — the sum of its expenses in the period.
* **carried** — what a category that rolls over brings into a month from the months
  before (see "rollover" below); zero for a category that does not roll over.
* **available** — budget plus carried minus spent (negative when overspent; minus what
  was spent when there is no budget and nothing was carried).
* **over budget** — a category *with* a budget or a carried amount whose available amount
  is below zero. The add-expense warning, the transfer's funds check and the reports' `!`
  mark (`Figures.flagged`) use this one rule; spending in a category without either is
  *unbudgeted* (the reports mark it too, add-expense does not warn).
* **rollover** — a per-category setting over time (on or off from a month on, until the
  next change; off before the first). leftover(m) = budget(m) + transfers in(m) −
  transfers out(m) − spent(m) + carried(m), with budget 0 in a month without one, and
  negative when overspent; carried(M) = leftover(M−1) when rollover is on in month M−1,
  else 0. So carried(M) is the sum of budget + in − out − spent over the unbroken run of
  months with rollover on that ends with M−1: switching it off from month K leaves K with
  what was carried into it, and nothing leaves K or later; switching it on again from L
  starts L from nothing carried, and nothing from before the break comes back.

Months are `datetime.date`s on the first day of the month; periods are whole months.
This module imports neither click nor SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from budget_tracker.errors import InvalidInput, option

ZERO = Decimal("0.00")
PERCENT_PLACES = Decimal("0.1")


# --- months ------------------------------------------------------------------------------


def month_start(day: dt.date) -> dt.date:
    """The first day of `day`'s month."""
    return day.replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    """The first day of the month `count` months after (or before) `month`'s month."""
    index = month.year * 12 + month.month - 1 + count
    if not 0 < index // 12 <= 9999:
        raise InvalidInput(f"{month:%Y-%m} plus {count} months is outside the calendar")
    return dt.date(index // 12, index % 12 + 1, 1)


def month_span(day: dt.date) -> tuple[dt.date, dt.date]:
    """The first day of `day`'s month and the first day of the next month."""
    start = month_start(day)
    return start, add_months(start, 1)


def month_label(month: dt.date) -> str:
    """`YYYY-MM`, the way months are typed and printed."""
    return f"{month:%Y-%m}"


@dataclass(frozen=True)
class Period:
    """Whole months from `first` to `last` inclusive (both the first day of their month)."""

    first: dt.date
    last: dt.date

    @property
    def end(self) -> dt.date:
        """The first day after the period (exclusive bound for dates)."""
        return add_months(self.last, 1)

    @property
    def months(self) -> int:
        return (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1

    def month_starts(self) -> list[dt.date]:
        return [add_months(self.first, offset) for offset in range(self.months)]

    def contains(self, day: dt.date) -> bool:
        return self.first <= day < self.end

    @property
    def label(self) -> str:
        if self.months == 1:
            return self.first.strftime("%B %Y")
        return f"{self.first.strftime('%B %Y')} to {self.last.strftime('%B %Y')}"


def resolve_period(
    *,
    today: dt.date,
    month: dt.date | None = None,
    from_month: dt.date | None = None,
    to_month: dt.date | None = None,
    default_months: int = 1,
) -> Period:
    """The period named by `month` or `from_month`/`to_month` (the command line's
    `--month`, `--from` and `--to`), else a default.

    `to_month` defaults to the current month; `from_month` to `default_months - 1` months
    before it (the month itself for the category report, a year for the trend).
    """
    if month is not None:
        if from_month is not None or to_month is not None:
            raise InvalidInput(
                option("month")
                + " cannot be combined with "
                + option("from_month")
                + "/"
                + option("to_month")
            )
        first = month_start(month)
        return Period(first, first)
    last = month_start(to_month or today)
    first = month_start(from_month) if from_month else add_months(last, 1 - default_months)
    if first > last:
        raise InvalidInput(
            option("from_month")
            + f" {first:%Y-%m} is after "
            + option("to_month")
            + f" {last:%Y-%m}: the period would be empty"
        )
    return Period(first, last)


def date_range(
    month: dt.date | None, date_from: dt.date | None, date_to: dt.date | None
) -> tuple[dt.date | None, dt.date | None]:
    """Inclusive day bounds from `month` or `date_from`/`date_to` (days); either may be
    open."""
    if month is not None:
        if date_from is not None or date_to is not None:
            raise InvalidInput(
                "use either "
                + option("month")
                + " or "
                + option("date_from")
                + "/"
                + option("date_to")
                + ", not both"
            )
        start, following = month_span(month)
        return start, following - dt.timedelta(days=1)
    if date_from is not None and date_to is not None and date_from > date_to:
        raise InvalidInput(
            option("date_from")
            + f" {date_from.isoformat()} is after "
            + option("date_to")
            + f" {date_to.isoformat()}"
        )
    return date_from, date_to


# --- figures -----------------------------------------------------------------------------


def percent(part: Decimal, whole: Decimal | None) -> Decimal | None:
    """`part` as a percentage of `whole` to one decimal place (half up); None when
    there is no positive whole to divide by."""
    if whole is None or whole <= 0:
        return None
    return (part * 100 / whole).quantize(PERCENT_PLACES, rounding=ROUND_HALF_UP)


def budget_or_none(base: Decimal, transfers: Decimal, *, transferred: bool) -> Decimal | None:
    """A budget from its parts: None when there is no monthly budget and no transfer
    touched the category in the period (`transferred`)."""
    if base == 0 and not transferred:
        return None
    return base + transfers


@dataclass(frozen=True)
class Figures:
    """A category's (or a total's) budget, spending and availability for a period."""

    budget: Decimal | None
    """None: no budget in the period (never zero in place of "none")."""
    spent: Decimal
    carried: Decimal = field(default=ZERO, kw_only=True)
    """Carried into the period's first month (rollover); zero without rollover."""

    @property
    def funds(self) -> Decimal | None:
        """What the period may spend: budget plus carried; None with neither."""
        if self.budget is None and self.carried == 0:
            return None
        return (self.budget or ZERO) + self.carried

    @property
    def available(self) -> Decimal:
        """Budget plus carried minus spent; without either, minus what was spent."""
        return (self.funds or ZERO) - self.spent

    @property
    def has_budget(self) -> bool:
        return self.budget is not None

    @property
    def over_budget(self) -> bool:
        """The one over-budget rule: there is a budget or a carried amount, and less than
        nothing is available."""
        return self.funds is not None and self.available < 0

    @property
    def unbudgeted(self) -> bool:
        """Spending in a period with neither a budget nor a carried amount."""
        return self.funds is None and self.spent > 0

    @property
    def flagged(self) -> bool:
        """Marked `!` in reports (a category, a month, a cell of the month-by-month
        matrix, a total): over budget, or spending without a budget."""
        return self.over_budget or self.unbudgeted

    @property
    def percent_used(self) -> Decimal | None:
        return percent(self.spent, self.funds)

    @staticmethod
    def total(lines: Iterable[Figures]) -> Figures:
        """Several lines added up: the budgets that exist, and all spending. The total has
        no budget only when no line has one."""
        budget: Decimal | None = None
        spent = carried = ZERO
        for line in lines:
            if line.budget is not None:
                budget = (budget or ZERO) + line.budget
            spent += line.spent
            carried += line.carried
        return Figures(budget=budget, spent=spent, carried=carried)


# --- budget history ----------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetChange:
    """A recorded change of a category's monthly budget (see `models.CategoryBudget`)."""

    month: dt.date
    amount: Decimal
    one_month: bool = False


def standing_budget(opening: Decimal, changes: Iterable[BudgetChange], month: dt.date) -> Decimal:
    """The standing budget in force in `month`: the latest standing change on or before
    it, else the opening budget (one-month overrides left aside)."""
    latest: BudgetChange | None = None
    for change in changes:
        eligible = not change.one_month and change.month <= month
        if eligible and (latest is None or change.month > latest.month):
            latest = change
    return opening if latest is None else latest.amount


def budget_in_month(opening: Decimal, changes: Iterable[BudgetChange], month: dt.date) -> Decimal:
    """A category's monthly budget for `month`: its one-month override, else the standing
    budget in force (zero means no budget)."""
    changes = list(changes)
    for change in changes:
        if change.one_month and change.month == month:
            return change.amount
    return standing_budget(opening, changes, month)


def combined_history(
    first: tuple[Decimal, list[BudgetChange]], second: tuple[Decimal, list[BudgetChange]]
) -> tuple[Decimal, list[BudgetChange]]:
    """One category's opening budget and changes whose budget in every month is the sum
    of the two given categories' budgets in that month (what a merge keeps)."""
    (opening_a, changes_a), (opening_b, changes_b) = first, second
    standing_months = sorted(
        {change.month for change in [*changes_a, *changes_b] if not change.one_month}
    )
    override_months = sorted(
        {change.month for change in [*changes_a, *changes_b] if change.one_month}
    )
    combined = [
        BudgetChange(
            month,
            standing_budget(opening_a, changes_a, month)
            + standing_budget(opening_b, changes_b, month),
        )
        for month in standing_months
    ]
    combined += [
        BudgetChange(
            month,
            budget_in_month(opening_a, changes_a, month)
            + budget_in_month(opening_b, changes_b, month),
            one_month=True,
        )
        for month in override_months
    ]
    return opening_a + opening_b, combined


# --- rollover ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RolloverChange:
    """A recorded change of a category's rollover setting (see `models.CategoryRollover`)."""

    month: dt.date
    enabled: bool


def rollover_on(changes: Iterable[RolloverChange], month: dt.date) -> bool:
    """Whether the category rolls over in `month`: its latest change on or before it
    (off before the first change)."""
    latest: RolloverChange | None = None
    for change in changes:
        if change.month <= month and (latest is None or change.month > latest.month):
            latest = change
    return latest is not None and latest.enabled


def rollover_run(changes: Iterable[RolloverChange], last: dt.date) -> dt.date | None:
    """The first month of the unbroken run of months rolling over that ends with `last`;
    None when the category does not roll over in `last` (nothing is carried out of it)."""
    changes = list(changes)
    if not rollover_on(changes, last):
        return None
    offs = [change.month for change in changes if not change.enabled and change.month <= last]
    after = max(offs) if offs else None
    return min(
        change.month
        for change in changes
        if change.enabled and change.month <= last and (after is None or change.month > after)
    )
