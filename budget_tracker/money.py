"""Exact money: parsing, cents conversion and formatting.

Amounts are `decimal.Decimal` with two places in Python and integer cents in the
database; a float never takes part. This module imports nothing heavy so the CLI's
parameter types can use it without slowing start-up.
"""

from __future__ import annotations

import re
from decimal import Decimal

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("99999999.99")
"""The largest single amount accepted (just under one hundred million)."""

_AMOUNT_RE = re.compile(r"\d{1,8}(?:\.\d{1,2})?")


class AmountError(ValueError):
    """Text that is not a valid amount of money."""


def parse_amount(text: str, *, allow_zero: bool = False) -> Decimal:
    """Parse a user-typed amount such as `12`, `12.5` or `12.50` into a Decimal.

    Refuses signs, exponents, `nan`/`inf`, more than two decimal places and amounts
    above `MAX_AMOUNT`; zero is refused unless `allow_zero` (budgets may be zero).
    """
    cleaned = text.strip()
    if not cleaned:
        raise AmountError("an amount is required")
    if not _AMOUNT_RE.fullmatch(cleaned):
        if re.fullmatch(r"\d+\.\d{3,}", cleaned):
            raise AmountError(f"{text!r} has more than two decimal places")
        if re.fullmatch(r"-\s*[\d.]+", cleaned):
            raise AmountError(f"{text!r} is negative; amounts must be positive")
        if re.fullmatch(r"\d{9,}(\.\d{1,2})?", cleaned):
            raise AmountError(f"{text!r} is larger than the maximum of {MAX_AMOUNT}")
        raise AmountError(f"{text!r} is not an amount (use digits, e.g. 12.50)")
    value = Decimal(cleaned).quantize(CENT)
    if value == 0 and not allow_zero:
        raise AmountError(f"{text!r} is zero; amounts must be positive")
    if value > MAX_AMOUNT:
        raise AmountError(f"{text!r} is larger than the maximum of {MAX_AMOUNT}")
    return value


def to_cents(value: Decimal) -> int:
    """Exact conversion of a Decimal amount to integer cents; refuses sub-cent values."""
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be a Decimal, not {type(value).__name__}")
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{value} has more than two decimal places")
    return int(cents)


def from_cents(cents: int | Decimal) -> Decimal:
    """Integer cents (or an integral Decimal, as PostgreSQL returns for SUM) to a Decimal."""
    return (Decimal(cents) / 100).quantize(CENT)


def format_amount(value: Decimal) -> str:
    """Two decimal places, no grouping: the form used in every output, JSON included."""
    return str(value.quantize(CENT))
