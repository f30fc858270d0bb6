"""Amounts as banks write them, read exactly into signed integer cents.

`£1,183.23`, `- $220.00`, `1.234,56 €`, `(19.47)`, `−5.00` (Unicode minus), `+12.00`,
`12.50 CR`, `1'234.50`, `1 234,56`: the sign is negative for money leaving the account
(a debit) and positive for money coming in. Never a float.
"""

from __future__ import annotations

import re
import unicodedata

_CODE = re.compile(r"^[A-Z]{3}\s*|\s*[A-Z]{3}$")
_SUFFIX = re.compile(r"\s*(CR|DR|Cr|Dr|cr|dr|C|D)\.?$")
_DIGITS = re.compile(r"[0-9.,' \u00a0\u202f]+")
_SPACES = str.maketrans("", "", " \u00a0\u202f'")
MAX_WHOLE_DIGITS = 12


class BadAmount(ValueError):
    """The text is not an amount; the message names it and says why."""


def has_currency_symbol(text: str) -> bool:
    return any(unicodedata.category(char) == "Sc" for char in text)


def parse_amount(text: str, *, decimal_comma: bool | None = None) -> int:
    """Signed cents of `text`; raises BadAmount with a sentence naming the value.

    `decimal_comma`: True or False when the file's decimal mark is known; None decides
    per value (a separator followed by one or two digits at the end is the decimal mark).
    """
    cleaned = text.strip().replace("\u2212", "-").replace("\u2013", "-")
    if not cleaned:
        raise BadAmount("the amount is empty")
    negative = False
    cleaned = _CODE.sub("", cleaned).strip()
    suffix = _SUFFIX.search(cleaned)
    if suffix is not None and any(char.isdigit() for char in cleaned[: suffix.start()]):
        negative = suffix.group(1).upper().startswith("D")
        cleaned = cleaned[: suffix.start()].strip()
        explicit = True
    else:
        explicit = False
    if cleaned.startswith("(") and cleaned.endswith(")"):
        negative, explicit = True, True
        cleaned = cleaned[1:-1].strip()
    cleaned = "".join(char for char in cleaned if unicodedata.category(char) != "Sc").strip()
    cleaned = _CODE.sub("", cleaned).strip()
    for sign_at in (0, -1):
        if cleaned[sign_at : len(cleaned) + sign_at + 1 if sign_at else 1] in ("-", "+"):
            if explicit and cleaned[sign_at] == "-":
                negative = not negative
            elif cleaned[sign_at] == "-":
                negative = True
            cleaned = (cleaned[1:] if sign_at == 0 else cleaned[:-1]).strip()
            break
    # a symbol between sign and digits: "- $220.00" / "-$7,971.39"
    cleaned = "".join(char for char in cleaned if unicodedata.category(char) != "Sc").strip()
    if not cleaned or not _DIGITS.fullmatch(cleaned) or not any(c.isdigit() for c in cleaned):
        raise BadAmount(f"{text!r} is not an amount")
    cents = _digits_to_cents(cleaned.translate(_SPACES), text, decimal_comma)
    return -cents if negative else cents


def _digits_to_cents(digits: str, text: str, decimal_comma: bool | None) -> int:
    point, comma = digits.rfind("."), digits.rfind(",")
    if decimal_comma is None:
        last = max(point, comma)
        if last == -1:
            mark = ""
        elif (point != -1 and comma != -1) or (
            len(digits) - last - 1 in (1, 2) and digits.count(digits[last]) == 1
        ):
            mark = digits[last]
        else:
            mark = ""  # only grouping: 1,234 or 1.234.567
    else:
        mark = "," if decimal_comma else "."
    if mark and mark in digits:
        whole, _, fraction = digits.rpartition(mark)
        if not whole:
            whole = "0"
    else:
        whole, fraction = digits, ""
    group = {".": ",", ",": "."}.get(mark, "")
    if mark:
        if mark in whole or (group and not _grouped(whole, group)):
            raise BadAmount(f"{text!r} is not an amount (its separators do not add up)")
        whole = whole.replace(group, "")
    else:
        for separator in (",", "."):
            if separator in whole:
                if not _grouped(whole, separator):
                    raise BadAmount(f"{text!r} is not an amount (its separators do not add up)")
                whole = whole.replace(separator, "")
    if not whole.isdigit() or not whole.isascii() or (fraction and not fraction.isdigit()):
        raise BadAmount(f"{text!r} is not an amount")
    if len(fraction) > 2:
        raise BadAmount(f"{text!r} has more than two decimal places")
    if len(whole.lstrip("0")) > MAX_WHOLE_DIGITS:
        raise BadAmount(f"{text!r} is too large")
    return int(whole) * 100 + int((fraction + "00")[:2])


def _grouped(whole: str, separator: str) -> bool:
    if separator not in whole:
        return True
    return re.fullmatch(rf"\d{{1,3}}(?:{re.escape(separator)}\d{{3}})+", whole) is not None
