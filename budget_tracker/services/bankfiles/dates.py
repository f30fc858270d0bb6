"""Dates as banks write them, with the format decided from every date in the file.

Day-first and month-first are told apart only by a day over 12 somewhere in the file; a
file where every day is 12 or less leaves the order open, and the import then asks for
`--date-format` instead of guessing. A timestamp is read as the day it names (its time
and zone are dropped, so a booking late in the evening stays on its booking day).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from budget_tracker.errors import Wording, option

# Tried in this order; a format is a candidate when it reads every date in the file.
CANDIDATES = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y%m%d",
    "%d.%m.%Y",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d.%m.%y",
    "%d/%m/%y",
    "%m/%d/%y",
    "%d-%m-%y",
    "%d %b %Y",
    "%d-%b-%Y",
    "%d %b %y",
    "%d-%b-%y",
    "%b %d, %Y",
    "%d %B %Y",
    "%B %d, %Y",
)
_TIME = re.compile(
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?[AaPp][Mm])?)"
    r"(?:\s?(?:Z|UTC|GMT|[+-]\d{2}:?\d{2}|[A-Z]{3,4}))?$"
)


class DateProblem(ValueError):
    """The dates cannot be read, or leave the format open; `wording` says which."""

    def __init__(self, wording: str | Wording) -> None:
        self.wording = Wording.of(wording)
        super().__init__(str(self.wording))


def clean(text: str) -> str:
    """The date part of `text`: surrounding space, a time and a zone removed."""
    cleaned = " ".join(text.split())
    cleaned = _TIME.sub("", cleaned).strip()
    return cleaned.replace("'", "/")  # QIF writes 3/5'26 for 2026


def infer_format(texts: Iterable[str]) -> str:
    """The one format that reads every text; raises DateProblem when none or several do."""
    samples = sorted({clean(text) for text in texts if text.strip()})
    if not samples:
        raise DateProblem("the file has no dates")
    readable = [fmt for fmt in CANDIDATES if all(_reads(fmt, sample) for sample in samples)]
    if not readable:
        unread = next(s for s in samples if not any(_reads(f, s) for f in CANDIDATES))
        raise DateProblem(
            f"{unread!r} is not a date I can read: give its format with "
            + option("date_format")
            + " (e.g. "
            + option("date_format")
            + " %d.%m.%Y)"
        )
    first = readable[0]
    for other in readable[1:]:
        differing = next(
            (s for s in samples if _reads(other, s) and _strptime(other, s) != _strptime(first, s)),
            None,
        )
        if differing is not None:
            a, b = _strptime(first, differing), _strptime(other, differing)
            raise DateProblem(
                f"the dates leave day and month open ({differing!r} could be "
                f"{a:%d %B %Y} or {b:%d %B %Y}, and no day in the file is over 12): give "
                + option("date_format")
                + f" {first} or "
                + option("date_format")
                + f" {other}"
            )
    return first


def parse(text: str, fmt: str) -> dt.date:
    """The date in `text` read with `fmt` (after `clean`); ValueError when it does not fit."""
    return _strptime(fmt, clean(text))


def _reads(fmt: str, text: str) -> bool:
    try:
        _strptime(fmt, text)
    except ValueError:
        return False
    return True


def _strptime(fmt: str, text: str) -> dt.date:
    parsed = dt.datetime.strptime(text, fmt).date()
    if not text.isascii():
        raise ValueError(text)
    return parsed
