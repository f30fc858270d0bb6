"""What the app sends on the wire, and proof that skipping the dialect's probes is safe.

The app's engine answers SQLAlchemy's first-connect probes (server version, string
quoting, isolation level, schema) without a query (`db.answer_dialect_probes_locally`).
These tests count the statements that really reach PgBouncer through a counting proxy,
and check every locally answered fact against what the probes themselves return, on
PostgreSQL directly and through PgBouncer, including servers configured differently
from the defaults (standard_conforming_strings off, another default isolation level).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from click.testing import CliRunner
from sqlalchemy import Engine, literal, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.config import load_settings
from budget_tracker.engine import create_app_engine, server_version_tuple
from budget_tracker.models import BudgetTransfer, Category, Expense, User
from budget_tracker.unit_of_work import Database
from tests.conftest import PG_DIRECT, PG_POOLED, Backend, pg_url
from tests.wireproxy import WireProxy

# Text that breaks naive quoting: quotes, backslashes (which escape only when
# standard_conforming_strings is off), percent signs (psycopg2's placeholder), other
# scripts and emoji.
AWKWARD_TEXTS = (
    "O'Brien's \"quoted\" lunch",
    "back\\slash \\' \\\\ end\\",
    "100% of %s and %(name)s",
    "'; DROP TABLE expenses; --",
    "Zürich 東京 café 😀",
    "line\nbreak\ttab",
)


def engine_for(url: URL, *, lean: bool = True, **connect_args: Any) -> Engine:
    settings = load_settings({"DATABASE_URL": url.render_as_string(hide_password=False)})
    options: dict[str, Any] = {}
    if connect_args:
        options["connect_args"] = connect_args
    return create_app_engine(settings, lean_connect=lean, **options)


def test_server_version_tuple_matches_sqlalchemys_parsing() -> None:
    assert server_version_tuple(150020) == (15, 20)
    assert server_version_tuple(170000) == (17, 0)
    assert server_version_tuple(90624) == (9, 6, 24)


def test_fresh_engine_sends_only_the_transaction(proxy: WireProxy, pg_database: str) -> None:
    engine = engine_for(pg_url(PG_POOLED, pg_database).set(port=proxy.port))
    try:
        with engine.begin() as connection:
            assert connection.execute(text("select 1")).scalar() == 1
        log = proxy.snapshot()
    finally:
        engine.dispose()
    assert log.connections == 1
    assert log.sql == ["BEGIN", "select 1", "COMMIT"]


def test_full_probe_engine_is_what_the_lean_one_saves(proxy: WireProxy, pg_database: str) -> None:
    engine = engine_for(pg_url(PG_POOLED, pg_database).set(port=proxy.port), lean=False)
    try:
        with engine.begin() as connection:
            connection.execute(text("select 1"))
        log = proxy.snapshot()
    finally:
        engine.dispose()
    assert log.sql[-3:] == ["BEGIN", "select 1", "COMMIT"]
    assert "show standard_conforming_strings" in log.sql
    assert len(log.sql) == 9


@pytest.mark.parametrize("base", [PG_DIRECT, PG_POOLED], ids=["direct", "pgbouncer"])
def test_local_answers_equal_the_probes(base: str, pg_database: str) -> None:
    url = pg_url(base, pg_database)
    lean, probed = engine_for(url), engine_for(url, lean=False)
    try:
        for engine in (lean, probed):
            with engine.connect() as connection:
                connection.execute(text("select 1"))
        ours, theirs = lean.dialect, probed.dialect
        assert ours.server_version_info == theirs.server_version_info
        assert ours.server_version_info is not None and ours.server_version_info >= (13,)
        assert ours._backslash_escapes is theirs._backslash_escapes is False  # type: ignore[attr-defined]
        for flag in (
            "supports_smallserial",
            "supports_identity_columns",
            "_supports_drop_index_concurrently",
            "_supports_jsonb_subscripting",
            "supports_virtual_generated_columns",
            "supports_sane_multi_rowcount",
            "_has_native_hstore",
        ):
            assert getattr(ours, flag) == getattr(theirs, flag), flag
        assert theirs.default_schema_name == "public"
        assert ours.default_schema_name is None
        assert theirs.default_isolation_level == "READ COMMITTED"
        assert ours.default_isolation_level is None
    finally:
        lean.dispose()
        probed.dispose()


def test_migration_engine_keeps_the_probes(pg_database: str) -> None:
    """Alembic gets an engine for an explicit URL: it reflects, so it needs current_schema()."""
    settings = load_settings(
        {"DATABASE_URL": pg_url(PG_POOLED, pg_database).render_as_string(hide_password=False)}
    )
    engine = create_app_engine(settings, url=pg_url(PG_DIRECT, pg_database))
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        assert engine.dialect.default_schema_name == "public"
    finally:
        engine.dispose()


def round_trip_literals(engine: Engine) -> None:
    """Each awkward text comes back unchanged, bound and rendered inline as a literal."""
    with engine.connect() as connection:
        for value in AWKWARD_TEXTS:
            assert connection.execute(select(literal(value))).scalar() == value
            inline = select(literal(value)).compile(
                dialect=engine.dialect, compile_kwargs={"literal_binds": True}
            )
            # Rendered for psycopg2's paramstyle (`%` doubled): run it with empty parameters.
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(str(inline), ())
            assert cursor.fetchone() == (value,)
            cursor.close()


@pytest.mark.parametrize("base", [PG_DIRECT, PG_POOLED], ids=["direct", "pgbouncer"])
def test_quotes_and_backslashes_round_trip(base: str, pg_database: str) -> None:
    engine = engine_for(pg_url(base, pg_database))
    try:
        round_trip_literals(engine)
    finally:
        engine.dispose()


def test_standard_conforming_strings_off_is_read_from_the_connection(pg_database: str) -> None:
    """On a server quoting the old way, the dialect learns it and escapes backslashes."""
    engine = engine_for(
        pg_url(PG_DIRECT, pg_database),
        options="-c standard_conforming_strings=off -c escape_string_warning=off",
    )
    try:
        round_trip_literals(engine)
        assert engine.dialect._backslash_escapes is True  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def isolation_of(engine: Engine, level: str | None = None) -> str:
    with engine.connect() as connection:
        if level is not None:
            connection = connection.execution_options(isolation_level=level)
        value = connection.execute(text("show transaction_isolation")).scalar()
        connection.rollback()
    return str(value)


@pytest.mark.parametrize(
    ("server_default", "options"),
    [
        ("read committed", ""),
        # libpq splits `options` on spaces; a backslash keeps the space in the value.
        ("repeatable read", "-c default_transaction_isolation=repeatable\\ read"),
    ],
)
def test_isolation_level_option_is_undone_to_the_servers_default(
    server_default: str, options: str, pg_database: str
) -> None:
    engine = engine_for(pg_url(PG_DIRECT, pg_database), options=options)
    try:
        assert isolation_of(engine) == server_default
        assert isolation_of(engine, "SERIALIZABLE") == "serializable"
        assert isolation_of(engine) == server_default
        assert isolation_of(engine, "AUTOCOMMIT") == server_default
        assert isolation_of(engine) == server_default
    finally:
        engine.dispose()


def test_every_column_type_round_trips(pg_database: str) -> None:
    """Through PgBouncer on the lean engine: integers, cents, text, dates, timestamps."""
    engine = engine_for(pg_url(PG_POOLED, pg_database))
    try:
        with engine.connect() as connection, connection.begin() as transaction:
            session = Session(bind=connection)
            user = User(email="Wire@Example.com", name=AWKWARD_TEXTS[0])
            session.add(user)
            session.flush()
            food = Category(user_id=user.id, name="Fööd 😀", monthly_budget=Decimal("12345.67"))
            rent = Category(user_id=user.id, name="Rent", monthly_budget=Decimal("0.01"))
            session.add_all([food, rent])
            session.flush()
            day = dt.date(2024, 2, 29)
            for description in AWKWARD_TEXTS:
                session.add(
                    Expense(
                        user_id=user.id,
                        category_id=food.id,
                        amount=Decimal("99999999.99"),
                        description=description,
                        spent_on=day,
                    )
                )
            session.add(
                BudgetTransfer(
                    user_id=user.id,
                    from_category_id=food.id,
                    to_category_id=rent.id,
                    amount=Decimal("0.10"),
                    month=dt.date(2024, 2, 1),
                    note=AWKWARD_TEXTS[1],
                )
            )
            session.flush()
            session.expire_all()
            expenses = session.scalars(select(Expense).order_by(Expense.id)).all()
            assert [e.description for e in expenses] == list(AWKWARD_TEXTS)
            assert {e.amount for e in expenses} == {Decimal("99999999.99")}
            assert {e.spent_on for e in expenses} == {day}
            created = expenses[0].created_at
            assert created.tzinfo is not None and created.utcoffset() is not None
            stored = session.get_one(Category, food.id)
            assert (stored.name, stored.monthly_budget) == ("Fööd 😀", Decimal("12345.67"))
            transfer = session.scalars(select(BudgetTransfer)).one()
            assert (transfer.amount, transfer.month, transfer.note) == (
                Decimal("0.10"),
                dt.date(2024, 2, 1),
                AWKWARD_TEXTS[1],
            )
            assert session.scalar(select(User.email).where(User.id == user.id)) == (
                "wire@example.com"
            )
            session.close()
            transaction.rollback()
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("args", "most"),
    [
        (["add-expense", "12.50", "Food", "Lunch"], 4),
        (["report"], 4),
        (["report", "--user", "me@localhost"], 4),
        (["transfer", "1", "--from", "Food", "--to", "Transport", "--allow-overdraw"], 4),
    ],
    ids=["add-expense", "report", "report-user", "transfer"],
)
@pytest.mark.parametrize("rolls_over", [False, True], ids=["", "rollover"])
def test_command_statements_on_the_wire(
    backend: Backend, proxy: WireProxy, args: list[str], most: int, rolls_over: bool
) -> None:
    """A whole command on a new engine and connection, as a new process would send it;
    the same when the category carries a year of leftovers (rollover)."""
    assert backend.invoke(["add-expense", "1", "Food"]).exit_code == 0  # the first run
    if rolls_over:
        for setup in (
            ["category", "set-budget", "Food", "100", "--from", "2025-01"],
            ["category", "set-rollover", "Food", "on", "--from", "2025-01"],
            ["category", "set-rollover", "Transport", "on", "--from", "2025-03"],
            ["add-expense", "30", "Food", "--date", "2025-06-01"],
            ["transfer", "5", "--from", "Food", "--to", "Transport", "--month", "2025-07"],
        ):
            assert backend.invoke(setup).exit_code == 0, setup
    url = backend.url.set(port=proxy.port).render_as_string(hide_password=False)
    database = Database(load_settings({"DATABASE_URL": url}))
    try:
        proxy.reset()
        result = CliRunner().invoke(main, args, obj=AppState(database=database))
        assert result.exit_code == 0, result.output
        log = proxy.snapshot()
    finally:
        database.close()
    if rolls_over and args[0] == "report":
        assert "Carried" in result.stdout
    assert log.connections == 1
    assert log.sql[0].startswith("BEGIN") and log.sql[-1] == "COMMIT"
    assert len(log.sql) <= most, log.sql


def test_runs_on_the_sqlalchemy_the_local_answers_were_validated_on() -> None:
    # The local answers replace private hooks of the dialect; the tests above prove them on
    # the version scripts/constraints.txt pins, which is the one installed for the suite.
    pins = (Path(__file__).parent.parent / "scripts" / "constraints.txt").read_text()
    pinned = re.search(r"^SQLAlchemy==(\S+)$", pins, re.MULTILINE)
    assert pinned is not None
    assert sqlalchemy.__version__ == pinned.group(1)
