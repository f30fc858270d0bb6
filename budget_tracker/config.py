"""All configuration, read once from the environment and `.env`.

`load_settings()` is the only place that reads environment variables. Real environment
variables win over `.env`, which is read from the current directory only (or from the
file `BUDGET_ENV_FILE` names); the CLI loads it before parsing options, so a value in
`.env` counts for every option that reads the environment. A `.env` that cannot be read
or parsed completely is a configuration error naming the file and the line. Every value
is validated here, so a bad setting fails before any connection is attempted, with a
message that names the variable and never any part of a password.

SQLAlchemy is imported only by the functions that build URLs, so the CLI can load `.env`
at start-up without it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from budget_tracker.errors import ConfigError
from budget_tracker.redact import scrub

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

APP_NAME = "budget-tracker"
SQLITE_FILE_NAME = "budget.db"

# sslmode values that guarantee TLS; `prefer`/`allow`/`disable` may fall back to plain text.
SECURE_SSLMODES = frozenset({"require", "verify-ca", "verify-full"})
SSLMODES = frozenset({"disable", "allow", "prefer", *SECURE_SSLMODES})
ENV_FILE_VARIABLE = "BUDGET_ENV_FILE"

# Neon suspends an idle compute after 5 minutes and closes its connections. Recycling
# pooled connections after 4 minutes means the pool rarely hands out a connection the
# server has already dropped; the idle-connection ping (`engine.ping_idle_connections`)
# catches the rest.
DEFAULT_POOL_RECYCLE = 240

# The connections that die in the pool are idle ones (Neon closes them when the compute
# suspends after 5 idle minutes, or on a restart). One handed back a moment ago is alive
# in all but a rare race, which `Database.run` absorbs by retrying the unit of work; so
# only connections idle this long pay the ping's round trip.
DEFAULT_PRE_PING_IDLE = 5.0

ENV_VARS: dict[str, str] = {
    "DATABASE_URL": "App database URL; on Neon the pooled (-pooler) endpoint.",
    "DATABASE_URL_UNPOOLED": "Direct URL for migrations; derived from a Neon pooled URL.",
    "BUDGET_DB_PATH": "SQLite file used when DATABASE_URL is unset.",
    "BUDGET_ENV_FILE": "File to read settings from instead of ./.env.",
    "BUDGET_USER": "E-mail of the user commands act for.",
    "BUDGET_POOL_SIZE": "Connections kept open in the pool (default 5).",
    "BUDGET_MAX_OVERFLOW": "Extra connections beyond the pool size (default 10).",
    "BUDGET_POOL_TIMEOUT": "Seconds to wait for a free pooled connection (default 30).",
    "BUDGET_POOL_RECYCLE": "Seconds before a pooled connection is replaced (default 240).",
    "BUDGET_POOL_PRE_PING": "Test a pooled connection before use: true/false (default true).",
    "BUDGET_POOL_PRE_PING_IDLE": "Seconds idle before a pooled connection is tested (default 5).",
    "BUDGET_CONNECT_TIMEOUT": "Seconds to wait when opening a connection (default 10).",
    "BUDGET_RETRY_SECONDS": "Total seconds to keep retrying transient failures (default 30).",
}


@dataclass(frozen=True)
class PoolSettings:
    size: int = 5
    max_overflow: int = 10
    timeout: float = 30.0
    recycle: int = DEFAULT_POOL_RECYCLE
    pre_ping: bool = True
    pre_ping_idle: float = DEFAULT_PRE_PING_IDLE
    """Only connections idle at least this long are pinged on checkout (0: every reuse)."""
    connect_timeout: int = 10


@dataclass(frozen=True)
class Settings:
    """Validated settings. `database_url` serves the app; `migration_url` serves Alembic."""

    database_url: URL
    migration_url: URL
    pool: PoolSettings = field(default_factory=PoolSettings)
    retry_seconds: float = 30.0
    user_email: str | None = None
    env_file: str | None = None
    direct_url_derived: bool = False
    """True when `migration_url` was derived from a Neon `-pooler` host."""
    sources: tuple[str, ...] = ()
    """Names of the variables that were set (for `budget db check`)."""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_backend_name() == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite or not self.database_url.database:
            return None
        if self.database_url.database == ":memory:":
            return None
        return Path(self.database_url.database)


def load_dotenv_file() -> str | None:
    """Load `.env` (or `BUDGET_ENV_FILE`) into the environment; real variables win.

    Only the current directory is looked at: a `.env` in a parent directory belongs to
    some other project. Returns the file's path, or None when there is none.
    """
    named = os.environ.get(ENV_FILE_VARIABLE, "").strip()
    path = Path(named).expanduser() if named else Path(".env")
    if not named and not path.exists() and not path.is_symlink():
        return None
    where = f"{ENV_FILE_VARIABLE}={path}" if named else str(Path.cwd() / path)
    text = _read_env_file(path, where)
    import io

    from dotenv import load_dotenv
    from dotenv.parser import parse_stream

    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            # The binding's text starts with any blank lines before it.
            original = binding.original.string
            blank = original[: len(original) - len(original.lstrip())].count("\n")
            # Never the line itself: it may hold a password.
            raise ConfigError(
                f"{where}, line {binding.original.line + blank}: cannot parse this line (expected "
                "NAME=value; quote values that contain spaces or #)"
            )
    load_dotenv(stream=io.StringIO(text), override=False)
    return str(path.resolve())


def _read_env_file(path: Path, where: str) -> str:
    if path.is_dir():
        raise ConfigError(f"{where} is a directory, not a settings file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {where} ({exc.strerror})") from None
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ConfigError(f"{where}, line {line}: contains a NUL byte (not a text file?)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{where}, line {line}: not UTF-8 text (save it as UTF-8)") from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting. Pass `environ` to bypass `.env` and `os.environ`."""
    env_file = None
    if environ is None:
        env_file = load_dotenv_file()
        environ = os.environ
    raw_url = _get(environ, "DATABASE_URL")
    raw_direct = _get(environ, "DATABASE_URL_UNPOOLED")
    derived = False
    if raw_url is None:
        if raw_direct is not None:
            raise ConfigError(
                "DATABASE_URL_UNPOOLED is set but DATABASE_URL is not; set both, or neither "
                "to use the local SQLite file"
            )
        app_url = sqlite_url(_sqlite_path(environ))
        migration_url = app_url
    else:
        app_url = parse_database_url(raw_url, "DATABASE_URL")
        if raw_direct is not None:
            migration_url = parse_database_url(raw_direct, "DATABASE_URL_UNPOOLED")
        else:
            direct = derive_direct_url(app_url)
            derived = direct is not None
            migration_url = direct if direct is not None else app_url
            if derived:
                import logging

                logging.getLogger(__name__).info(
                    "DATABASE_URL_UNPOOLED is not set: migrations use %s "
                    "(the pooled host without '-pooler')",
                    migration_url.host,
                )
    pool = PoolSettings(
        size=_int(environ, "BUDGET_POOL_SIZE", 5, minimum=1),
        max_overflow=_int(environ, "BUDGET_MAX_OVERFLOW", 10, minimum=0),
        timeout=_float(environ, "BUDGET_POOL_TIMEOUT", 30.0, minimum=0.1),
        recycle=_int(environ, "BUDGET_POOL_RECYCLE", DEFAULT_POOL_RECYCLE, minimum=-1),
        pre_ping=_bool(environ, "BUDGET_POOL_PRE_PING", True),
        pre_ping_idle=_float(
            environ, "BUDGET_POOL_PRE_PING_IDLE", DEFAULT_PRE_PING_IDLE, minimum=0.0
        ),
        connect_timeout=_int(environ, "BUDGET_CONNECT_TIMEOUT", 10, minimum=1),
    )
    return Settings(
        database_url=app_url,
        migration_url=migration_url,
        pool=pool,
        retry_seconds=_float(environ, "BUDGET_RETRY_SECONDS", 30.0, minimum=0.0),
        user_email=_get(environ, "BUDGET_USER"),
        env_file=env_file,
        direct_url_derived=derived,
        sources=tuple(name for name in ENV_VARS if _get(environ, name) is not None),
    )


