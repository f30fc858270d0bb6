"""The one function that masks passwords in text about to be printed or logged.

Every path that shows a URL, a libpq connection string or a driver message runs it:
`config.mask_url`, `driver_errors.first_line`, the CLI's error line and `--debug`
traceback, and a filter on every log record (`cli.state`). It imports nothing heavy
(not even `logging`), so the CLI can load it at start-up.
"""

from __future__ import annotations

import re

MASK = "***"

# `scheme://user:password@`: the password runs to the token's last `@` (an unencoded `@`
# in a password must not leave its tail visible).
_URL_PASSWORD = re.compile(r"(://[^:/@\s'\"]*:)[^\s'\"]*@")
# `password=...` in libpq connection strings and URL query strings, quoted or not.
_KEYWORD_PASSWORD = re.compile(
    r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&]+)", re.IGNORECASE
)


def scrub(text: str) -> str:
    """`text` with anything shaped like a password in a URL or connection string masked."""
    return _KEYWORD_PASSWORD.sub(rf"\1{MASK}", _URL_PASSWORD.sub(rf"\1{MASK}@", text))
