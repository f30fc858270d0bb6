"""Exact money: parsing, cents conversion and formatting.

Amounts are `decimal.Decimal` with two places in Python and integer cents in the
database; a float never takes part. This module imports nothing heavy so the CLI's
parameter types can use it without slowing start-up.
"""

from __future__ import annotations

import re
from decimal import Decimal

from budget_tracker.rules import (
    AMOUNT_MAX,
    AMOUNT_MAX_UNITS_DIGITS,
    ASCII_SPACE,
    CENT,
    AmountError,
    check_amount,
)

MAX_AMOUNT = AMOUNT_MAX
"""The largest single amount accepted (the rule lives in `rules`)."""

__all__ = [
    "CENT",
    "MAX_AMOUNT",
    "AmountError",
    "format_amount",
    "from_cents",
    "parse_amount",
    "to_cents",
]

# ASCII digits only: `\d` would also take Arabic-Indic, full-width and mathematical digits.
_AMOUNT_RE = re.compile(rf"[0-9]{{1,{AMOUNT_MAX_UNITS_DIGITS}}}(?:\.[0-9]{{1,2}})?")


def parse_amount(text: str, *, allow_zero: bool = False) -> Decimal:
    """Parse a user-typed amount such as `12`, `12.5` or `12.50` into a Decimal.

    Refuses signs, exponents, `nan`/`inf`, non-ASCII digits and spaces, more than two
    decimal places and amounts above `MAX_AMOUNT`; zero is refused unless `allow_zero`
    (budgets may be zero). The range and scale are `rules.check_amount`'s.
    """
    cleaned = text.strip(ASCII_SPACE)
    if not cleaned:
        raise AmountError("an amount is required", text)
    if not _AMOUNT_RE.fullmatch(cleaned):
        if re.fullmatch(r"[0-9]+\.[0-9]{3,}", cleaned):
            raise AmountError(f"{text!r} has more than two decimal places", text)
        if re.fullmatch(r"-[ \t]*[0-9.]+", cleaned):
            raise AmountError(f"{text!r} is negative; amounts must be positive", text)
        if re.fullmatch(r"[0-9]{9,}(\.[0-9]{1,2})?", cleaned):
            raise AmountError(f"{text!r} is larger than the maximum of {MAX_AMOUNT}", text)
        raise AmountError(f"{text!r} is not an amount (use digits, e.g. 12.50)", text)
    value = Decimal(cleaned)
    if value == 0 and not allow_zero:
        raise AmountError(f"{text!r} is zero; amounts must be positive", text)
    return check_amount(value, allow_zero=allow_zero)


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
