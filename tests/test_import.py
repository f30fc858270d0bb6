"""`budget import`: every row or none, never the same row twice, on both backends."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budget_tracker.money import AmountError, parse_amount
from budget_tracker.services.bankfiles.source import open_source
from budget_tracker.services.importer import (
    _FAST_AMOUNT,
    ImportOptions,
    _RowReader,
    fingerprint,
)
from tests.cli_helpers import first_run
from tests.conftest import Backend

HEADER = "date,amount,category,description\n"


def write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def generated_rows(count: int, *, start: int = 0) -> str:
    """`count` distinct valid rows in the starter categories, sorted by date."""
    categories = ("Food", "Transport", "Entertainment", "Utilities")
    day = dt.date(2025, 1, 1)
    return "".join(
        f"{day + dt.timedelta(days=i // 100)},{1 + i % 997}.{i % 100:02d},"
        f"{categories[i % 4]},Row {i}\n"
        for i in range(start, start + count)
    )


def expenses(backend: Backend) -> list[tuple[str, str, str, str]]:
    """(date, amount, category, description) of every expense, in id order."""
    return [
        (str(spent_on), str(Decimal(cents) / 100), name, description)
        for spent_on, cents, name, description in backend.rows(
            "SELECT e.spent_on, e.amount, c.name, e.description FROM expenses e "
            "JOIN categories c ON c.id = e.category_id ORDER BY e.id"
        )
    ]


def test_imports_rows_and_reports_on_stderr(backend: Backend, tmp_path: Path) -> None:
    csv_file = write(
        tmp_path / "history.csv",
        HEADER + "2026-03-01,12.50,Food,Lunch\n2026-03-02,3,transport,Bus\n",
    )
    result = backend.invoke(["import", str(csv_file)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert (
        result.stderr.splitlines()[-1] == "Imported history.csv: 2 new, 0 already present (2 rows)."
    )
    assert expenses(backend) == [
        ("2026-03-01", "12.5", "Food", "Lunch"),
        ("2026-03-02", "3", "Transport", "Bus"),
    ]


def test_bom_semicolons_and_quoted_fields(backend: Backend, tmp_path: Path) -> None:
    csv_file = write(
        tmp_path / "bank.csv",
        'Date;Amount;Category;Description\n2026-03-01;12.50;Food;"Lunch; with ""Ann"", Bob"\n'
        '2026-03-02;4.20;Food;"two  spaces"\n',
        bom=True,
    )
    result = backend.invoke(["import", str(csv_file)])
    assert result.exit_code == 0, result.stderr
    assert expenses(backend) == [
        ("2026-03-01", "12.5", "Food", 'Lunch; with "Ann", Bob'),
        ("2026-03-02", "4.2", "Food", "two  spaces"),
    ]


def test_quoted_commas_with_comma_delimiter(backend: Backend, tmp_path: Path) -> None:
    csv_file = write(tmp_path / "a.csv", HEADER + '2026-03-01,1.00,Food,"Milk, eggs, bread"\n')
    assert backend.invoke(["import", str(csv_file)]).exit_code == 0
    assert expenses(backend) == [("2026-03-01", "1", "Food", "Milk, eggs, bread")]


def test_bank_export_with_mapped_columns_signs_and_decimal_comma(
    backend: Backend, tmp_path: Path
) -> None:
    csv_file = write(
        tmp_path / "bank.csv",
        "Booking date;Payee;Amount;Balance\n"
        "05.03.2026;Bakery;-1.234,56;10,00\n"
        "06.03.2026;Salary;2.000,00;2.010,00\n"
        "07.03.2026;Bus;-2,5;0,00\n",
    )
    result = backend.invoke(
        [
            "import",
            str(csv_file),
            "--columns",
            "date=Booking date, amount=amount,description=PAYEE",
            "--date-format",
            "%d.%m.%Y",
            "--decimal-comma",
            "--signs",
            "spending-negative",
            "--category",
            "Food",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-4:] == [
        "bank.csv: read as CSV.",
        "Skipped 1 credit totalling 2000.00: money coming in is not spending.",
        "  2026-03-06       2000.00  Salary",
        "Imported bank.csv: 2 new, 0 already present (2 rows).",
    ]
    assert expenses(backend) == [
        ("2026-03-05", "1234.56", "Food", "Bakery"),
        ("2026-03-07", "2.5", "Food", "Bus"),
    ]


def test_currency_symbols_in_the_export_format_are_read_not_refused(
    backend: Backend, tmp_path: Path
) -> None:
    path = tmp_path / "pounds.csv"
    path.write_text(
        'date,amount,category,description\n2026-03-01,"£1,183.23",Travel,Flight\n'
        "2026-03-02,£12.50,Travel,Taxi\n",
        encoding="utf-8",
    )
    result = backend.invoke(["import", str(path), "--create-categories"])
    assert result.exit_code == 0, result.stderr
    assert "--decimal-comma" not in result.stderr
    assert [
        row[:2] for row in backend.rows("SELECT amount, description FROM expenses ORDER BY id")
    ] == [
        (118323, "Flight"),
        (1250, "Taxi"),
    ]


def test_bad_rows_are_listed_and_nothing_is_imported(backend: Backend, tmp_path: Path) -> None:
    backend.invoke(["export"])  # first run: the user and starter categories exist
    before = backend.snapshot()
    csv_file = write(
        tmp_path / "bad.csv",
        HEADER
        + "2026-03-01,12.50,Food,fine\n"
        + "2026-13-01,1,Food,x\n"
        + "03/01/2026,1,Food,x\n"
        + "2026-03-01,abc,Food,x\n"
        + "2026-03-01,-5,Food,x\n"
        + "2026-03-01,0.00,Food,x\n"
        + "2026-03-01,1.005,Food,x\n"
        + "2026-03-01,12,50,Food,x\n"
        + "2026-03-01,1,,x\n"
        + "2026-03-01,1,Food\n"
        + f"2026-03-01,1,Food,{'d' * 201}\n",
    )
    result = backend.invoke(["import", str(csv_file)])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: bad.csv has 10 bad rows; nothing was imported:\n"
        "  line 3, column date: '2026-13-01' is not a real date\n"
        "  line 4, column date: '03/01/2026' is not a date (use YYYY-MM-DD or --date-format)\n"
        "  line 5, column amount: 'abc' is not an amount (use digits, e.g. 12.50)\n"
        "  line 6, column amount: '-5' is negative; expenses are positive (for a bank export "
        "that writes spending as negative, use --signs spending-negative)\n"
        "  line 7, column amount: '0.00' is zero; an expense must be positive\n"
        "  line 8, column amount: '1.005' has more than two decimal places\n"
        "  line 9: has 5 fields but the header has 4 (quote fields that contain the delimiter)\n"
        "  line 10, column category: the category is empty\n"
        "  line 11: has 3 fields but the header has 4 (quote fields that contain the "
        "delimiter)\n"
        "  line 12, column description: the description is 201 characters long; the limit "
        "is 200\n"
    )
    assert backend.snapshot() == before


def test_error_list_stops_at_twenty_then_counts(backend: Backend, tmp_path: Path) -> None:
    csv_file = write(tmp_path / "bad.csv", HEADER + "2026-03-01,x,Food,\n" * 25)
    result = backend.invoke(["import", str(csv_file)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: bad.csv has 25 bad rows; nothing was imported:"
    assert lines[1] == "  line 2, column amount: 'x' is not an amount (use digits, e.g. 12.50)"
    assert lines[20].startswith("  line 21, column amount:")
    assert lines[21:] == ["  and 5 more"]


def test_legacy_encoding_is_detected_and_named(backend: Backend, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + b"2026-03-01,1,Food,Caf\xe9 M\xfcller\n")
    result = backend.invoke(["import", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "latin1.csv: the file is cp1252." in result.stderr.splitlines()
    assert expenses(backend) == [("2026-03-01", "1", "Food", "Café Müller")]


def test_not_utf8_line_past_the_sniffed_part_is_a_bad_row(backend: Backend, tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_bytes((HEADER + generated_rows(2_000)).encode() + b"2026-03-01,1,Food,Caf\xe9\n")
    result = backend.invoke(["import", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1] == (
        "  line 2002, column description: 'Caf\\udce9' contains bytes that are not UTF-8"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "Error: empty.csv is empty: expected a header line first\n"),
        (
            "when,amount,category\n2026-03-01,1,Food\n",
            "Error: empty.csv has no date column I recognise (the header is on line 1, split "
            "on ',': 'when', 'amount', 'category'); map them with --columns, e.g. --columns "
            "date=HEADER,amount=HEADER\n",
        ),
        (
            "date;amount;category;description\n2026-03-01;1\n",
            "Error: empty.csv has 1 bad row; nothing was imported:\n"
            "  line 2: has 2 fields but the header has 4 (quote fields that contain the "
            "delimiter)\n",
        ),
    ],
)
def test_header_problems(backend: Backend, tmp_path: Path, content: str, message: str) -> None:
    result = backend.invoke(["import", str(write(tmp_path / "empty.csv", content))])
    assert (result.exit_code, result.stderr) == (2, message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--columns", "date"], "'date' is not FIELD=HEADER (e.g. date='Booking date')"),
        (["--columns", "when=Date"], "'when' is not a field; use date, amount, outflow"),
        (["--date-format", "dd.mm.yyyy"], "'dd.mm.yyyy' has no % directive"),
    ],
)
def test_bad_options_exit_2(
    backend: Backend, tmp_path: Path, args: list[str], message: str
) -> None:
    result = backend.invoke(["import", str(write(tmp_path / "a.csv", HEADER)), *args])
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (
            "date,amount,category\n2026-03-01,1,Food\n",
            ["--columns", "description=Notes"],
            "Error: a.csv has no column 'Notes' (its header, split on ',', has 'date', "
            "'amount', 'category'): map it with --columns description=HEADER\n",
        ),
        (
            HEADER + '2026-03-01,"1,5",Food,x\n',
            [],
            "Error: a.csv has 1 bad row; nothing was imported:\n"
            "  line 2, column amount: '1,5' is not an amount (for a decimal comma like 12,50 "
            "use --decimal-comma)\n",
        ),
        (
            HEADER + "2026-03-01,12.5,Food,x\n",
            ["--decimal-comma"],
            "Error: a.csv has 1 bad row; nothing was imported:\n"
            "  line 2, column amount: '12.5' is not an amount with --decimal-comma (use 12,50)\n",
        ),
        (
            "2026-03-01,1,lunch\n2026-03-02,2,dinner\n",
            [],
            "Error: a.csv: line 1 looks like data, not a header; for a file without a header "
            "use --no-header with --columns date=1,amount=2,description=3 (positions)\n",
        ),
        (
            "date,amount,type,description\n2026-03-01,1,X,lunch\n",
            ["--columns", "direction=type"],
            "Error: a.csv has 1 bad row; nothing was imported:\n"
            "  line 2, column direction: 'X' is neither debit nor credit (name the money-out "
            "value with --outflow-value)\n",
        ),
        (
            "date,amount,description\n2026 March 1st,1,x\n",
            [],
            "Error: a.csv: '2026 March 1st' is not a date I can read: give its format with "
            "--date-format (e.g. --date-format %d.%m.%Y)\n",
        ),
    ],
)
def test_refusals_name_the_import_flags(
    backend: Backend, tmp_path: Path, content: str, args: list[str], message: str
) -> None:
    """The importer names options by keyword; the command line shows them as flags."""
    first_run(backend)
    before = backend.snapshot()
    result = backend.invoke(["import", str(write(tmp_path / "a.csv", content)), *args])
    assert (result.exit_code, result.stderr) == (2, message)
    assert backend.snapshot() == before


def test_unknown_categories_refused_or_created(backend: Backend, tmp_path: Path) -> None:
    first_run(backend)
    before = backend.snapshot()
    csv_file = write(
        tmp_path / "new.csv",
        HEADER + "2026-03-01,1,Groceries,a\n2026-03-01,2,rent,b\n2026-03-02,3,GROCERIES,c\n",
    )
    refused = backend.invoke(["import", str(csv_file)])
    assert refused.exit_code == 1
    assert refused.stderr == (
        "Error: new.csv uses 2 unknown categories: Groceries, rent; add them with "
        "`budget category add NAME` or import with --create-categories; nothing was imported\n"
    )
    assert backend.snapshot() == before

    dry = backend.invoke(["import", str(csv_file), "--create-categories", "--dry-run"])
    assert dry.exit_code == 0, dry.stderr
    assert dry.stderr == (
        "Would create categories: Groceries, rent.\n"
        "Dry run of new.csv: 3 new, 0 already present (3 rows); nothing was written.\n"
    )
    assert backend.snapshot() == before

    created = backend.invoke(["import", str(csv_file), "--create-categories"])
    assert created.exit_code == 0, created.stderr
    assert created.stderr.splitlines()[0] == "Created categories: Groceries, rent."
    assert expenses(backend) == [
        ("2026-03-01", "1", "Groceries", "a"),
        ("2026-03-01", "2", "rent", "b"),
        ("2026-03-02", "3", "Groceries", "c"),
    ]


def test_dry_run_on_an_empty_database_writes_nothing(backend: Backend, tmp_path: Path) -> None:
    before = backend.snapshot()
    csv_file = write(tmp_path / "a.csv", HEADER + "2026-03-01,1,Food,a\n")
    result = backend.invoke(["import", str(csv_file), "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "Dry run of a.csv: 1 new, 0 already present (1 rows); nothing was written.\n"
    )
    assert backend.snapshot() == before


def test_reimport_adds_nothing_and_identical_rows_are_kept(
    backend: Backend, tmp_path: Path
) -> None:
    twice = HEADER + "2026-03-01,5,Food,Coffee\n2026-03-01,5,Food,Coffee\n"
    first = write(tmp_path / "first.csv", twice)
    assert backend.invoke(["import", str(first)]).exit_code == 0
    again = backend.invoke(["import", str(first)])
    assert again.stderr.splitlines()[-1] == (
        "Imported first.csv: 0 new, 2 already present (2 rows)."
    )
    # A longer statement covering the same day: only the third coffee is new.
    longer = write(tmp_path / "longer.csv", twice + "2026-03-01,5,food,Coffee \n")
    result = backend.invoke(["import", str(longer)])
    assert result.stderr.splitlines()[-1] == (
        "Imported longer.csv: 1 new, 2 already present (3 rows)."
    )
    assert backend.scalar("SELECT count(*) FROM expenses") == 3
    keys = [row[0] for row in backend.rows("SELECT idempotency_key FROM expenses ORDER BY id")]
    assert keys == [fingerprint(dt.date(2026, 3, 1), 500, "Coffee", n) for n in (1, 2, 3)]


def test_reimport_under_another_category_adds_nothing(backend: Backend, tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", HEADER + "2026-03-01,5,Food,Coffee\n")
    assert backend.invoke(["import", str(first)]).exit_code == 0
    again = backend.invoke(["import", str(first), "--category", "Transport"])
    assert again.exit_code == 0, again.stderr
    assert again.stderr.splitlines()[-1] == "Imported a.csv: 0 new, 1 already present (1 rows)."


def test_large_file_bad_last_row_then_import_then_reimport(
    backend: Backend, tmp_path: Path
) -> None:
    rows = generated_rows(49_998)
    bad = write(tmp_path / "large.csv", HEADER + rows + "2026-02-30,1,Food,late\n")
    before = backend.snapshot()
    result = backend.invoke(["import", str(bad)])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: large.csv has 1 bad row; nothing was imported:\n"
        "  line 50000, column date: '2026-02-30' is not a real date\n"
    )
    assert backend.snapshot() == before

    good = write(tmp_path / "large.csv", HEADER + rows + "2026-02-28,1,Food,late\n")
    result = backend.invoke(["import", str(good)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "Imported large.csv: 49999 new, 0 already present (49999 rows)."
    )
    assert backend.scalar("SELECT count(*) FROM expenses") == 49_999
    total_cents = backend.scalar("SELECT sum(amount) FROM expenses")
    assert total_cents == sum((1 + i % 997) * 100 + i % 100 for i in range(49_998)) + 100

    again = backend.invoke(["import", str(good)])
    assert again.stderr.splitlines()[-1] == (
        "Imported large.csv: 0 new, 49999 already present (49999 rows)."
    )
    assert backend.scalar("SELECT count(*) FROM expenses") == 49_999


def _read_position(pid: int, path: Path) -> int | None:
    """How far process `pid` has read into `path` (Linux /proc), None if not open."""
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        for fd in fd_dir.iterdir():
            try:
                if os.readlink(fd) == str(path):
                    info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
                    return int(info.split("pos:")[1].split()[0])
            except OSError:
                continue
    except OSError:
        return None
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fdinfo").exists(), reason="needs Linux /proc")
def test_killed_half_way_imports_nothing(backend: Backend, tmp_path: Path) -> None:
    path = write(tmp_path / "big.csv", HEADER + generated_rows(200_000))
    size = path.stat().st_size
    before = backend.snapshot()
    process = subprocess.Popen(
        [sys.executable, "-m", "budget_tracker", "import", str(path)],
        env={**os.environ, **backend.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    position = 0
    while process.poll() is None and time.monotonic() < deadline:
        position = _read_position(process.pid, path) or 0
        if position >= size // 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, stderr.decode()
    assert position >= size // 2
    assert backend.snapshot() == before
    # No lock or staging table is left behind: a new import works.
    small = write(tmp_path / "small.csv", HEADER + "2026-03-01,1,Food,after\n")
    result = backend.invoke(["import", str(small)])
    assert result.exit_code == 0, result.stderr
    assert backend.scalar("SELECT count(*) FROM expenses") == 1


# The reading loop parses plain amounts with its own regex for speed; it must agree with
# money.parse_amount on every text (the slow path it falls back to).
@given(
    st.one_of(
        st.from_regex(r"-?\d{1,9}(\.\d{0,3})?", fullmatch=True),
        st.text(alphabet="0123456789.,-+ ", max_size=12),
    )
)
def test_fast_amount_path_agrees_with_parse_amount(text: str) -> None:
    match = _FAST_AMOUNT.fullmatch(text)
    if match is None or match[1]:
        return
    try:
        expected = parse_amount(text)
    except AmountError:
        expected = None
    _, whole, fraction = match.groups()
    cents = int(whole) * 100 + (
        int(fraction) * (10 if len(fraction) == 1 else 1) if fraction else 0
    )
    assert (Decimal(cents) / 100 if cents else None) == expected


def test_reader_streams_rows_with_fingerprints(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", HEADER + "2026-03-01,5,Food,Coffee\n")
    source = open_source(path)
    reader = _RowReader(source, ImportOptions(), None)
    (row,) = list(reader.rows())
    source.close()
    line, iso, cents, key, description, stem = row
    assert (line, iso, cents, key, description) == (2, "2026-03-01", 500, "food", "Coffee")
    assert f"{stem}:1" == fingerprint(dt.date(2026, 3, 1), 500, "Coffee", 1)
    assert len(f"{stem}:999999999") == 64


def test_new_ids_follow_the_file_order(backend: Backend, tmp_path: Path) -> None:
    # PostgreSQL inserts in fingerprint order (index locality) but draws ids in file
    # order; same-day rows must come back from an export in the order the file had them.
    descriptions = [f"row {n}" for n in range(40)]
    rows = "".join(f"2026-03-01,{n + 1},Food,{text}\n" for n, text in enumerate(descriptions))
    result = backend.invoke(["import", str(write(tmp_path / "day.csv", HEADER + rows))])
    assert result.exit_code == 0, result.stderr
    stored = [row[0] for row in backend.rows("SELECT description FROM expenses ORDER BY id")]
    assert stored == descriptions
    again = backend.invoke(["import", str(write(tmp_path / "day.csv", HEADER + rows))])
    assert again.stderr.splitlines()[-1] == "Imported day.csv: 0 new, 40 already present (40 rows)."
    last = backend.scalar("SELECT max(id) FROM expenses")
    more = write(tmp_path / "more.csv", HEADER + "2026-03-02,1,Food,next\n")
    assert backend.invoke(["import", str(more)]).exit_code == 0
    # The re-import drew no ids: the next new row follows the last one directly.
    assert backend.scalar("SELECT max(id) FROM expenses") == last + 1
