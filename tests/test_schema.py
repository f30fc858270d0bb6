"""The database itself refuses bad rows, and money round-trips exactly on both backends."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from budget_tracker.models import Category, Expense, User
from budget_tracker.money import MAX_AMOUNT
from tests.conftest import Backend

DAY = dt.date(2026, 3, 14)


def seed(backend: Backend) -> tuple[int, int, int, int]:
    """Two users with one category each; returns (alice, alice_food, bob, bob_food)."""
    with backend.database.transaction() as session:
        alice = User(email="Alice@Example.com ", name="Alice")
        bob = User(email="bob@example.com", name="Bob")
        session.add_all([alice, bob])
        session.flush()
        food_a = Category(user_id=alice.id, name="Food", monthly_budget=Decimal("100"))
        food_b = Category(user_id=bob.id, name="Food", monthly_budget=Decimal("50"))
        session.add_all([food_a, food_b])
        session.flush()
        return alice.id, food_a.id, bob.id, food_b.id


def insert_fails(backend: Backend, sql: str, **params: object) -> None:
    before = backend.snapshot()
    with pytest.raises(IntegrityError), backend.database.engine.begin() as connection:
        connection.execute(text(sql), params)
    assert backend.snapshot() == before


def test_email_is_stored_normalized(backend: Backend) -> None:
    seed(backend)
    assert backend.scalar("SELECT email FROM users ORDER BY id") == "alice@example.com"


def test_expense_amount_must_be_positive(backend: Backend) -> None:
    alice, food, _, _ = seed(backend)
    for cents in (0, -500):
        insert_fails(
            backend,
            "INSERT INTO expenses (user_id, category_id, amount, spent_on) VALUES (:u, :c, :a, :d)",
            u=alice,
            c=food,
            a=cents,
            d=DAY,
        )


def test_expense_cannot_use_another_users_category(backend: Backend) -> None:
    alice, _, _, bob_food = seed(backend)
    insert_fails(
        backend,
        "INSERT INTO expenses (user_id, category_id, amount, spent_on) VALUES (:u, :c, 100, :d)",
        u=alice,
        c=bob_food,
        d=DAY,
    )


def test_transfer_rules_are_in_the_schema(backend: Backend) -> None:
    alice, food, _, bob_food = seed(backend)
    insert = (
        "INSERT INTO budget_transfers (user_id, from_category_id, to_category_id, amount, month)"
        " VALUES (:u, :f, :t, :a, :m)"
    )
    month = DAY.replace(day=1)
    insert_fails(backend, insert, u=alice, f=food, t=food, a=100, m=month)
    insert_fails(backend, insert, u=alice, f=food, t=bob_food, a=100, m=month)
    with backend.database.transaction() as session:
        other = Category(user_id=alice, name="Fun")
        session.add(other)
        session.flush()
        other_id = other.id
    insert_fails(backend, insert, u=alice, f=food, t=other_id, a=0, m=month)


def test_category_names_are_unique_per_user_regardless_of_case(backend: Backend) -> None:
    alice, _, bob, _ = seed(backend)
    with pytest.raises(IntegrityError), backend.database.transaction() as session:
        session.add(Category(user_id=alice, name="FOOD"))
    with backend.database.transaction() as session:
        session.add(Category(user_id=bob, name="Fun"))  # other users are independent
    assert backend.scalar("SELECT count(*) FROM categories") == 3


def test_negative_budget_and_bad_colour_are_refused(backend: Backend) -> None:
    alice, _, _, _ = seed(backend)
    insert = "INSERT INTO categories (user_id, name, name_key, color, monthly_budget) VALUES "
    insert_fails(backend, insert + "(:u, 'X', 'x', NULL, -1)", u=alice)
    insert_fails(backend, insert + "(:u, 'Y', 'y', '#FFF', 0)", u=alice)


def test_floats_are_never_accepted_as_money(backend: Backend) -> None:
    alice, food, _, _ = seed(backend)
    with (
        pytest.raises(StatementError, match="money must be a Decimal, not float"),
        backend.database.transaction() as session,
    ):
        session.add(Expense(user_id=alice, category_id=food, amount=12.5, spent_on=DAY))
        session.flush()


amounts = st.decimals(min_value=Decimal("0.01"), max_value=MAX_AMOUNT, places=2)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(amounts, min_size=1, max_size=5))
def test_money_round_trips_exactly_and_sums_in_sql(backend: Backend, values: list[Decimal]) -> None:
    alice, food, _, _ = (
        backend.rows("SELECT u.id, c.id, 0, 0 FROM users u JOIN categories c ON c.user_id = u.id")
        or [seed(backend)]
    )[0]
    with backend.database.transaction() as session:
        session.execute(text("DELETE FROM expenses"))
        ids = []
        for value in values:
            expense = Expense(user_id=alice, category_id=food, amount=value, spent_on=DAY)
            session.add(expense)
            session.flush()
            ids.append(expense.id)
    with backend.database.transaction(write=False) as session:
        stored = [session.get(Expense, id_, populate_existing=True).amount for id_ in ids]  # type: ignore[union-attr]
        total = session.scalar(select(func.sum(Expense.amount)))
    assert stored == values
    assert all(isinstance(value, Decimal) for value in stored)
    assert total == sum(values) and isinstance(total, Decimal)


def test_rows_of_a_user_that_does_not_exist_are_refused(backend: Backend) -> None:
    # Only the composite (user_id, category_id) keys tie these rows to a user (revision
    # 0003): a category of user `alice` does not exist for user `ghost`.
    alice, food, bob, _ = seed(backend)
    ghost = max(alice, bob) + 1
    insert_fails(
        backend,
        "INSERT INTO expenses (user_id, category_id, amount, spent_on) VALUES (:u, :c, 100, :d)",
        u=ghost,
        c=food,
        d=DAY,
    )
    with backend.database.transaction() as session:
        other = Category(user_id=alice, name="Fun")
        session.add(other)
        session.flush()
        other_id = other.id
    insert_fails(
        backend,
        "INSERT INTO budget_transfers (user_id, from_category_id, to_category_id, amount, month)"
        " VALUES (:u, :f, :t, 100, :m)",
        u=ghost,
        f=food,
        t=other_id,
        m=DAY.replace(day=1),
    )


def test_a_category_or_user_with_expenses_cannot_be_deleted(backend: Backend) -> None:
    alice, food, _, _ = seed(backend)
    with backend.database.transaction() as session:
        session.add(Expense(user_id=alice, category_id=food, amount=Decimal("1"), spent_on=DAY))
    insert_fails(backend, "DELETE FROM categories WHERE id = :c", c=food)
    insert_fails(backend, "DELETE FROM users WHERE id = :u", u=alice)


# --- the input rules in the schema: SQLite refuses what PostgreSQL refuses -----------------


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO categories (user_id, name, name_key) VALUES (:alice, :long, 'x')",
        "INSERT INTO categories (user_id, name, name_key, color) VALUES (:alice, 'C', 'c', "
        "'#zzzzzz')",
        "INSERT INTO categories (user_id, name, name_key, color) VALUES (:alice, 'C', 'c', "
        "'#12345 ')",
        "INSERT INTO expenses (user_id, category_id, amount, spent_on, description) "
        "VALUES (:alice, :food, 100, '2026-03-14', :long_text)",
        "INSERT INTO expenses (user_id, category_id, amount, spent_on) "
        "VALUES (:alice, :food, 10000000000, '2026-03-14')",
        "INSERT INTO users (email, name) VALUES ('x@example.com', :long_text)",
        "INSERT INTO income (user_id, amount, received_on) VALUES (:alice, 10000000000, "
        "'2026-03-14')",
        "INSERT INTO income (user_id, amount, received_on, source) VALUES (:alice, 100, "
        "'2026-03-14', :long_text)",
    ],
)
def test_limits_are_checks_on_both_backends(backend: Backend, sql: str) -> None:
    alice, food, _bob, _ = seed(backend)
    before = backend.snapshot()
    # PostgreSQL's VARCHAR refuses an over-long text before the CHECK does (DataError).
    with pytest.raises((IntegrityError, DataError)), backend.database.engine.begin() as connection:
        connection.execute(
            text(sql), {"alice": alice, "food": food, "long": "n" * 51, "long_text": "d" * 201}
        )
    assert backend.snapshot() == before


def test_a_valid_hex_colour_passes_the_check(backend: Backend) -> None:
    alice, *_ = seed(backend)
    with backend.database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO categories (user_id, name, name_key, color) "
                "VALUES (:alice, 'C', 'c', '#0aF9e1')"
            ),
            {"alice": alice},
        )


@pytest.mark.parametrize("table", ["expenses", "categories", "users", "budget_transfers"])
def test_ids_are_never_reused(backend: Backend, table: str) -> None:
    alice, food, _bob, _bob_food = seed(backend)
    inserts = {
        "expenses": "INSERT INTO expenses (user_id, category_id, amount, spent_on) "
        "VALUES (:alice, :food, 100, '2026-03-14')",
        "categories": "INSERT INTO categories (user_id, name, name_key) "
        "VALUES (:alice, :name, :name)",
        "users": "INSERT INTO users (email, name) VALUES (:name, 'N')",
        "budget_transfers": "INSERT INTO budget_transfers (user_id, from_category_id, "
        "to_category_id, amount, month) VALUES (:alice, :food, :other, 5, '2026-03-01')",
    }
    with backend.database.engine.begin() as connection:
        other = connection.execute(
            text(
                "INSERT INTO categories (user_id, name, name_key) VALUES (:alice, 'O', 'o') "
                "RETURNING id"
            ),
            {"alice": alice},
        ).scalar_one()

    def insert(name: str) -> int:
        with backend.database.engine.begin() as connection:
            connection.execute(
                text(inserts[table]), {"alice": alice, "food": food, "other": other, "name": name}
            )
            return int(connection.execute(text(f"SELECT max(id) FROM {table}")).scalar_one())

    insert("first@x")
    highest = insert("second@x")
    with backend.database.engine.begin() as connection:
        connection.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": highest})
    assert insert("third@x") > highest


def test_core_statements_cannot_bypass_the_derived_keys(backend: Backend) -> None:
    from sqlalchemy import insert, update

    alice, *_ = seed(backend)
    with backend.database.engine.begin() as connection:
        connection.execute(insert(Category).values(user_id=alice, name="Ｆｏｏｄ Ｔｒｕｃｋ"))
        connection.execute(update(User).where(User.id == alice).values(email=" ALICE@X.ORG "))
    assert backend.scalar("SELECT name_key FROM categories WHERE name = 'Ｆｏｏｄ Ｔｒｕｃｋ'") == (
        "food truck"
    )
    assert backend.scalar("SELECT email FROM users WHERE id = :id", id=alice) == "alice@x.org"


def test_a_name_is_never_changed_without_its_key(backend: Backend) -> None:
    # The key is Python's NFKC case folding, which neither database computes: a statement
    # that renames without deriving the key again is refused, instead of leaving a key
    # under which the category can no longer be found (and a second `Groceries` allowed).
    from sqlalchemy import update

    from budget_tracker.models import ImportProfile, name_columns

    alice, food, _, _ = seed(backend)
    with backend.database.transaction() as session:
        session.add(ImportProfile(user_id=alice, name="Bank", document=""))
    before = backend.snapshot()
    for statement in (
        update(Category).where(Category.id == food).values(name="Groceries"),
        update(Category).where(Category.id == food).values(name="Groceries", name_key="groceries"),
        update(ImportProfile).values(name="Card"),
        text("UPDATE categories SET name = 'Groceries'"),
        text("UPDATE categories SET keyed_name = 'Groceries'"),
    ):
        with pytest.raises(IntegrityError), backend.database.engine.begin() as connection:
            connection.execute(statement)
    assert backend.snapshot() == before
    with backend.database.engine.begin() as connection:
        connection.execute(
            update(Category).where(Category.id == food).values(**name_columns("Ｇｒｏｃｅｒｉｅｓ"))
        )
    with backend.database.transaction() as session:
        category = session.get(Category, food)
        assert category is not None
        assert category.name_key == "groceries"
        category.name = "GROCERIES"  # a change of case keeps the key, and is no mismatch
    renamed = backend.rows("SELECT name, name_key FROM categories WHERE id = :id", id=food)
    assert renamed == [("GROCERIES", "groceries")]
    assert backend.scalar("SELECT count(*) FROM categories WHERE keyed_name <> name") == 0


def test_every_table_with_a_surrogate_id_never_reuses_ids_on_sqlite(
    sqlite_template: Path,
) -> None:
    # PostgreSQL's sequences never hand out an id twice; SQLite needs AUTOINCREMENT.
    with_ids = [
        table.name
        for table in Category.metadata.sorted_tables
        if "id" in table.columns and table.columns["id"].primary_key
    ]
    assert {"users", "categories", "expenses", "budget_transfers"} <= set(with_ids)
    connection = sqlite3.connect(sqlite_template)
    try:
        for table in with_ids:
            (sql,) = connection.execute(
                "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
            ).fetchone()
            assert "AUTOINCREMENT" in sql, table
    finally:
        connection.close()
