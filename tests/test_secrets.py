"""No form of a password ever appears in output: a table of password shapes through every path.

Each password is given the ways a user might write it — percent-encoded in the URL, pasted
raw into the URL, as a `?password=` parameter, and as a libpq keyword string — and driven
through a failing connection (PgBouncer rejects it), `-v`/`-vv` logs, the `--debug`
traceback, `db check` (text and JSON) and `db upgrade`. Nothing may show the password, its
percent-encoded forms, or any distinctive piece of it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy.engine import URL

from budget_tracker.redact import scrub

PASSWORDS = {
    "percent": "Zq7Kp%41Wm9Tr",
    "at": "Zq7Kp@Wm9Tr",
    "colon": "Zq7Kp:Wm9Tr",
    "slash": "Zq7Kp/Wm9Tr",
    "question": "Zq7Kp?Wm9Tr",
    "hash": "Zq7Kp#Wm9Tr",
    "quotes": "Zq7Kp'Wm9\"Tr",
    "spaces": "Zq7Kp Wm9Tr x",
    "non_ascii": "Zq7Kpé€Wm9Tr",
    "mixed": "Zq7Kp@:/?#%Wm9Tr",
}
COMMANDS = (
    ["--debug", "-vv", "report"],
    ["-v", "db", "check"],
    ["db", "check", "--format", "json"],
    ["-vv", "db", "upgrade"],
)


def forms(password: str) -> list[str]:
    """Every way the password could show: as is, encoded, and its distinctive pieces."""
    shown = {password, quote(password, safe=""), quote_plus(password), quote(password)}
    shown.update(piece for piece in re.split(r"[^A-Za-z0-9]+", password) if len(piece) >= 4)
    return sorted(shown)


def database_urls(password: str) -> dict[str, str]:
    encoded = URL.create(
        "postgresql", "budget", password, "127.0.0.1", 6432, "budget_secrets"
    ).render_as_string(hide_password=False)
    escaped = password.replace("\\", "\\\\").replace("'", "\\'")
    return {
        "encoded": encoded,
        "raw": f"postgresql://budget:{password}@127.0.0.1:6432/budget_secrets",
        "query": f"postgresql://budget@127.0.0.1:6432/budget_secrets?password={quote(password)}",
        "keyword_dsn": f"host=127.0.0.1 port=6432 dbname=x user=budget password='{escaped}'",
    }


# Runs every command for every form in one process (start-up dominates on a busy machine):
# each `main` call builds its own settings and database from the environment it is given.
DRIVER = """
import json, os, sys
from budget_tracker.cli import main
for url, args in json.loads(sys.argv[1]):
    os.environ["DATABASE_URL"] = url
    print("=== " + " ".join(args), flush=True)
    print("=== " + " ".join(args), file=sys.stderr, flush=True)
    try:
        main(args, prog_name="budget")
    except SystemExit as exc:
        print("=== exit", exc.code, flush=True)
"""


@pytest.mark.parametrize("shape", sorted(PASSWORDS))
def test_no_form_of_the_password_appears(shape: str, pg_server: None, tmp_path: Path) -> None:
    password = PASSWORDS[shape]
    runs = [(url, args) for url in database_urls(password).values() for args in COMMANDS]
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(runs)],
        env={**os.environ, "BUDGET_RETRY_SECONDS": "0"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    codes = re.findall(r"^=== exit (\S+)$", result.stdout, re.MULTILINE)
    assert len(codes) == len(runs), result.stdout + result.stderr
    assert "0" not in codes  # every run failed (wrong password or invalid URL)
    output = result.stdout + result.stderr
    for secret in forms(password):
        assert secret not in output, (secret, output)
    # Only the --debug runs may show a traceback.
    for section in result.stderr.split("=== ")[1:]:
        if not section.startswith("--debug"):
            assert "Traceback" not in section, section


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:p@ss:w0rd@host/db", "postgresql://u:***@host/db"),
        ("dsn user=u password='a b c' host=h", "dsn user=u password=*** host=h"),
        ('password="a\\"b" host=h', "password=*** host=h"),
        ("url ?password=s3cret&sslmode=require", "url ?password=***&sslmode=require"),
        ("PASSWORD = x1 host", "PASSWORD = *** host"),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected
