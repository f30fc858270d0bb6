"""What every format reader yields: one statement line, still as text."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Record:
    """One line of a statement as the file writes it; the importer interprets it.

    `amount` is signed text (negative: money out), or empty when the file splits money
    out and money in over `outflow` and `inflow` columns. `columns` holds every field by
    the file's own name, for description templates and rules.
    """

    line: int
    date: str
    amount: str = ""
    outflow: str = ""
    inflow: str = ""
    direction: str = ""
    description: str = ""
    category: str = ""
    bank_id: str = ""
    status: str = ""
    kind: str = ""
    columns: dict[str, str] = field(default_factory=dict)
