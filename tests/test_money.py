"""Exact money (`budget_tracker.money`): parsing typed amounts, cents, formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budget_tracker.money import (
    MAX_AMOUNT,
    AmountError,
    format_amount,
    from_cents,
    parse_amount,
    to_cents,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", "12.00"), ("12.5", "12.50"), (" 0.01\t", "0.01"), ("99999999.99", "99999999.99")],
)
def test_parse_amount_accepts(text: str, value: str) -> None:
    assert parse_amount(text) == Decimal(value)
    assert str(parse_amount(text)) == value


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "an amount is required"),
        ("0", "'0' is zero; amounts must be positive"),
        ("-3", "'-3' is negative; amounts must be positive"),
        ("12.345", "'12.345' has more than two decimal places"),
        ("100000000", "'100000000' is larger than the maximum of 99999999.99"),
        ("1e3", "'1e3' is not an amount (use digits, e.g. 12.50)"),
        ("nan", "'nan' is not an amount (use digits, e.g. 12.50)"),
        ("١٢", "'١٢' is not an amount (use digits, e.g. 12.50)"),
        ("１２", "'１２' is not an amount (use digits, e.g. 12.50)"),
        ("𝟏𝟐", "'𝟏𝟐' is not an amount (use digits, e.g. 12.50)"),
        ("12\u00a0", "'12\\xa0' is not an amount (use digits, e.g. 12.50)"),
        ("12.\u0665", "'12.٥' is not an amount (use digits, e.g. 12.50)"),
    ],
)
def test_parse_amount_refuses(text: str, why: str) -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount(text)
    assert caught.value.reason == why
    assert isinstance(caught.value, ValueError)  # callers that catch ValueError still work


def test_budgets_may_be_zero() -> None:
    assert parse_amount("0", allow_zero=True) == Decimal("0.00")


@given(st.integers(min_value=1, max_value=int(MAX_AMOUNT * 100)))
def test_cents_round_trip_exactly(cents: int) -> None:
    value = from_cents(cents)
    assert to_cents(value) == cents
    assert parse_amount(format_amount(value)) == value


def test_to_cents_refuses_floats_and_sub_cents() -> None:
    with pytest.raises(TypeError):
        to_cents(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        to_cents(Decimal("0.001"))
