"""The bank-export corpus: every file in tests/fixtures/banks imported into an empty database.

Each fixture `NAME.EXT` has `NAME.expected.json`, written by reading the file (never by
running the importer): the extra `budget import` arguments a user needs (`[]` = none), every
spending row in file order (date, exact positive amount, a piece of the description), how
many rows are money in, and how many rows are skipped as pending, zero or balance/summary
lines; or, for a file that must be refused, a piece of the one-line error (matched without
the file's name and path, case-insensitively).

The test runs `budget import FILE *ARGS --format json` and reads the import's summary from
stdout as one JSON object. The contract it checks:

    {"credits": <int, or {kind: int}, or [rows]>,
     "skipped": {"pending": <int>, "zero": <int>, "summary": <int>, ...}, ...}

Stored expenses are compared row by row in insertion order. The module carries the `corpus`
marker; run it with `pytest -m corpus tests/test_bank_corpus.py`.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Backend

pytestmark = pytest.mark.corpus

CORPUS = Path(__file__).parent / "fixtures" / "banks"
EXPECTED_SUFFIX = ".expected.json"
SKIP_REASONS = ("pending", "zero", "summary")


def _fixtures() -> list[Path]:
    return sorted(
        path
        for path in CORPUS.iterdir()
        if path.is_file() and not path.name.endswith(EXPECTED_SUFFIX) and path.name != "README.md"
    )


FIXTURES = _fixtures()


def _expected(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (path.parent / (path.stem + EXPECTED_SUFFIX)).read_text(encoding="utf-8")
    )
    return data


def _squash(text: str) -> str:
    """Whitespace runs (including joined continuation lines) compare as one space."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def _count(value: Any) -> int:
    """A count in the summary: an int, a mapping of kind -> int, or a list of rows."""
    if isinstance(value, bool):
        raise AssertionError(f"not a count: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return sum(_count(v) for v in value.values())
    if isinstance(value, list):
        return len(value)
    raise AssertionError(f"not a count: {value!r}")


def _stored(backend: Backend) -> list[tuple[str, Decimal, str]]:
    return [
        (str(spent_on), Decimal(cents) / 100, description)
        for spent_on, cents, description in backend.rows(
            "SELECT spent_on, amount, description FROM expenses ORDER BY id"
        )
    ]


def test_every_fixture_has_a_well_formed_expectation() -> None:
    assert len(FIXTURES) >= 40
    for path in FIXTURES:
        expected = _expected(path)
        assert set(expected) == {
            "layout",
            "args",
            "expenses",
            "credits",
            "skipped",
            "error_contains",
        }, path.name
        assert expected["layout"], path.name
        assert all(isinstance(arg, str) for arg in expected["args"]), path.name
        assert set(expected["skipped"]) == set(SKIP_REASONS), path.name
        if expected["error_contains"] is not None:
            assert expected["expenses"] == [], path.name
        for row in expected["expenses"]:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["date"]), (path.name, row)
            assert re.fullmatch(r"\d+\.\d{2}", row["amount"]), (path.name, row)
            assert Decimal(row["amount"]) > 0, (path.name, row)
            assert row["description_contains"].strip(), (path.name, row)


@pytest.mark.parametrize("path", FIXTURES, ids=[path.name for path in FIXTURES])
def test_bank_file_imports_exactly(backend: Backend, path: Path) -> None:
    expected = _expected(path)
    result = backend.invoke(["import", str(path), *expected["args"], "--format", "json"])
    assert "Traceback" not in result.stderr

    if expected["error_contains"] is not None:
        assert result.exit_code in (1, 2), (result.exit_code, result.stderr)
        # A usage error (an unknown option) is not the refusal this file must get.
        assert "No such option" not in result.stderr, result.stderr
        # The file's own name must not satisfy the check ("pdf" in "statement.pdf").
        message = result.stderr.replace(str(path), "").replace(path.name, "")
        assert expected["error_contains"].casefold() in message.casefold(), result.stderr
        assert _stored(backend) == []
        return

    assert result.exit_code == 0, result.stderr
    stored = _stored(backend)
    want = expected["expenses"]
    for index, (row, got) in enumerate(zip(want, stored, strict=False)):
        spent_on, amount, description = got
        where = f"{path.name} expense #{index + 1}: stored {got!r}, expected {row!r}"
        assert spent_on == row["date"], where
        assert amount == Decimal(row["amount"]), where
        assert _squash(row["description_contains"]) in _squash(description), where
    assert len(stored) == len(want), (path.name, stored)

    summary = json.loads(result.stdout)
    assert isinstance(summary, dict), result.stdout
    assert _count(summary["credits"]) == expected["credits"], summary
    skipped = summary["skipped"]
    for reason in SKIP_REASONS:
        assert _count(skipped.get(reason, 0)) == expected["skipped"][reason], (reason, summary)
