"""Settings: URL handling, the pooled/direct split, the TLS rule and validation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from budget_tracker.config import (
    DEFAULT_POOL_RECYCLE,
    derive_direct_url,
    is_loopback,
    load_settings,
    mask_url,
    parse_database_url,
)
from budget_tracker.errors import EXIT_CONFIG, ConfigError

NEON_POOLED = (
    "postgresql://alex:s3cret@ep-cool-rain-123456-pooler.us-east-2.aws.neon.tech/neondb"
    "?sslmode=require&channel_binding=require"
)


def test_neon_pooled_url_derives_the_direct_url_and_keeps_parameters() -> None:
    settings = load_settings({"DATABASE_URL": NEON_POOLED})
    assert settings.database_url.drivername == "postgresql+psycopg2"
    assert settings.database_url.host == "ep-cool-rain-123456-pooler.us-east-2.aws.neon.tech"
    assert settings.migration_url.host == "ep-cool-rain-123456.us-east-2.aws.neon.tech"
    assert settings.direct_url_derived is True
    for url in (settings.database_url, settings.migration_url):
        assert dict(url.query) == {"sslmode": "require", "channel_binding": "require"}
        assert url.password == "s3cret"
        assert url.database == "neondb"


def test_derivation_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="budget_tracker.config"):
        load_settings({"DATABASE_URL": NEON_POOLED})
    assert "ep-cool-rain-123456.us-east-2.aws.neon.tech" in caplog.text
    assert "s3cret" not in caplog.text


def test_explicit_unpooled_url_wins_over_derivation() -> None:
    direct = "postgres://alex:other@direct.example.com/neondb?sslmode=verify-full"
    settings = load_settings({"DATABASE_URL": NEON_POOLED, "DATABASE_URL_UNPOOLED": direct})
    assert settings.migration_url.host == "direct.example.com"
    assert settings.migration_url.drivername == "postgresql+psycopg2"
    assert settings.direct_url_derived is False


def test_non_neon_url_migrates_over_the_same_url() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql://u:p@127.0.0.1:5432/budget"})
    assert settings.migration_url == settings.database_url
    assert settings.direct_url_derived is False
    assert derive_direct_url(settings.database_url) is None


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg2"])
def test_schemes_map_to_psycopg2(scheme: str) -> None:
    url = parse_database_url(f"{scheme}://u:p@localhost/db", "DATABASE_URL")
    assert url.drivername == "postgresql+psycopg2"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db.example.com/db",
        "postgresql://u:p@db.example.com/db?sslmode=prefer",
        "postgresql://u:p@db.example.com/db?sslmode=disable",
        "postgresql://u:p@10.0.0.5/db?sslmode=allow",
    ],
)
def test_remote_host_without_tls_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"without TLS: add \?sslmode=require") as info:
        parse_database_url(url, "DATABASE_URL")
    assert "p@" not in str(info.value)


@pytest.mark.parametrize("sslmode", ["require", "verify-ca", "verify-full"])
def test_remote_host_with_tls_is_accepted(sslmode: str) -> None:
    url = parse_database_url(f"postgresql://u:p@db.example.com/db?sslmode={sslmode}", "X")
    assert url.query["sslmode"] == sslmode


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.1.2.3", "[::1]", None])
def test_loopback_hosts_need_no_tls(host: str | None) -> None:
    assert is_loopback(host.strip("[]") if host else host)
    if host:
        parse_database_url(f"postgresql://u:p@{host}/db", "DATABASE_URL")


def test_password_with_percent_and_at_round_trips() -> None:
    # '%' and '@' must be percent-encoded in a URL: p%25w%40rd is the password "p%w@rd".
    url = parse_database_url(
        "postgresql://alex:p%25w%40rd@ep-x-pooler.eu.aws.neon.tech/db?sslmode=require", "X"
    )
    assert url.password == "p%w@rd"
    assert url.host == "ep-x-pooler.eu.aws.neon.tech"
    direct = derive_direct_url(url)
    assert direct is not None and direct.password == "p%w@rd"
    assert "p%w@rd" not in mask_url(url) and "***" in mask_url(url)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not a url", "DATABASE_URL is not a valid database URL"),
        ("mysql://u:p@localhost/db", "supports PostgreSQL and SQLite"),
        ("postgresql+asyncpg://u:p@localhost/db", "only psycopg2 is supported"),
        ("postgresql://u:p@localhost", "names no database"),
    ],
)
def test_bad_urls_are_refused_with_the_variable_named(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"DATABASE_URL": raw})


def test_unpooled_without_pooled_is_refused() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL_UNPOOLED is set but DATABASE_URL is not"):
        load_settings({"DATABASE_URL_UNPOOLED": "postgresql://u:p@localhost/db"})


def test_no_url_means_the_sqlite_file_in_the_app_dir(tmp_path: Path) -> None:
    settings = load_settings({})
    assert settings.is_sqlite
    assert settings.sqlite_path is not None
    assert settings.sqlite_path.name == "budget.db"
    assert "budget-tracker" in str(settings.sqlite_path)
    assert settings.migration_url == settings.database_url


def test_sqlite_path_can_be_overridden(tmp_path: Path) -> None:
    settings = load_settings({"BUDGET_DB_PATH": str(tmp_path / "mine.db")})
    assert settings.sqlite_path == tmp_path / "mine.db"


def test_pool_defaults() -> None:
    pool = load_settings({}).pool
    assert (pool.size, pool.max_overflow, pool.pre_ping) == (5, 10, True)
    assert pool.recycle == DEFAULT_POOL_RECYCLE < 300  # below Neon's scale-to-zero
    assert pool.timeout == 30.0 and pool.connect_timeout == 10


def test_pool_settings_come_from_the_environment() -> None:
    pool = load_settings(
        {
            "BUDGET_POOL_SIZE": "3",
            "BUDGET_MAX_OVERFLOW": "5",
            "BUDGET_POOL_TIMEOUT": "2.5",
            "BUDGET_POOL_RECYCLE": "120",
            "BUDGET_POOL_PRE_PING": "false",
            "BUDGET_CONNECT_TIMEOUT": "15",
        }
    ).pool
    assert (pool.size, pool.max_overflow, pool.timeout) == (3, 5, 2.5)
    assert (pool.recycle, pool.pre_ping, pool.connect_timeout) == (120, False, 15)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BUDGET_POOL_SIZE", "five", "BUDGET_POOL_SIZE must be a whole number, not 'five'"),
        ("BUDGET_POOL_SIZE", "0", "BUDGET_POOL_SIZE must be at least 1, not 0"),
        ("BUDGET_MAX_OVERFLOW", "-1", "BUDGET_MAX_OVERFLOW must be at least 0, not -1"),
        ("BUDGET_POOL_TIMEOUT", "soon", "BUDGET_POOL_TIMEOUT must be a number of seconds"),
        ("BUDGET_POOL_TIMEOUT", "nan", "BUDGET_POOL_TIMEOUT must be a finite number"),
        ("BUDGET_POOL_PRE_PING", "maybe", "BUDGET_POOL_PRE_PING must be true or false"),
        ("BUDGET_CONNECT_TIMEOUT", "0", "BUDGET_CONNECT_TIMEOUT must be at least 1, not 0"),
        ("BUDGET_RETRY_SECONDS", "inf", "BUDGET_RETRY_SECONDS must be a finite number"),
    ],
)
def test_invalid_settings_fail_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({name: value})
    assert str(info.value).startswith(message)


def test_dotenv_in_current_directory_is_loaded_and_real_variables_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "BUDGET_DB_PATH=from-dotenv.db\nBUDGET_POOL_SIZE=7\n", encoding="utf-8"
    )
    monkeypatch.setenv("BUDGET_POOL_SIZE", "2")
    settings = load_settings()
    assert settings.env_file == str(tmp_path / ".env")
    assert settings.sqlite_path == Path("from-dotenv.db")
    assert settings.pool.size == 2


def budget_in(cwd: Path, *args: str, env: dict[str, str] | None = None) -> CompletedProcess[str]:
    """The real CLI, started in `cwd` (where it looks for `.env`)."""
    return subprocess.run(
        [sys.executable, "-m", "budget_tracker", *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"BUDGET_POOL_SIZE=3\nthis is not a setting\n", "line 2: cannot parse this line"),
        (b'BUDGET_POOL_SIZE=3\n\nDATABASE_URL="postgresql://u:p@h/db\n', "line 3: cannot parse"),
        (b"BUDGET_POOL_SIZE=3\nBUDGET_USER=caf\xe9@x\n", "line 2: not UTF-8 text"),
        (b"BUDGET_POOL_SIZE=3\nBUDGET_USER=a\x00b\n", "line 2: contains a NUL byte"),
    ],
)
def test_an_unparsable_env_file_is_a_configuration_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / ".env").write_bytes(content)
    result = budget_in(tmp_path, "report")
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.startswith(f"Error: {tmp_path / '.env'}, {message}")
    assert len(result.stderr.splitlines()) == 1
    assert "postgresql://u:p" not in result.stderr  # never the line itself
    assert not (tmp_path / "home").exists()  # nothing written anywhere


def test_an_env_directory_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()
    result = budget_in(tmp_path, "report")
    assert (result.returncode, result.stderr) == (
        EXIT_CONFIG,
        f"Error: {tmp_path / '.env'} is a directory, not a settings file\n",
    )


def test_env_file_is_read_from_the_current_directory_only(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BUDGET_DB_PATH=parent.db\n")
    child = tmp_path / "child"
    child.mkdir()
    settings_env = budget_in(child, "db", "check", "--format", "json")
    assert "parent.db" not in settings_env.stdout
    assert '"env_file": null' in settings_env.stdout


def test_budget_env_file_names_another_file(tmp_path: Path) -> None:
    other = tmp_path / "prod.env"
    other.write_text(f"BUDGET_DB_PATH={tmp_path / 'prod.db'}\n")
    result = budget_in(tmp_path, "report", env={"BUDGET_ENV_FILE": str(other)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "prod.db").exists()
    missing = budget_in(tmp_path, "report", env={"BUDGET_ENV_FILE": str(tmp_path / "nope")})
    assert missing.returncode == EXIT_CONFIG
    assert missing.stderr == (
        f"Error: cannot read BUDGET_ENV_FILE={tmp_path / 'nope'} (No such file or directory)\n"
    )


def test_env_file_values_count_for_options_read_from_the_environment(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    (tmp_path / ".env").write_text(f"BUDGET_DB_PATH={db}\nBUDGET_USER=ana@example.com\n")
    assert budget_in(tmp_path, "user", "add", "ana@example.com", "--name", "Ana").returncode == 0
    assert budget_in(tmp_path, "user", "add", "bo@example.com", "--name", "Bo").returncode == 0
    assert budget_in(tmp_path, "category", "add", "Food").returncode == 0
    added = budget_in(tmp_path, "add-expense", "2.00", "Food", "tea")
    assert added.returncode == 0, added.stderr
    listed = budget_in(tmp_path, "expenses", "--user", "bo@example.com")
    assert "tea" not in listed.stdout
    assert "tea" in budget_in(tmp_path, "expenses", "--user", "ana@example.com").stdout


def test_an_empty_xdg_config_home_means_unset(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings({"HOME": str(home), "XDG_CONFIG_HOME": ""})
    assert settings.sqlite_path == home / ".config" / "budget-tracker" / "budget.db"


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://u:Rel%pa@ss:w0rd@db.example.com/db?sslmode=require",
        "postgresql://u:s3cr3tpw@db.example.com:abc/db?sslmode=require",
        "postgresql://u:s3cr3tpw@[::1/db",
    ],
)
def test_urls_that_do_not_parse_show_no_part_of_the_userinfo(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"DATABASE_URL": raw})
    message = str(info.value)
    assert message.startswith("DATABASE_URL is not a valid database URL")
    for fragment in ("Rel", "pa@ss", "w0rd", "s3cr3tpw", "u:"):
        assert fragment not in message


def test_a_port_out_of_range_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL has port 99999: a port is a number"):
        load_settings({"DATABASE_URL": "postgresql://u:p@127.0.0.1:99999/db"})


def test_an_invalid_sslmode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL has sslmode='requre': use one of"):
        load_settings({"DATABASE_URL": "postgresql://u:p@127.0.0.1/db?sslmode=requre"})


def test_a_password_query_parameter_is_masked() -> None:
    settings = load_settings(
        {"DATABASE_URL": "postgresql://u@127.0.0.1/db?password=qu3ry-secret&sslmode=require"}
    )
    assert mask_url(settings.database_url) == (
        "postgresql+psycopg2://u@127.0.0.1/db?password=***&sslmode=require"
    )
