"""The benchmark's own databases: created, migrated and filled here, named `bench_*`.

PostgreSQL databases are migrated over the direct port (as on Neon) and used through
PgBouncer in transaction mode. Rows are generated in SQL (`INSERT … SELECT
generate_series` on PostgreSQL, a recursive CTE on SQLite), so a million expenses take
seconds, not minutes.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import psycopg2
from sqlalchemy.engine import URL, make_url

from budget_tracker.migrate import upgrade

PG_DIRECT = os.environ.get(
    "BUDGET_BENCH_PG_DIRECT", "postgresql://budget:budget-test@127.0.0.1:5432/postgres"
)
PG_POOLED = os.environ.get(
    "BUDGET_BENCH_PG_POOLED", "postgresql://budget:budget-test@127.0.0.1:6432/postgres"
)

USERS = 3
CATEGORIES_PER_USER = 20
FIRST_DAY = dt.date(2016, 1, 1)
DAYS = 3653  # ten years
REPORT_MONTH = "2021-06"
ROLLOVER_USER = 2
"""Every category of this user rolls over from the first month of the history on."""
ROLLOVER_MONTH = "2025-12"
"""The last month of the decade: its report carries 119 months of leftovers."""


def pg_url(base: str, database: str, *, port: int | None = None) -> URL:
    url = make_url(base).set(drivername="postgresql+psycopg2", database=database)
    return url.set(port=port) if port is not None else url


def dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def user_email(number: int) -> str:
    return f"user{number}@bench.example"


def category_name(number: int) -> str:
    return f"Category {number:02d}"


def pg_env(database: str, *, pooled_port: int | None = None) -> dict[str, str]:
    """What a `budget` process needs: the pooled URL (or the proxy's) and the direct one."""
    return {
        "DATABASE_URL": dsn(pg_url(PG_POOLED, database, port=pooled_port)),
        "DATABASE_URL_UNPOOLED": dsn(pg_url(PG_DIRECT, database)),
    }


def libpq_env(database: str) -> dict[str, str]:
    """PG* variables for psql and pgbench, through PgBouncer like the product."""
    url = pg_url(PG_POOLED, database)
    return {
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 6432),
        "PGUSER": url.username or "",
        "PGPASSWORD": url.password or "",
        "PGDATABASE": database,
    }


def admin(*statements: str, database: str = "postgres") -> None:
    connection = psycopg2.connect(dsn(pg_url(PG_DIRECT, database)))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def fresh_pg_database(name: str) -> str:
    """Drop and recreate `name`, then migrate it to head over the direct port."""
    assert name.startswith("bench_"), name
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    upgrade(pg_url(PG_DIRECT, name))
    return name


def drop_pg_database(name: str) -> None:
    assert name.startswith("bench_"), name
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The same rows on both backends: user u gets categories 1..20; expense g belongs to
# category (g mod 60) (so to user g mod 3 + 1) and falls on day (g mod 3653) of the decade.
PG_SEED = """
INSERT INTO users (email, name)
SELECT 'user' || u || '@bench.example', 'Bench user ' || u FROM generate_series(1, {users}) u;
INSERT INTO categories (user_id, name, name_key, color, monthly_budget)
SELECT u, 'Category ' || lpad(c::text, 2, '0'), 'category ' || lpad(c::text, 2, '0'), '#336699',
       50000 + c * 1000
FROM generate_series(1, {users}) u, generate_series(1, {categories}) c;
INSERT INTO expenses (user_id, category_id, amount, description, spent_on)
SELECT cat.user_id, cat.id, 100 + (g::bigint * 7919) % 20000, 'bench expense ' || g,
       DATE '{first_day}' + (g % {days})
FROM generate_series(0, {rows} - 1) g
JOIN (SELECT id, user_id, row_number() OVER (ORDER BY id) - 1 AS k FROM categories) cat
  ON cat.k = g % ({users} * {categories});
INSERT INTO category_rollovers (user_id, category_id, month, enabled)
SELECT user_id, id, DATE '{first_day}', true FROM categories WHERE user_id = {rollover_user};
ANALYZE;
"""

