"""Every input rule, in one place: what a name, a description, an e-mail, a colour, an
amount, an id, a count, a date and a month may be.

The click parameter types, the services, the importer and the schema's CHECKs all take
their limits from here, so a rule cannot hold in one layer and not in another. Each check
returns the value in its canonical form (trimmed, NFC-normalized, upper-case colour) or
raises `RuleViolation`, which carries the field, the value and the reason; the CLI shows
the reason after the parameter's name, a service caller gets the whole sentence.

Digits are ASCII only: `١٢`, `１２` and `𝟏𝟐` are digits to Python's `int()` and `\\d`, and
were once accepted as 12. Only ASCII whitespace is trimmed around numbers, dates and
months, so `12<NBSP>` is refused rather than read as 12.

This module imports neither click nor SQLAlchemy (the CLI loads it at start-up).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal

from budget_tracker.errors import InvalidInput

# --- limits ---------------------------------------------------------------------------------

NAME_MAX = 50
"""Characters in a category name (after trimming and NFC normalization)."""
NAME_KEY_MAX = 4 * NAME_MAX
"""Characters in a category's identity key: NFKC and case folding can lengthen a name
(`ß` -> `ss`, `ﬃ` -> `ffi`); a name whose key would be longer still is refused."""
USER_NAME_MAX = 100
DESCRIPTION_MAX = 200
"""Characters in an expense's description or a transfer's note."""
EMAIL_MAX = 254
COLOR_LENGTH = 7
"""`#RRGGBB`."""

AMOUNT_PLACES = 2
AMOUNT_MAX = Decimal("99999999.99")
"""The largest single amount (and monthly budget) accepted: just under one hundred million."""
AMOUNT_MAX_CENTS = int(AMOUNT_MAX * 100)
AMOUNT_MAX_UNITS_DIGITS = 8
"""Digits before the decimal point of the largest amount."""

ID_MAX = 2**63 - 1
"""Ids and counts are 64-bit signed integers on every backend."""
COUNT_MAX = ID_MAX

DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2999, 12, 31)
"""Dates (and months) outside 1900-01-01..2999-12-31 are refused: far inside what Python's
dates can hold, so month arithmetic on any accepted value (a year back for a trend, a month
forward for a period's end) never leaves that range."""
MONTH_MIN = DATE_MIN
MONTH_MAX = DATE_MAX.replace(day=1)

ASCII_SPACE = " \t\r\n\x0b\x0c"

_DIGITS = re.compile(r"[0-9]+")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_ISO_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")

COLOR_SQL_CHECK = (
    "color IS NULL OR (length(color) = 7 AND substr(color, 1, 1) = '#' "
    "AND ltrim(substr(color, 2), '0123456789ABCDEFabcdef') = '')"
)
"""The schema's colour CHECK: `#` and six hex digits, in SQL both backends run alike
(no regular expressions in SQLite, no GLOB in PostgreSQL)."""


class RuleViolation(InvalidInput):
    """A value that breaks an input rule: `field` (what it is), `value` (as given) and
    `reason` (a sentence fragment naming the value, e.g. `'0' is zero; ...`)."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        # A reason that names the value reads on its own; "must not be empty" needs the field.
        names_value = reason[:1] in ("'", '"')
        super().__init__(reason if names_value else f"{field} {reason}")


class AmountError(RuleViolation, ValueError):
    """Text or a Decimal that is not a valid amount of money."""

    def __init__(self, reason: str, value: object = None, field: str = "amount") -> None:
        super().__init__(field, value, reason)


# --- text -----------------------------------------------------------------------------------

_JOINERS = frozenset("\u200c\u200d")
"""ZERO WIDTH NON-JOINER and JOINER: format characters that belong inside emoji sequences
(👩‍💻) and some scripts, so they are allowed between two visible characters."""


def _forbidden_at(text: str) -> int | None:
    """Index of the first character a name or description may not hold, else None.

    Refused: control characters and line breaks (Cc, Zl, Zp), invisible format characters
    (Cf: zero-width spaces, bidi overrides, BOM...; joiners only inside a word) and lone
    surrogates (Cs, bytes that were not UTF-8).
    """
    for index, char in enumerate(text):
        if char.isprintable():
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Zl", "Zp"):
            return index
        if category == "Cf":
            if (
                char in _JOINERS
                and 0 < index < len(text) - 1
                and text[index - 1].isprintable()
                and text[index + 1].isprintable()
                and not text[index - 1].isspace()
                and not text[index + 1].isspace()
            ):
                continue
            return index
    return None


def _what(char: str) -> str:
    category = unicodedata.category(char)
    if category == "Cs":
        return "bytes that are not UTF-8"
    if category in ("Zl", "Zp") or char in "\n\r\x0b\x0c\x85":
        return f"a line break (U+{ord(char):04X})"
    if category == "Cc":
        return f"a control character (U+{ord(char):04X})"
    return f"an invisible formatting character (U+{ord(char):04X})"


def check_text(value: str, *, field: str, max_length: int, allow_empty: bool = False) -> str:
    """Trimmed, NFC-normalized single-line text of at most `max_length` characters."""
    text = unicodedata.normalize("NFC", value.strip())
    bad = _forbidden_at(text)
    if bad is not None:
        raise RuleViolation(field, value, f"{value!r} contains {_what(text[bad])}")
    if not text and not allow_empty:
        raise RuleViolation(field, value, "must not be empty")
    if len(text) > max_length:
        raise RuleViolation(
            field, value, f"is {len(text)} characters long; the limit is {max_length}"
        )
    return text


def check_name(value: str, *, field: str = "category name") -> str:
    """A category name: non-empty text of at most `NAME_MAX` characters."""
    text = check_text(value, field=field, max_length=NAME_MAX)
    if len(name_key(text)) > NAME_KEY_MAX:
        raise RuleViolation(field, value, f"{value!r} is too long once normalized")
    return text


def check_description(value: str, *, field: str = "description") -> str:
    """A description or note: possibly empty text of at most `DESCRIPTION_MAX` characters."""
    return check_text(value, field=field, max_length=DESCRIPTION_MAX, allow_empty=True)


def check_user_name(value: str, *, field: str = "user name") -> str:
    return check_text(value, field=field, max_length=USER_NAME_MAX)


def name_key(name: str) -> str:
    """The identity of a category name: NFKC case-folded, runs of whitespace as one space.

    `Food`, `FOOD`, ` food ` and the full-width `Ｆｏｏｄ` are one category.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())


