"""`budget export`: streamed, deterministic, and read back exactly by `budget import`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from budget_tracker.models import BudgetTransfer, Category, Expense, User
from budget_tracker.money import MAX_AMOUNT
from budget_tracker.rules import check_description
from tests.cli_helpers import error_text
from tests.conftest import Backend

HEADER = "date,amount,category,description\n"


def seed(backend: Backend) -> int:
    """The default user with Food and Rent, and four expenses out of date order."""
    with backend.database.transaction() as session:
        user = User(email="me@localhost", name="Me")
        session.add(user)
        session.flush()
        food = Category(user_id=user.id, name="Food", monthly_budget=Decimal("100"))
        rent = Category(user_id=user.id, name="Rent", monthly_budget=Decimal("900"))
        session.add_all([food, rent])
        session.flush()
        rows = [
            (food, "12.50", dt.date(2026, 3, 2), 'Lunch, "good"'),
            (rent, "900", dt.date(2026, 3, 1), "March"),
            (food, "3.10", dt.date(2026, 3, 2), ""),
            (food, "3.10", dt.date(2026, 4, 1), "two;lines"),
        ]
        for category, amount, day, description in rows:
            session.add(
                Expense(
                    user_id=user.id,
                    category_id=category.id,
                    amount=Decimal(amount),
                    spent_on=day,
                    description=description,
                )
            )
        session.add(
            BudgetTransfer(
                user_id=user.id,
                from_category_id=rent.id,
                to_category_id=food.id,
                amount=Decimal("25"),
                month=dt.date(2026, 3, 1),
                note="more food",
            )
        )
        session.flush()
        return user.id


EXPORTED = (
    HEADER + "2026-03-01,900.00,Rent,March\n"
    '2026-03-02,12.50,Food,"Lunch, ""good"""\n'
    "2026-03-02,3.10,Food,\n"
    "2026-04-01,3.10,Food,two;lines\n"
)


def wipe(backend: Backend) -> None:
    with backend.database.transaction() as session:
        for table in ("budget_transfers", "expenses", "categories", "users"):
            session.execute(text(f"DELETE FROM {table}"))