SQLITE_SEED = """
INSERT INTO users (email, name)
WITH RECURSIVE u(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM u WHERE n < {users})
SELECT 'user' || n || '@bench.example', 'Bench user ' || n FROM u;
INSERT INTO categories (user_id, name, name_key, color, monthly_budget)
WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {categories})
SELECT users.id, 'Category ' || printf('%02d', c.n), 'category ' || printf('%02d', c.n),
       '#336699', 50000 + c.n * 1000
FROM users, c;
INSERT INTO expenses (user_id, category_id, amount, description, spent_on)
WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < {rows} - 1),
cat AS (SELECT id, user_id, row_number() OVER (ORDER BY id) - 1 AS k FROM categories)
SELECT cat.user_id, cat.id, 100 + (g.n * 7919) % 20000, 'bench expense ' || g.n,
       date('{first_day}', '+' || (g.n % {days}) || ' days')
FROM g JOIN cat ON cat.k = g.n % ({users} * {categories});
INSERT INTO category_rollovers (user_id, category_id, month, enabled)
SELECT user_id, id, '{first_day}', 1 FROM categories WHERE user_id = {rollover_user};
ANALYZE;
"""


def seed_parameters(rows: int) -> Mapping[str, object]:
    return {
        "users": USERS,
        "categories": CATEGORIES_PER_USER,
        "rows": rows,
        "first_day": FIRST_DAY.isoformat(),
        "days": DAYS,
        "rollover_user": ROLLOVER_USER,
    }


def history_pg(name: str, rows: int) -> str:
    """A migrated database with 3 users × 20 categories and `rows` expenses over 10 years."""
    fresh_pg_database(name)
    connection = psycopg2.connect(dsn(pg_url(PG_DIRECT, name)))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(PG_SEED.format(**seed_parameters(rows)))
    finally:
        connection.close()
    return name


def history_sqlite(path: Path, rows: int) -> Path:
    """The same data in a SQLite file (migrated by the app's own Alembic revisions)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    upgrade(URL.create("sqlite+pysqlite", database=str(path)))
    connection = sqlite3.connect(path)
    try:
        connection.executescript(SQLITE_SEED.format(**seed_parameters(rows)))
        connection.commit()
    finally:
        connection.close()
    return path


def transfers_pg(name: str, categories: int) -> str:
    """One user with `categories` large budgets and no spending: transfers never run dry."""
    fresh_pg_database(name)
    admin(
        "INSERT INTO users (email, name) VALUES ('user1@bench.example', 'Bench user 1')",
        "INSERT INTO categories (user_id, name, name_key, color, monthly_budget) "
        "SELECT 1, 'Category ' || lpad(c::text, 2, '0'), 'category ' || lpad(c::text, 2, '0'), "
        f"'#336699', 100000000000 FROM generate_series(1, {categories}) c",
        database=name,
    )
    return name


def import_csv(path: Path, rows: int) -> Path:
    """A CSV in the default import layout (date,amount,category,description), one user."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "amount", "category", "description"])
        for g in range(rows):
            cents = 100 + (g * 7919) % 20000
            day = FIRST_DAY + dt.timedelta(days=g % DAYS)
            writer.writerow(
                [
                    day.isoformat(),
                    f"{cents // 100}.{cents % 100:02d}",
                    category_name(g % CATEGORIES_PER_USER + 1),
                    f"bench import {g}",
                ]
            )
    return path


def bank_csv(path: Path, rows: int) -> Path:
    """A bank statement in a European layout: a preamble, `;`, cp1252, DD.MM.YYYY dates,
    decimal commas, spending negative, a payee and a memo column, a few credits."""
    with path.open("w", newline="", encoding="cp1252") as handle:
        handle.write('"Kontonummer:";"DE00 1234 5678 9000"\n"Zeitraum:";"2025"\n\n')
        writer = csv.writer(handle, delimiter=";", quoting=csv.QUOTE_ALL)
        writer.writerow(["Buchungstag", "Valuta", "Empfänger", "Verwendungszweck", "Betrag"])
        for g in range(rows):
            cents = 100 + (g * 7919) % 200000
            day = FIRST_DAY + dt.timedelta(days=g % DAYS)
            sign = "" if g % 50 == 0 else "-"
            amount = f"{sign}{cents // 100:,}".replace(",", ".") + f",{cents % 100:02d}"
            writer.writerow(
                [
                    day.strftime("%d.%m.%Y"),
                    day.strftime("%d.%m.%Y"),
                    f"Händler {g % 997}",
                    f"Karte {g}",
                    amount,
                ]
            )
    return path
