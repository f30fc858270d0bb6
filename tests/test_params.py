"""The shared input rules: amounts, dates and months, and exact round trips of money."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget_tracker.cli import main
from budget_tracker.cli.params import AMOUNT, BUDGET_AMOUNT, DATE, MONTH
from budget_tracker.cli.state import AppState
from budget_tracker.money import MAX_AMOUNT
from tests.cli_helpers import ok
from tests.conftest import Backend


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", "12.00"),
        ("12.5", "12.50"),
        ("12.50", "12.50"),
        (" 0.01 ", "0.01"),
        ("99999999.99", "99999999.99"),
    ],
)
def test_amount_accepts(text: str, value: str) -> None:
    assert AMOUNT.convert(text, None, None) == Decimal(value)
    assert str(AMOUNT.convert(text, None, None)) == value


@pytest.mark.parametrize(
    "text", ["-3", "0", "0.00", "1e3", "nan", "inf", "12.345", "abc", "", "1,5"]
)
def test_amount_refuses(text: str) -> None:
    with pytest.raises(click.BadParameter):
        AMOUNT.convert(text, None, None)


def test_budget_amount_allows_zero() -> None:
    assert BUDGET_AMOUNT.convert("0", None, None) == Decimal("0.00")
    with pytest.raises(click.BadParameter):
        BUDGET_AMOUNT.convert("-1", None, None)


def invocation_on(day: dt.date) -> click.Context:
    """The context of a `budget` invocation whose today is `day`."""
    return click.Context(main, obj=AppState(today=lambda: day))


def test_dates() -> None:
    ctx = invocation_on(dt.date(2024, 3, 1))
    assert DATE.convert("today", None, ctx) == dt.date(2024, 3, 1)
    assert DATE.convert("Yesterday", None, ctx) == dt.date(2024, 2, 29)
    assert DATE.convert("2024-02-29", None, None) == dt.date(2024, 2, 29)
    for bad in ("2026-02-30", "2026-13-01", "2026-3-1", "tomorrow", ""):
        with pytest.raises(click.BadParameter):
            DATE.convert(bad, None, None)


def test_months() -> None:
    assert MONTH.convert("2026-03", None, None) == dt.date(2026, 3, 1)
    ctx = invocation_on(dt.date(2026, 12, 31))
    assert MONTH.convert("this", None, ctx) == dt.date(2026, 12, 1)
    assert MONTH.convert("Last", None, ctx) == dt.date(2026, 11, 1)
    assert MONTH.convert("next", None, ctx) == dt.date(2027, 1, 1)
    for bad in ("2026-13", "2026-00", "2026-3", "March", "2026-03-01"):
        with pytest.raises(click.BadParameter):
            MONTH.convert(bad, None, None)


def month_options() -> list[tuple[str, click.Option]]:
    """(command, option) of every option that takes a month: named --month, or whose help
    speaks of YYYY-MM."""
    from budget_tracker.cli.commands import ALL

    found = []
    for name in ALL:
        command = main.commands[name]
        leaves = (
            [(f"{name} {sub}", leaf) for sub, leaf in command.commands.items()]
            if isinstance(command, click.Group)
            else [(name, command)]
        )
        for leaf_name, leaf in leaves:
            for param in leaf.params:
                if not isinstance(param, click.Option):
                    continue
                help_text = (param.help or "").replace("YYYY-MM-DD", "")
                if "--month" in param.opts or "YYYY-MM" in help_text:
                    found.append((leaf_name, param))
    return found


def test_every_month_option_takes_month_words() -> None:
    """`YYYY-MM`, `this`, `last` and `next` wherever a month is asked for: one type."""
    options = {(name, option.opts[0]): option for name, option in month_options()}
    assert {
        ("report", "--month"),
        ("category set-budget", "--from"),
        ("transfer", "--month"),
    } <= set(options)
    assert {key: option.type for key, option in options.items()} == dict.fromkeys(options, MONTH)


def spellings(value: Decimal) -> st.SearchStrategy[str]:
    """The ways a person may type `value`: `12.50`, `12.5`, and `12` when it is whole."""
    forms = {f"{value:.2f}", f"{value:.2f}".rstrip("0").rstrip(".")}
    return st.sampled_from(sorted(forms))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    typed=st.decimals(min_value=Decimal("0.01"), max_value=MAX_AMOUNT, places=2).flatmap(
        lambda value: st.tuples(st.just(value), spellings(value))
    )
)
def test_any_valid_amount_round_trips_exactly(backend: Backend, typed: tuple[Decimal, str]) -> None:
    value, text = typed
    added = ok(backend.invoke(["add-expense", text, "Food"]))
    expense_id = int(added.stdout.split()[2].rstrip(":"))
    assert backend.scalar("SELECT amount FROM expenses WHERE id = :id", id=expense_id) == int(
        value * 100
    )
    listed = json.loads(ok(backend.invoke(["expenses", "--limit", "1", "--format", "json"])).stdout)
    assert listed["expenses"][0]["id"] == expense_id
    assert listed["expenses"][0]["amount"] == f"{value:.2f}"
    assert Decimal(listed["expenses"][0]["amount"]) == value