def test_csv_export_is_ordered_by_date_then_id(backend: Backend) -> None:
    seed(backend)
    result = backend.invoke(["export"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == EXPORTED
    assert result.stderr == ""


def test_date_range_is_inclusive(backend: Backend) -> None:
    seed(backend)
    result = backend.invoke(["export", "--from", "2026-03-02", "--to", "2026-03-31"])
    assert (
        result.stdout == HEADER + '2026-03-02,12.50,Food,"Lunch, ""good"""\n2026-03-02,3.10,Food,\n'
    )


def test_from_after_to_is_bad_input(backend: Backend) -> None:
    result = backend.invoke(["export", "--from", "2026-04-01", "--to", "2026-03-01"])
    assert result.exit_code == 2
    assert "--from 2026-04-01 is after --to 2026-03-01" in result.stderr


def test_json_export_with_transfers(backend: Backend) -> None:
    seed(backend)
    result = backend.invoke(["export", "--format", "json", "--transfers", "--to", "2026-03-31"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["expenses"] == [
        {"date": "2026-03-01", "amount": "900.00", "category": "Rent", "description": "March"},
        {
            "date": "2026-03-02",
            "amount": "12.50",
            "category": "Food",
            "description": 'Lunch, "good"',
        },
        {"date": "2026-03-02", "amount": "3.10", "category": "Food", "description": ""},
    ]
    (transfer,) = document["transfers"]
    assert {key: value for key, value in transfer.items() if key != "created_at"} == {
        "id": "1",
        "month": "2026-03",
        "from_category": "Rent",
        "to_category": "Food",
        "amount": "25.00",
        "note": "more food",
        "reverses_id": "",
    }


def test_json_export_of_nothing(backend: Backend) -> None:
    result = backend.invoke(["export", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"expenses": []}
    assert "Welcome" not in result.stderr  # reading creates no user


def test_output_file_and_transfers_file(backend: Backend, tmp_path: Path) -> None:
    seed(backend)
    target = tmp_path / "history.csv"
    result = backend.invoke(["export", "-o", str(target), "--transfers"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    transfers = tmp_path / "history.transfers.csv"
    assert result.stderr == f"Exported 4 expenses to {target} and 1 transfers to {transfers}.\n"
    assert target.read_text(encoding="utf-8") == EXPORTED
    rows = list(csv.reader(io.StringIO(transfers.read_text(encoding="utf-8"))))
    assert rows[0] == [
        "id",
        "month",
        "from_category",
        "to_category",
        "amount",
        "note",
        "reverses_id",
        "created_at",
    ]
    assert rows[1][:7] == ["1", "2026-03", "Rent", "Food", "25.00", "more food", ""]
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


def test_csv_transfers_need_an_output_file(backend: Backend) -> None:
    result = backend.invoke(["export", "--transfers"])
    assert result.exit_code == 2
    assert error_text(result) == (
        "Error: --transfers with --format csv needs -o FILE (transfers go to a second "
        "file, FILE.transfers.csv)\n"
    )


def test_export_import_export_round_trip(backend: Backend, tmp_path: Path) -> None:
    seed(backend)
    first = tmp_path / "first.csv"
    assert backend.invoke(["export", "-o", str(first)]).exit_code == 0
    # Expenses entered without an import have no row fingerprint: importing an export of
    # them into the same database adds them again (documented in the README).
    again = backend.invoke(["import", str(first)])
    assert again.stderr.splitlines()[-1] == "Imported first.csv: 4 new, 0 already present (4 rows)."
    wipe(backend)
    imported = backend.invoke(["import", str(first), "--create-categories"])
    assert imported.exit_code == 0, imported.stderr
    assert backend.invoke(["export"]).stdout == first.read_text(encoding="utf-8")
    reimported = backend.invoke(["import", str(first)])
    assert reimported.stderr.splitlines()[-1] == (
        "Imported first.csv: 0 new, 4 already present (4 rows)."
    )


CATEGORY_NAMES = ("Food", "Café au lait", "Rent, flat", 'Say "hi"', "Tab;semi")
# Any text a description may hold (one line, no control or invisible format characters).
descriptions = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp")),
        st.sampled_from(',;" '),
    ),
    max_size=60,
).map(check_description)
rows_strategy = st.lists(
    st.tuples(
        st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2099, 12, 31)),
        st.decimals(min_value=Decimal("0.01"), max_value=MAX_AMOUNT, places=2),
        st.sampled_from(CATEGORY_NAMES),
        descriptions,
    ),
    max_size=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy, duplicate_first=st.booleans())
def test_generated_rows_round_trip_exactly(
    backend: Backend,
    tmp_path: Path,
    rows: list[tuple[dt.date, Decimal, str, str]],
    duplicate_first: bool,
) -> None:
    if duplicate_first and rows:
        rows = [rows[0], *rows]
    wipe(backend)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["date", "amount", "category", "description"])
    writer.writerows(
        [(day.isoformat(), str(amount), name, text_) for day, amount, name, text_ in rows]
    )
    source = tmp_path / "generated.csv"
    source.write_text(buffer.getvalue(), encoding="utf-8", newline="")

    imported = backend.invoke(["import", str(source), "--create-categories"])
    assert imported.exit_code == 0, imported.stderr
    assert imported.stderr.splitlines()[-1] == (
        f"Imported generated.csv: {len(rows)} new, 0 already present ({len(rows)} rows)."
    )

    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow(["date", "amount", "category", "description"])
    for day, amount, name, text_ in sorted(rows, key=lambda row: row[0]):
        writer.writerow([day.isoformat(), f"{amount:.2f}", name, text_])
    exported = backend.invoke(["export"]).stdout
    assert exported == expected.getvalue()

    exported_file = tmp_path / "exported.csv"
    exported_file.write_text(exported, encoding="utf-8", newline="")
    again = backend.invoke(["import", str(exported_file)])
    assert again.stderr.splitlines()[-1] == (
        f"Imported exported.csv: 0 new, {len(rows)} already present ({len(rows)} rows)."
    )


# --- where -o writes ---------------------------------------------------------------------


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A directory for exports alone (a SQLite database may sit in tmp_path)."""
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def test_a_regular_file_is_replaced_keeping_its_permission_bits(
    backend: Backend, out: Path
) -> None:
    seed(backend)
    target = out / "history.csv"
    target.write_text("old\n")
    target.chmod(0o640)
    result = backend.invoke(["export", "-o", str(target)])
    assert result.exit_code == 0, result.stderr
    assert target.read_text(encoding="utf-8") == EXPORTED
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [path.name for path in out.iterdir()] == ["history.csv"]


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that lets a plainly created file be read by everyone (0644)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_new_export_files_are_private_and_existing_ones_keep_their_bits(
    backend: Backend, out: Path
) -> None:
    seed(backend)
    target = out / "history.csv"
    result = backend.invoke(["export", "-o", str(target), "--transfers"])
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "history.transfers.csv").stat().st_mode) == 0o600
    target.chmod(0o644)
    (out / "history.transfers.csv").chmod(0o644)
    result = backend.invoke(["export", "-o", str(target), "--transfers"])
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert stat.S_IMODE((out / "history.transfers.csv").stat().st_mode) == 0o644


def test_a_symlink_stays_a_link_and_its_target_is_replaced(backend: Backend, out: Path) -> None:
    seed(backend)
    real = out / "real.csv"
    real.write_text("old\n")
    real.chmod(0o604)
    link = out / "link.csv"
    link.symlink_to(real)
    result = backend.invoke(["export", "-o", str(link)])
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text(encoding="utf-8") == EXPORTED
    assert stat.S_IMODE(real.stat().st_mode) == 0o604


def test_a_fifo_is_written_into_not_replaced(backend: Backend, out: Path) -> None:
    seed(backend)
    fifo = out / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = backend.invoke(["export", "-o", str(fifo)])
    reader.join(30)
    assert result.exit_code == 0, result.stderr
    assert received == [EXPORTED.encode()]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [path.name for path in out.iterdir()] == ["pipe"]


def device(directory: Path, name: str, minor: int) -> Path:
    """A copy of a memory device (`null` is 1,3, `full` is 1,7) under `directory`.

    The tests write to copies, never to /dev itself: were `-o` ever to replace what it
    names again, it would destroy only the copy.
    """
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root (CI runs as root)")
    node = directory / name
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    return node


def is_device(path: Path, minor: int) -> bool:
    status = path.lstat()
    return stat.S_ISCHR(status.st_mode) and status.st_rdev == os.makedev(1, minor)


@pytest.fixture(autouse=True)
def _dev_null_survives() -> Iterator[None]:
    yield
    assert is_device(Path("/dev/null"), 3)


def test_a_device_is_written_into_not_replaced(backend: Backend, out: Path) -> None:
    seed(backend)
    null = device(out, "null", 3)
    result = backend.invoke(["export", "-o", str(null), "--transfers"])
    assert result.exit_code == 0, result.stderr
    assert is_device(null, 3)


def test_dash_is_stdout(backend: Backend, out: Path) -> None:
    seed(backend)
    result = backend.invoke(["export", "-o", "-"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, EXPORTED, "")
    assert list(out.iterdir()) == []


def test_a_missing_directory_is_one_line(backend: Backend, out: Path) -> None:
    seed(backend)
    target = out / "nowhere" / "history.csv"
    result = backend.invoke(["export", "-o", str(target)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"Error: cannot write {target}: no directory {target.parent}\n"


def test_a_full_device_is_one_line(backend: Backend, out: Path) -> None:
    seed(backend)
    full = device(out, "full", 7)
    result = backend.invoke(["export", "-o", str(full)])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"Error: cannot write {full}: No space left on device\n"
    assert is_device(full, 7)


def test_a_failed_write_keeps_the_old_file(backend: Backend, out: Path) -> None:
    """The disk fills up mid-export (a file size limit, in a real `budget` process)."""
    seed(backend)
    with backend.database.transaction() as session:
        session.execute(
            text(
                "INSERT INTO expenses (user_id, category_id, amount, spent_on, description) "
                "SELECT user_id, id, 100, :day, :text FROM categories"
            ),
            {"day": dt.date(2026, 5, 1), "text": "x" * 150},
        )
        for _ in range(6):  # 2 categories * 2**6 = 128 rows of ~170 bytes: > 16 KiB
            session.execute(
                text(
                    "INSERT INTO expenses (user_id, category_id, amount, spent_on, description)"
                    " SELECT user_id, category_id, amount, spent_on, description FROM expenses"
                    " WHERE spent_on = :day"
                ),
                {"day": dt.date(2026, 5, 1)},
            )
    target = out / "history.csv"
    target.write_text("old\n")

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))

    done = subprocess.run(
        [sys.executable, "-m", "budget_tracker", "export", "-o", str(target)],
        env={**os.environ, **backend.env},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_file_size,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"Error: cannot write {target}: File too large; {target} was left as it was\n"
    )
    assert target.read_text() == "old\n"
    assert [path.name for path in out.iterdir()] == ["history.csv"]


# --- backup FILE goes where `-o` goes, by the same rule ----------------------------------


def test_backup_replaces_a_regular_file_and_follows_a_symlink(backend: Backend, out: Path) -> None:
    seed(backend)
    real = out / "real.jsonl"
    real.write_text("old\n")
    real.chmod(0o640)
    link = out / "link.jsonl"
    link.symlink_to(real)
    result = backend.invoke(["backup", str(link)])
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text(encoding="utf-8").startswith("{")
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(path.name for path in out.iterdir()) == ["link.jsonl", "real.jsonl"]


def test_backup_writes_into_a_device_and_never_replaces_it(backend: Backend, out: Path) -> None:
    seed(backend)
    null, full = device(out, "null", 3), device(out, "full", 7)
    result = backend.invoke(["backup", str(null)])
    assert result.exit_code == 0, result.stderr
    assert is_device(null, 3)
    result = backend.invoke(["backup", str(full)])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"Error: cannot write {full}: No space left on device\n"
    assert is_device(full, 7)


def test_backup_to_a_missing_directory_is_one_line(backend: Backend, out: Path) -> None:
    seed(backend)
    target = out / "nowhere" / "budget.jsonl"
    result = backend.invoke(["backup", str(target)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"Error: cannot write {target}: no directory {target.parent}\n"
