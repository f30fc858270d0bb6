"""Paths the user may not read or write: one line, the documented exit code, nothing written.

Root reads and writes any file whatever its mode, so a test run as root would pass these
cases without the product ever meeting a permission error. Each command here therefore
runs the real CLI in a subprocess as an unprivileged user: uid and gid 65534 (`nobody`)
when the suite runs as root, otherwise the (already unprivileged) user running it.
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from budget_tracker.errors import EXIT_DB_UNAVAILABLE
from tests.cli_helpers import one_error_line

NOBODY = 65534
EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_CONFIG = 1, 2, 5
CSV = "date,amount,category,description\n2026-03-02,4.50,Food,Coffee\n"
INHERITED = ("DATABASE_URL", "DATABASE_URL_UNPOOLED", "BUDGET_USER", "BUDGET_ENV_FILE")


def _unprivileged() -> None:
    """In the child, before exec: become nobody (only when the suite runs as root)."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


@functools.cache
def python() -> tuple[tuple[str, ...], dict[str, str]]:
    """A Python the unprivileged user may start, and the environment that finds this
    checkout's packages with it.

    The test's own interpreter, when that user can run it; otherwise (it may live under
    root's home) the system's interpreter of the same version, pointed at the same
    source tree and installed packages.
    """
    try:
        subprocess.run([sys.executable, "-c", "pass"], check=True, preexec_fn=_unprivileged)
        return (sys.executable,), {}
    except (PermissionError, subprocess.CalledProcessError):
        pass
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if system is None:
        pytest.skip(f"no {version} that an unprivileged user may run")
    source = Path(__file__).resolve().parent.parent
    paths = os.pathsep.join([str(source), *site.getsitepackages()])
    return (system, "-s"), {"PYTHONPATH": paths}


@pytest.fixture
def home() -> Iterator[Path]:
    """A directory the unprivileged user owns: its home, working directory and database."""
    path = Path(tempfile.mkdtemp(prefix="budget-permissions-"))
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=False)


def own(path: Path) -> Path:
    """Give `path` to the unprivileged user (the test itself may be root)."""
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    return path


def budget(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    interpreter, extra = python()
    env = {key: value for key, value in os.environ.items() if key not in INHERITED}
    env.update(extra)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        BUDGET_DB_PATH=str(home / "data" / "budget.db"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return subprocess.run(
        [*interpreter, "-m", "budget_tracker", *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_unprivileged,
    )


def count(home: Path) -> str:
    result = budget(home, "expenses", "--format", "csv")
    assert result.returncode == 0, result.stderr
    return str(len(result.stdout.splitlines()) - 1)


def unreadable(path: Path, text: str = CSV) -> Path:
    path.write_text(text)
    own(path).chmod(0)
    return path


def test_the_commands_really_run_unprivileged(home: Path) -> None:
    # The control for every test below: the child cannot read a file of mode 0, as root could.
    secret = unreadable(home / "secret.txt", "x")
    interpreter, extra = python()
    probe = subprocess.run(
        [*interpreter, "-c", f"open({str(secret)!r}).read()"],
        env={**os.environ, **extra},
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=_unprivileged,
    )
    assert probe.returncode != 0
    assert "PermissionError" in probe.stderr


def test_an_unreadable_import_file(home: Path) -> None:
    assert budget(home, "add-expense", "1", "Food").returncode == 0
    data = unreadable(home / "data.csv")
    result = budget(home, "import", "data.csv")
    assert result.returncode == EXIT_BAD_INPUT
    assert (
        one_error_line(result)
        == "Error: Invalid value for 'FILE': File 'data.csv' is not readable."
    )
    assert count(home) == "1"
    data.chmod(0o600)  # the same file, readable: imported
    assert budget(home, "import", "data.csv").returncode == 0
    assert count(home) == "2"


def test_an_unreadable_settings_file(home: Path) -> None:
    settings = unreadable(home / ".env", "BUDGET_USER=ana@example.com\n")
    result = budget(home, "report")
    assert result.returncode == EXIT_CONFIG
    assert one_error_line(result) == f"Error: cannot read {settings} (Permission denied)"
    assert not (home / "data").exists()


def test_an_export_into_a_folder_that_cannot_be_written(home: Path) -> None:
    assert budget(home, "add-expense", "1", "Food").returncode == 0
    out = home / "out"
    out.mkdir()
    own(out)
    old = out / "history.csv"
    old.write_text("old\n")
    own(old)
    out.chmod(0o500)
    result = budget(home, "export", "-o", "out/history.csv")
    assert result.returncode == EXIT_REFUSED
    assert one_error_line(result).startswith(
        "Error: cannot write out/history.csv: Permission denied"
    )
    assert old.read_text() == "old\n"
    assert sorted(path.name for path in out.iterdir()) == ["history.csv"]
    out.chmod(0o700)  # writable: exported
    assert budget(home, "export", "-o", "out/history.csv").returncode == 0
    assert "Food" in old.read_text()


def test_a_database_file_that_cannot_be_read(home: Path) -> None:
    assert budget(home, "add-expense", "1", "Food").returncode == 0
    database = home / "data" / "budget.db"
    database.chmod(0)
    result = budget(home, "report")
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert one_error_line(result) == (
        f"Error: cannot read and write the database file {database} (permission denied): "
        "check its owner and mode"
    )


def test_a_database_folder_that_cannot_be_written(home: Path) -> None:
    folder = home / "data"
    folder.mkdir()
    own(folder)
    folder.chmod(0o500)
    result = budget(home, "add-expense", "1", "Food")
    assert result.returncode == EXIT_DB_UNAVAILABLE
    assert one_error_line(result) == (
        f"Error: cannot create the database file {folder / 'budget.db'} (Permission denied): "
        "set BUDGET_DB_PATH to a writable location"
    )
    assert list(folder.iterdir()) == []