def normalize_email(email: str) -> str:
    """The stored form of an e-mail address: trimmed, NFC, lower case."""
    return unicodedata.normalize("NFC", email.strip()).lower()


def check_email(value: str, *, field: str = "e-mail") -> str:
    email = normalize_email(value)
    if not _EMAIL.fullmatch(email) or len(email) > EMAIL_MAX or _forbidden_at(email) is not None:
        raise RuleViolation(field, value, f"{value!r} is not an e-mail address")
    return email


def check_color(value: str, *, field: str = "colour") -> str:
    """`#RRGGBB` with ASCII hex digits, stored upper-case."""
    text = value.strip(ASCII_SPACE)
    if not _COLOR.fullmatch(text):
        raise RuleViolation(field, value, f"{value!r} is not a colour (use #RRGGBB)")
    return text.upper()


# --- amounts --------------------------------------------------------------------------------

CENT = Decimal("0.01")


def check_amount(value: Decimal, *, allow_zero: bool = False, field: str = "amount") -> Decimal:
    """A Decimal amount: positive (or zero when allowed), at most two places, at most
    `AMOUNT_MAX`. Returned with exactly two places."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise AmountError(f"{value!r} is not an amount", value, field)
    if value < 0:
        raise AmountError(f"'{value}' is negative; amounts must be positive", value, field)
    if value == 0 and not allow_zero:
        raise AmountError(f"'{value}' is zero; amounts must be positive", value, field)
    if value > AMOUNT_MAX:
        raise AmountError(f"'{value}' is larger than the maximum of {AMOUNT_MAX}", value, field)
    if value != value.quantize(CENT):
        raise AmountError(f"'{value}' has more than two decimal places", value, field)
    return value.quantize(CENT)


# --- ids and counts -------------------------------------------------------------------------


def parse_int(text: str, *, field: str, maximum: int = ID_MAX) -> int:
    """A positive whole number in ASCII digits, at most `maximum` (ids: 1..2^63-1)."""
    cleaned = text.strip(ASCII_SPACE)
    if not _DIGITS.fullmatch(cleaned):
        raise RuleViolation(field, text, f"{text!r} is not a positive whole number")
    if len(cleaned) > len(str(maximum)) + 1:  # no int() of a million digits
        raise RuleViolation(field, text, f"{text!r} is larger than the maximum of {maximum}")
    return check_int(int(cleaned), field=field, maximum=maximum, shown=text)


def check_int(value: int, *, field: str, maximum: int = ID_MAX, shown: object = None) -> int:
    shown = value if shown is None else shown
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleViolation(field, shown, f"{shown!r} is not a whole number")
    if value < 1:
        raise RuleViolation(field, shown, f"'{shown}' is not positive")
    if value > maximum:
        raise RuleViolation(field, shown, f"'{shown}' is larger than the maximum of {maximum}")
    return value


def check_id(value: int, *, field: str = "id") -> int:
    """An id a row could have: 1..2^63-1 (a larger one cannot exist, on any backend)."""
    return check_int(value, field=field, maximum=ID_MAX)


# --- dates and months -----------------------------------------------------------------------


def check_date(value: dt.date, *, field: str = "date") -> dt.date:
    if not DATE_MIN <= value <= DATE_MAX:
        raise RuleViolation(
            field,
            value,
            f"{value.isoformat()!r} is outside the supported dates "
            f"{DATE_MIN.isoformat()} to {DATE_MAX.isoformat()}",
        )
    return value


def check_month(value: dt.date, *, field: str = "month") -> dt.date:
    """The first day of `value`'s month, within `MONTH_MIN`..`MONTH_MAX`."""
    first = value.replace(day=1)
    if not MONTH_MIN <= first <= MONTH_MAX:
        raise RuleViolation(
            field,
            value,
            f"'{first:%Y-%m}' is outside the supported months "
            f"{MONTH_MIN:%Y-%m} to {MONTH_MAX:%Y-%m}",
        )
    return first


def parse_date(text: str, *, field: str = "date") -> dt.date:
    """An ISO date `YYYY-MM-DD` in ASCII digits, a real day within the supported range."""
    cleaned = text.strip(ASCII_SPACE)
    match = _ISO_DATE.fullmatch(cleaned)
    if not match:
        raise RuleViolation(field, text, f"{text!r} is not a date (use YYYY-MM-DD)")
    try:
        day = dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise RuleViolation(field, text, f"{text!r} is not a real date") from None
    return check_date(day, field=field)


def parse_month(text: str, *, field: str = "month") -> dt.date:
    """A month `YYYY-MM` in ASCII digits, as the date of its first day."""
    cleaned = text.strip(ASCII_SPACE)
    match = _ISO_MONTH.fullmatch(cleaned)
    if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
        raise RuleViolation(field, text, f"{text!r} is not a month (use YYYY-MM)")
    return check_month(dt.date(int(match[1]), int(match[2]), 1), field=field)