def parse_database_url(raw: str, variable: str) -> URL:
    """Parse a PostgreSQL or SQLite URL, mapping `postgres://` and `postgresql://` to psycopg2.

    Query parameters (`sslmode`, `channel_binding`, ...) are kept as given. A PostgreSQL
    host that is not loopback must use TLS (`sslmode=require` or stronger). No message
    quotes the URL: any part of it may be a mistyped password.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw.strip())
        port = url.port
        if "@" in (url.host or ""):
            # An unencoded @ in the password: the rest of the password became the host.
            raise ValueError("@ in host")
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"{variable} is not a valid database URL: the port must be a number, and an @, :, "
            "/, ?, # or % in the user name or password must be percent-encoded (@ as %40)"
        ) from None
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"{variable} has port {port}: a port is a number from 1 to 65535")
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if url.drivername not in ("postgres", "postgresql", "postgresql+psycopg2"):
            raise ConfigError(
                f"{variable} uses driver {url.drivername!r}; only psycopg2 is supported "
                "(use postgresql://)"
            )
        url = url.set(drivername="postgresql+psycopg2")
        sslmode = _query_value(url, "sslmode")
        if sslmode is not None and sslmode not in SSLMODES:
            raise ConfigError(
                f"{variable} has sslmode={sslmode[:20]!r}: use one of "
                f"{', '.join(sorted(SSLMODES))} (require for Neon)"
            )
        _require_tls(url, variable)
        if not url.database:
            raise ConfigError(f"{variable} names no database (add /dbname after the host)")
        return url
    if backend == "sqlite":
        return url.set(drivername="sqlite+pysqlite")
    raise ConfigError(f"{variable} uses {backend!r}; Budget Tracker supports PostgreSQL and SQLite")


def derive_direct_url(pooled: URL) -> URL | None:
    """Neon's direct endpoint is the pooled host without `-pooler` in its first label."""
    host = pooled.host or ""
    first, dot, rest = host.partition(".")
    if pooled.get_backend_name() != "postgresql" or not first.endswith("-pooler"):
        return None
    return pooled.set(host=first.removesuffix("-pooler") + dot + rest)


