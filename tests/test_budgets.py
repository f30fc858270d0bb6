"""The budget vocabulary and month arithmetic of `services.budgets` (no database)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from budget_tracker.errors import InvalidInput
from budget_tracker.services.budgets import (
    Figures,
    Period,
    add_months,
    budget_or_none,
    date_range,
    month_span,
    resolve_period,
)

D = Decimal


def test_month_arithmetic_crosses_years_and_leap_days() -> None:
    assert add_months(dt.date(2027, 12, 31), 1) == dt.date(2028, 1, 1)
    assert add_months(dt.date(2028, 1, 15), -13) == dt.date(2026, 12, 1)
    assert month_span(dt.date(2028, 2, 29)) == (dt.date(2028, 2, 1), dt.date(2028, 3, 1))
    assert Period(dt.date(2027, 11, 1), dt.date(2028, 2, 1)).months == 4
    with pytest.raises(InvalidInput):
        add_months(dt.date(9999, 12, 1), 1)


def test_periods_and_day_ranges_refuse_empty_ranges() -> None:
    today = dt.date(2028, 3, 9)
    assert resolve_period(today=today, default_months=12) == Period(
        dt.date(2027, 4, 1), dt.date(2028, 3, 1)
    )
    with pytest.raises(InvalidInput, match="is after to_month"):
        resolve_period(today=today, from_month=dt.date(2028, 4, 1))
    with pytest.raises(InvalidInput, match="cannot be combined"):
        resolve_period(today=today, month=today, to_month=today)
    assert date_range(dt.date(2028, 2, 10), None, None) == (
        dt.date(2028, 2, 1),
        dt.date(2028, 2, 29),
    )
    with pytest.raises(InvalidInput, match="is after date_to"):
        date_range(None, dt.date(2028, 2, 2), dt.date(2028, 2, 1))
    with pytest.raises(InvalidInput, match="not both"):
        date_range(today, today, None)


def test_no_budget_is_none_and_never_over_budget() -> None:
    assert budget_or_none(D("0.00"), D("0.00"), transferred=False) is None
    assert budget_or_none(D("0.00"), D("0.00"), transferred=True) == D("0.00")
    unbudgeted = Figures(budget=None, spent=D("30.00"))
    assert (unbudgeted.available, unbudgeted.over_budget, unbudgeted.unbudgeted) == (
        D("-30.00"),
        False,
        True,
    )
    assert unbudgeted.percent_used is None


def test_over_budget_is_less_than_nothing_available() -> None:
    exact = Figures(budget=D("50.00"), spent=D("50.00"))
    assert (exact.available, exact.over_budget, exact.percent_used) == (
        D("0.00"),
        False,
        D("100.0"),
    )
    over = Figures(budget=D("50.00"), spent=D("50.01"))
    assert (over.over_budget, over.available) == (True, D("-0.01"))
    zero = Figures(budget=D("0.00"), spent=D("0.01"))
    assert (zero.over_budget, zero.unbudgeted, zero.percent_used) == (True, False, None)


def test_totals_add_the_budgets_that_exist() -> None:
    lines = [Figures(D("100.00"), D("20.00")), Figures(None, D("5.00"))]
    assert Figures.total(lines) == Figures(D("100.00"), D("25.00"))
    assert Figures.total([Figures(None, D("1.00"))]) == Figures(None, D("1.00"))
    assert Figures.total(lines).available == sum(line.available for line in lines)
