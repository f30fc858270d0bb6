"""`budget --help` stays light: no SQLAlchemy, psycopg2 or Alembic import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from budget_tracker.cli import main

HEAVY = ("sqlalchemy", "psycopg2", "alembic")

PROBE = """
import json, sys
from budget_tracker.cli import main
try:
    main(sys.argv[1:], prog_name="budget")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {heavy})), file=sys.stderr)
"""


def command_paths() -> list[list[str]]:
    paths: list[list[str]] = [[]]
    for name, command in main.commands.items():
        paths.append([name])
        for sub in getattr(command, "commands", {}):
            paths.append([name, sub])
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "budget")
def test_help_imports_no_database_library(path: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=set(HEAVY)), *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Usage:" in result.stdout
    loaded = json.loads(result.stderr.strip().splitlines()[-1])
    assert loaded == []


def test_python_dash_m_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "budget_tracker", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("budget, version ")