def is_loopback(host: str | None) -> bool:
    """No host (a Unix socket) or a loopback name or address."""
    if not host or host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def mask_url(url: URL) -> str:
    """The URL as text with the password (also a `?password=` parameter) as `***`.

    The only form of a URL ever printed or logged.
    """
    query = {
        key: ("***" if key.lower() == "password" else value) for key, value in url.query.items()
    }
    return scrub(url.set(query=query).render_as_string(hide_password=True))


def sqlite_url(path: Path) -> URL:
    from sqlalchemy.engine import URL

    return URL.create("sqlite+pysqlite", database=str(path))


def local_sqlite_url(environ: Mapping[str, str] | None = None) -> URL:
    """The embedded SQLite file used when DATABASE_URL is unset (BUDGET_DB_PATH or default)."""
    return sqlite_url(_sqlite_path(os.environ if environ is None else environ))


def _query_value(url: URL, key: str) -> str | None:
    value = url.query.get(key)
    if isinstance(value, tuple):
        return value[-1] if value else None
    return value


def _require_tls(url: URL, variable: str) -> None:
    if is_loopback(url.host):
        return
    sslmode = _query_value(url, "sslmode")
    if sslmode not in SECURE_SSLMODES:
        raise ConfigError(
            f"{variable} points at {url.host} without TLS: add ?sslmode=require "
            "(Neon refuses unencrypted connections, and a password must not cross the "
            "network in plain text)"
        )


def _sqlite_path(environ: Mapping[str, str]) -> Path:
    configured = _get(environ, "BUDGET_DB_PATH")
    if configured is not None:
        return Path(configured).expanduser()
    import sys

    import click

    xdg = environ.get("XDG_CONFIG_HOME")
    if sys.platform.startswith("linux") and xdg is not None and not os.path.isabs(xdg):
        # The XDG spec: an empty (or relative) XDG_CONFIG_HOME is treated as unset.
        base = Path(environ.get("HOME") or Path.home()) / ".config"
        return base / APP_NAME / SQLITE_FILE_NAME
    return Path(click.get_app_dir(APP_NAME)) / SQLITE_FILE_NAME


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _int(environ: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = _get(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _float(environ: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = _get(environ, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value >= minimum or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number of at least {minimum}, not {raw!r}")
    return value


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(environ, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")
