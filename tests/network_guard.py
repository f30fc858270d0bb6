"""Test-session guard: nothing in the suite may reach a host that is not loopback.

Python sockets are watched through an audit hook (`socket.connect`, `socket.getaddrinfo`,
...), which sees every connect and name lookup made from Python. libpq opens its sockets
in C, out of the hook's sight, so `psycopg2.connect` is wrapped to check its host and
hostaddr before connecting. A violation raises `NonLoopbackConnection` (an `OSError`, so
code that handles network errors fails the same way it would offline), and is remembered
so that the session fails even if the code under test swallowed the error.

Subprocesses the tests start get only loopback URLs from the tests themselves.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

import psycopg2
import psycopg2.extensions

ALLOWED_NAMES = frozenset({"localhost", "localhost.localdomain", ""})
violations: list[str] = []
_installed = False


class NonLoopbackConnection(OSError):
    """The test suite tried to reach a non-loopback host."""


def is_loopback_host(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host is None:
        return True
    text = str(host).strip().strip("[]")
    if text.lower() in ALLOWED_NAMES or text.startswith("/"):
        return True  # a name that is loopback by definition, or a Unix socket directory
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False  # any other name would need a DNS query: not allowed either


def _refuse(what: str) -> None:
    violations.append(what)
    raise NonLoopbackConnection(f"test suite tried to reach a non-loopback host: {what}")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback_host(address[0]):
            _refuse(f"socket.connect {address!r}")
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        host = args[0]
        if host is not None and not is_loopback_host(host):
            _refuse(f"{event} {host!r}")


def _libpq_hosts(dsn: str | None, kwargs: dict[str, Any]) -> list[str]:
    params: dict[str, Any] = dict(psycopg2.extensions.parse_dsn(dsn)) if dsn else {}
    params.update({key: value for key, value in kwargs.items() if value is not None})
    hosts: list[str] = []
    for key in ("host", "hostaddr"):
        if params.get(key):
            hosts.extend(part.strip() for part in str(params[key]).split(","))
    return hosts


def install() -> None:
    """Install both guards once per process (idempotent: audit hooks cannot be removed)."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.addaudithook(_audit)
    real_connect = psycopg2.connect

    def guarded_connect(dsn: str | None = None, *args: Any, **kwargs: Any) -> Any:
        for host in _libpq_hosts(dsn, kwargs):
            if not is_loopback_host(host):
                _refuse(f"psycopg2.connect host={host!r}")
        return real_connect(dsn, *args, **kwargs)

    psycopg2.connect = guarded_connect
