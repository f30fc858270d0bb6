"""PostgreSQL enforces who sees what: people's roles, row-level security and `db grant`.

Three roles, as a household on Neon would have them: `budget` owns the tables (it runs the
migrations over the direct URL), `budget_alice` and `budget_bob` are people's roles (not
owners, not superusers; scripts/services.sh creates them and lets them log in through
PgBouncer). Everything here goes through PgBouncer in transaction mode unless it is the
owner's direct URL, as `budget db grant` and migrations use.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.errors
import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.config import load_settings
from budget_tracker.migrate import upgrade
from budget_tracker.unit_of_work import Database
from tests.conftest import (
    PERSON_ROLES,
    PG_DIRECT,
    PG_POOLED,
    TODAY,
    create_pg_database,
    drop_pg_database,
    libpq_dsn,
    pg_env,
    pg_url,
    role_env,
)

pytestmark = pytest.mark.xdist_group("roles")  # roles are shared by the whole server

ALICE, BOB = PERSON_ROLES


@dataclass
class Person:
    role: str
    env: dict[str, str]
    database: Database

    def invoke(self, *args: str) -> Result:
        return CliRunner().invoke(
            main,
            list(args),
            env=self.env,
            obj=AppState(database=self.database, today=lambda: TODAY),
        )

    def ok(self, *args: str) -> Result:
        result = self.invoke(*args)
        assert result.exit_code == 0, (args, result.output)
        return result

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> tuple[int, list[Any]]:
        """Raw SQL as this role through PgBouncer (autocommit): (rowcount, rows)."""
        connection = psycopg2.connect(libpq_dsn(self.env["DATABASE_URL"]))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                rows = cursor.fetchall() if cursor.description else []
                return cursor.rowcount, rows
        finally:
            connection.close()


@dataclass
class Household:
    name: str
    owner: Person
    alice: Person
    bob: Person


def person(database: str, role: str, env: dict[str, str] | None = None) -> Person:
    env = env or role_env(database, role)
    return Person(role, env, Database(load_settings(env)))


@pytest.fixture
def household(pg_server: None) -> Iterator[Household]:
    """A migrated database; Alice's and Bob's roles granted and linked to their users."""
    name = create_pg_database("budget_rls")
    people: list[Person] = []
    try:
        upgrade(pg_url(PG_DIRECT, name))
        owner = person(name, "budget", pg_env(name))
        alice, bob = person(name, ALICE), person(name, BOB)
        people.extend((owner, alice, bob))
        owner.ok("db", "grant", ALICE)
        owner.ok("db", "grant", BOB)
        owner.ok("user", "add", "alice@example.com", "--name", "Alice", "--role", ALICE)
        owner.ok("user", "add", "bob@example.com", "--name", "Bob", "--role", BOB)
        alice.ok("category", "add", "Food", "--budget", "300", "--from", "2026-01")
        alice.ok("add-expense", "12.50", "Food", "Alice's lunch")
        bob.ok("category", "add", "Rent", "--budget", "900", "--from", "2026-01")
        bob.ok("add-expense", "800", "Rent", "Bob's rent")
        yield Household(name, owner, alice, bob)
    finally:
        for each in people:
            each.database.close()
        drop_pg_database(name)


def test_raw_sql_as_bob_sees_and_changes_only_bobs_rows(household: Household) -> None:
    bob = household.bob
    _, expenses = bob.sql("SELECT description FROM expenses")
    assert expenses == [("Bob's rent",)]
    _, categories = bob.sql("SELECT name FROM categories")
    assert categories == [("Rent",)]
    _, users = bob.sql("SELECT email, role_name FROM users")
    assert users == [("bob@example.com", BOB)]
    alice_expense = household.owner.sql(
        "SELECT id, user_id, category_id FROM expenses WHERE description = %s",
        ("Alice's lunch",),
    )[1][0]
    assert bob.sql("UPDATE expenses SET amount = 1 WHERE id = %s", (alice_expense[0],))[0] == 0
    assert bob.sql("UPDATE expenses SET amount = 1")[0] == 1  # his own row only
    assert bob.sql("DELETE FROM categories WHERE name = 'Food'")[0] == 0
    assert bob.sql("UPDATE users SET name = 'x' WHERE email = 'alice@example.com'")[0] == 0
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="row-level security"):
        bob.sql(
            "INSERT INTO expenses (user_id, category_id, amount, spent_on) "
            "VALUES (%s, %s, 100, '2026-01-01')",
            (alice_expense[1], alice_expense[2]),
        )
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="row-level security"):
        bob.sql("UPDATE users SET role_name = 'budget_alice'")  # cannot hand himself over
    # The owner sees, and Alice still has, everything as it was.
    _, owner_rows = household.owner.sql("SELECT description, amount FROM expenses ORDER BY id")
    assert owner_rows == [("Alice's lunch", 1250), ("Bob's rent", 1)]
    assert household.alice.sql("SELECT count(*) FROM expenses")[1] == [(1,)]


def test_bobs_commands_see_only_bob(household: Household) -> None:
    bob = household.bob
    listed = bob.ok("user", "list")
    assert "bob@example.com" in listed.stdout
    assert "alice@example.com" not in listed.stdout
    # The only user Bob sees is his own: no --user needed, as on a one-person database.
    assert "Bob's rent" in bob.ok("expenses").stdout
    for command in (["expenses"], ["report"], ["category", "list"], ["transfers"]):
        refused = bob.invoke(*command, "--user", "alice@example.com")
        assert refused.exit_code == 1, refused.output
        assert refused.stderr.startswith("Error: no user 'alice@example.com'")
    # The owner still sees everyone (one role for everything works as before).
    owner_list = household.owner.ok("user", "list").stdout
    assert "alice@example.com" in owner_list and "bob@example.com" in owner_list


def test_user_add_and_link_by_a_persons_role(household: Household) -> None:
    bob = household.bob
    # A user linked to another role, or to none, is refused by the database.
    refused = bob.invoke("user", "add", "eve@example.com", "--name", "Eve", "--role", ALICE)
    assert refused.exit_code == 1
    assert refused.stderr.startswith("Error: refused by the database")
    assert "INSERT" not in refused.output and "SELECT" not in refused.output
    assert len(refused.stderr.splitlines()) == 1
    household.owner.ok("user", "add", "carol@example.com", "--name", "Carol")
    assert "carol@example.com" not in bob.ok("user", "list").stdout
    linked = household.owner.ok("user", "link", "carol@example.com", BOB)
    assert linked.stdout == f"Linked user carol@example.com to role {BOB}\n"
    assert "carol@example.com" in bob.ok("user", "list").stdout


def test_db_grant_gives_what_the_app_needs_and_nothing_more(household: Household) -> None:
    def privileges(table: str) -> dict[str, bool]:
        kinds = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
        return {
            kind: household.owner.sql("SELECT has_table_privilege(%s, %s, %s)", (BOB, table, kind))[
                1
            ][0][0]
            for kind in kinds
        }

    data = {"SELECT": True, "INSERT": True, "UPDATE": True, "DELETE": True}
    denied = {"TRUNCATE": False, "REFERENCES": False, "TRIGGER": False}
    for table in (
        "users",
        "categories",
        "expenses",
        "budget_transfers",
        "budget_shares",
        "category_rollovers",
    ):
        assert privileges(table) == data | denied
    # The per-month sums are the database's own (its triggers keep them): read only.
    assert (
        privileges("category_month_spent")
        == {"SELECT": True, "INSERT": False, "UPDATE": False, "DELETE": False} | denied
    )
    assert (
        privileges("alembic_version")
        == {"SELECT": True, "INSERT": False, "UPDATE": False, "DELETE": False} | denied
    )
    _, roles = household.owner.sql(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles "
        "WHERE rolname = %s",
        (BOB,),
    )
    assert roles == [(False, False, False, False)]
    # Granting again is harmless; an unknown role, SQLite and a non-owner are refused.
    household.owner.ok("db", "grant", BOB)
    unknown = household.owner.invoke("db", "grant", "nobody_here")
    assert (unknown.exit_code, unknown.stderr) == (
        1,
        "Error: no PostgreSQL role 'nobody_here': create it first (on Neon: Roles → New role)\n",
    )
    by_bob = household.bob.invoke("db", "grant", ALICE)
    assert by_bob.exit_code == 1
    assert "does not own the tables" in by_bob.stderr
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        household.bob.sql("TRUNCATE expenses")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        household.bob.sql("ALTER TABLE expenses DISABLE ROW LEVEL SECURITY")


def test_db_grant_is_refused_on_sqlite(tmp_path: Any) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'budget.db'}"}
    result = CliRunner().invoke(main, ["db", "grant", BOB], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: roles and row-level security are PostgreSQL")


def test_db_check_says_which_role_and_warns_for_the_owner(household: Household) -> None:
    as_bob = household.bob.ok("db", "check").stdout
    assert (
        f"PASS  role           connected as {BOB}: row-level security limits it to its "
        "users and the budgets shared with it"
    ) in as_bob
    assert "PASS  round-trip" in as_bob
    as_owner = household.owner.ok("db", "check").stdout
    assert (
        "WARN  role           connected as budget, the owner of the tables: row-level "
        "security does not apply to this connection"
    ) in as_owner


def revision_before_row_level_security() -> str:
    from alembic.script import ScriptDirectory

    from budget_tracker.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config()).get_revision("0011")
    assert script is not None and isinstance(script.down_revision, str)
    return script.down_revision


def test_a_single_role_database_keeps_working_after_the_upgrade(pg_server: None) -> None:
    name = create_pg_database("budget_rls_upgrade")
    owner: Person | None = None
    try:
        direct = pg_url(PG_DIRECT, name)
        upgrade(direct, revision=revision_before_row_level_security())
        dsn = libpq_dsn(direct.render_as_string(hide_password=False))
        connection = psycopg2.connect(dsn)
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO users (email, name) VALUES ('a@example.com', 'A'), "
                "('b@example.com', 'B');"
                "INSERT INTO categories (user_id, name, name_key, monthly_budget) "
                "VALUES (1, 'Food', 'food', 10000), (2, 'Rent', 'rent', 0);"
                "INSERT INTO expenses (user_id, category_id, amount, spent_on) "
                "VALUES (1, 1, 1250, %(day)s), (2, 2, 90000, %(day)s)",
                {"day": TODAY},
            )
        connection.close()
        upgrade(direct)
        owner = person(name, "budget", pg_env(name))
        assert "a@example.com" in owner.ok("user", "list").stdout
        assert "b@example.com" in owner.ok("user", "list").stdout
        owner.ok("add-expense", "5", "Food", "--user", "a@example.com")
        report = owner.ok("report", "--user", "a@example.com", "--format", "csv").stdout
        assert "category,Food,100.00,0.00,0.00,100.00,17.50," in report
        owner.ok("expenses", "--user", "b@example.com")
        assert owner.ok("db", "check").exit_code == 0
    finally:
        if owner is not None:
            owner.database.close()
        drop_pg_database(name)


def test_roles_reach_the_database_through_pgbouncer(household: Household) -> None:
    url = make_url(household.bob.env["DATABASE_URL"])
    assert url.port == make_url(PG_POOLED).port
    assert household.bob.sql("SELECT current_user")[1] == [(BOB,)]


def test_sharing_a_budget_read_only_then_read_write_then_not(household: Household) -> None:
    alice, bob = household.alice, household.bob
    assert alice.ok("share", "bob@example.com", "--read-only").stdout == (
        "Shared alice@example.com's budget with bob@example.com (read-only)\n"
    )
    mine = alice.ok("shares", "--format", "csv").stdout
    assert mine.splitlines()[1] == "shared by me,alice@example.com,bob@example.com,read-only"
    theirs = bob.ok("shares", "--user", "bob@example.com", "--format", "csv").stdout
    assert theirs.splitlines()[1] == "shared with me,alice@example.com,bob@example.com,read-only"
    # Read-only: Bob sees Alice's budget; the database refuses his writes in it.
    assert "Alice's lunch" in bob.ok("expenses", "--user", "alice@example.com").stdout
    assert "Food" in bob.ok("report", "--user", "alice@example.com").stdout
    before = household.owner.sql("SELECT count(*) FROM expenses")[1]
    refused = bob.invoke("add-expense", "5", "Food", "--user", "alice@example.com")
    assert refused.exit_code == 1
    assert refused.stderr == (
        "Error: refused by the database: your role may not change this budget (it is shared "
        "with you read-only, or not at all)\n"
    )
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="row-level security"):
        bob.sql("UPDATE expenses SET amount = 1 WHERE description = 'Alice''s lunch'")
    alice.ok("category", "add", "Fun", "--budget", "50")
    transfer = bob.invoke(
        "transfer", "1", "--from", "Food", "--to", "Fun", "--user", "alice@example.com"
    )
    assert (transfer.exit_code, transfer.stderr) == (1, refused.stderr)
    assert household.owner.sql("SELECT count(*) FROM expenses")[1] == before
    bob.ok("add-expense", "3", "Rent", "--user", "bob@example.com")
    # Read-write: Bob records an expense and moves budget in Alice's budget.
    assert "(read-write)" in alice.ok("share", "bob@example.com").stdout
    bob.ok("add-expense", "7.25", "Food", "Bob's groceries", "--user", "alice@example.com")
    bob.ok("transfer", "10", "--from", "Food", "--to", "Fun", "--user", "alice@example.com")
    _, entered = household.owner.sql(
        "SELECT e.description, u.email FROM expenses e LEFT JOIN users u ON u.id = e.entered_by "
        "WHERE e.user_id = (SELECT id FROM users WHERE email = 'alice@example.com') ORDER BY e.id"
    )
    assert entered == [
        ("Alice's lunch", "alice@example.com"),
        ("Bob's groceries", "bob@example.com"),
    ]
    _, transfers = household.owner.sql(
        "SELECT u.email FROM budget_transfers t JOIN users u ON u.id = t.entered_by"
    )
    assert transfers == [("bob@example.com",)]
    # Alice's listing shows Bob's expense; Bob cannot share Alice's budget onwards.
    assert "Bob's groceries" in alice.ok("expenses").stdout
    onwards = bob.invoke("unshare", "bob@example.com", "--user", "alice@example.com")
    assert onwards.exit_code == 1
    # Unshared: Alice's budget is gone from Bob's view, at the database.
    assert alice.ok("unshare", "bob@example.com").stdout == (
        "alice@example.com's budget is no longer shared with bob@example.com\n"
    )
    assert bob.invoke("expenses", "--user", "alice@example.com").exit_code == 1
    _, visible = bob.sql("SELECT DISTINCT user_id FROM expenses")
    assert len(visible) == 1
    assert bob.ok("shares", "--user", "bob@example.com").stderr == "no shared budgets\n"


def test_rollover_rows_follow_their_owner_and_a_member_keeps_the_sums(
    household: Household,
) -> None:
    alice, bob, owner = household.alice, household.bob, household.owner
    alice.ok("category", "set-rollover", "Food", "on", "--from", "2026-01")
    bob.ok("category", "set-rollover", "Rent", "on", "--from", "2026-02")
    _, settings = bob.sql("SELECT month FROM category_rollovers")
    assert settings == [(dt.date(2026, 2, 1),)]
    _, sums = bob.sql("SELECT spent FROM category_month_spent")
    assert sums == [(80000,)]
    # Nobody's role writes the sums directly, not even in its own budget.
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        bob.sql("UPDATE category_month_spent SET spent = 0")
    _, alices_food = owner.sql("SELECT user_id, id FROM categories WHERE name = 'Food'")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="row-level security"):
        bob.sql(
            "INSERT INTO category_rollovers (user_id, category_id, month, enabled) "
            "VALUES (%s, %s, '2026-01-01', true)",
            alices_food[0],
        )
    # A member writing in a shared budget: the trigger keeps the owner's sums exact.
    alice.ok("share", "bob@example.com")
    bob.ok("add-expense", "7.50", "Food", "--date", "2026-01-20", "--user", "alice@example.com")
    bob.ok(
        "category",
        "set-rollover",
        "Food",
        "off",
        "--from",
        "2026-03",
        "--user",
        "alice@example.com",
    )
    _, alices = owner.sql(
        "SELECT s.month, s.spent FROM category_month_spent s JOIN users u ON u.id = s.user_id "
        "WHERE u.email = 'alice@example.com' ORDER BY s.month"
    )
    lunch_month = dt.date(TODAY.year, TODAY.month, 1)
    assert alices == sorted([(dt.date(2026, 1, 1), 750), (lunch_month, 1250)])
    data: dict[str, Any] = json.loads(
        bob.ok(
            "report", "--month", "2026-02", "--user", "alice@example.com", "--format", "json"
        ).stdout
    )
    food = next(row for row in data["categories"] if row["category"] == "Food")
    assert food["carried"] == "292.50"
    _, switches = owner.sql("SELECT month, enabled FROM category_rollovers ORDER BY month")
    assert switches == [
        (dt.date(2026, 1, 1), True),
        (dt.date(2026, 2, 1), True),
        (dt.date(2026, 3, 1), False),
    ]


def test_sharing_on_sqlite_is_an_application_feature(tmp_path: Any) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'budget.db'}"}
    runner = CliRunner()

    def ok(*args: str) -> Result:
        result = runner.invoke(main, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result

    ok("user", "add", "ana@example.com", "--name", "Ana")
    ok("user", "add", "bo@example.com", "--name", "Bo")
    ok("share", "bo@example.com", "--user", "ana@example.com")
    assert "shared with me" in ok("shares", "--user", "bo@example.com").stdout
    itself = runner.invoke(main, ["share", "ana@example.com", "--user", "ana@example.com"], env=env)
    assert (itself.exit_code, itself.stderr) == (
        2,
        "Error: you cannot share a budget with yourself\n",
    )
    ok("unshare", "bo@example.com", "--user", "ana@example.com")
    again = runner.invoke(main, ["unshare", "bo@example.com", "--user", "ana@example.com"], env=env)
    assert again.exit_code == 1


@pytest.mark.parametrize(
    "args",
    [
        ["add-expense", "12.50", "Rent", "--user", "bob@example.com"],
        ["report", "--user", "bob@example.com"],
        ["transfer", "1", "--from", "Rent", "--to", "Fun", "--user", "bob@example.com"],
    ],
    ids=["add-expense", "report", "transfer"],
)
def test_policies_cost_no_statement(household: Household, args: list[str]) -> None:
    """Through the policies, as Bob's role: still at most four statements on the wire."""
    from tests.wireproxy import WireProxy

    bob = household.bob
    bob.ok("category", "add", "Fun", "--budget", "10")
    pooled = make_url(bob.env["DATABASE_URL"])
    with WireProxy(pooled.host or "127.0.0.1", pooled.port or 6432) as proxy:
        url = pooled.set(port=proxy.port).render_as_string(hide_password=False)
        database = Database(load_settings({"DATABASE_URL": url}))
        try:
            proxy.reset()
            result = CliRunner().invoke(main, args, obj=AppState(database=database))
            assert result.exit_code == 0, result.output
            log = proxy.snapshot()
        finally:
            database.close()
    assert log.sql[0].startswith("BEGIN") and log.sql[-1] == "COMMIT"
    assert len(log.sql) <= 4, log.sql


# --- your own budget by default, who entered what, recorded outcomes ---------------------


def test_a_person_acts_on_their_own_budget_by_default(household: Household) -> None:
    alice, bob, owner = household.alice, household.bob, household.owner
    alice.ok("share", "bob@example.com")  # Bob now sees Alice, the database's default user
    assert "Bob's rent" in bob.ok("expenses").stdout
    assert "Alice's lunch" not in bob.ok("expenses").stdout
    assert bob.ok("add-expense", "3", "Rent").stdout.startswith("Added expense")
    report = json.loads(bob.ok("report", "--format", "json").stdout)
    assert report["user"]["email"] == "bob@example.com"
    listed = json.loads(bob.ok("user", "list", "--format", "json").stdout)
    assert {user["email"]: user["default"] for user in listed} == {
        "alice@example.com": False,
        "bob@example.com": True,
    }
    assert "Alice's lunch" in alice.ok("expenses").stdout
    # A person's role adds a user linked to itself without touching the owner's default
    # (which it cannot see: the unique default would have refused the insert).
    added = bob.ok("user", "add", "eve@example.com", "--name", "Eve", "--role", BOB)
    assert added.stdout.startswith("Added user")
    assert "Bob's rent" in bob.ok("expenses").stdout  # still his own, not Eve's
    refused = bob.invoke("user", "default", "eve@example.com")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "Error: commands of your role act for your own user 'bob@example.com'"
    )
    # The owner's role, linked to no user, still uses the database's default.
    owner_report = json.loads(owner.ok("report", "--format", "json").stdout)
    assert owner_report["user"]["email"] == "alice@example.com"
    _, defaults = owner.sql("SELECT email FROM users WHERE is_default")
    assert defaults == [("alice@example.com",)]


@pytest.mark.parametrize(
    "kind", [[], ["--by", "month"], ["--by", "person"], ["--matrix"]], ids=" ".join
)
def test_the_reports_default_user_is_this_connections_default(
    household: Household, kind: list[str]
) -> None:
    """`default` in the report's JSON: whether this connection's commands act for the user
    when none is named, as `user list` says, not the database's default flag."""
    alice, bob, owner = household.alice, household.bob, household.owner
    alice.ok("share", "bob@example.com")

    def default(person: Person, *args: str) -> bool:
        data = json.loads(person.ok("report", *kind, *args, "--format", "json").stdout)
        flag: bool = data["user"]["default"]
        return flag

    assert default(bob) is True  # his own user, not the database's default
    assert default(bob, "--user", "bob@example.com") is True
    assert default(bob, "--user", "alice@example.com") is False  # the database's, not his
    assert default(alice, "--user", "alice@example.com") is True
    # The owner's role, linked to no user: the database's default.
    assert default(owner) is True
    assert default(owner, "--user", "alice@example.com") is True
    assert default(owner, "--user", "bob@example.com") is False


def test_a_user_a_role_adds_for_itself_is_that_roles_default(household: Household) -> None:
    owner, bob = household.owner, household.bob
    owner.ok("user", "link", "bob@example.com", ALICE)  # Bob's role has no user now
    added = json.loads(
        bob.ok(
            "user",
            "add",
            "robert@example.com",
            "--name",
            "Robert",
            "--role",
            BOB,
            "--format",
            "json",
        ).stdout
    )
    assert added["default"] is True  # this role's commands now act for it
    listed = json.loads(bob.ok("user", "list", "--format", "json").stdout)
    assert {user["email"]: user["default"] for user in listed} == {"robert@example.com": True}
    another = json.loads(
        bob.ok(
            "user", "add", "rob@example.com", "--name", "Rob", "--role", BOB, "--format", "json"
        ).stdout
    )
    assert another["default"] is False  # the role's first user stays its own


def entered(household: Household, table: str) -> list[tuple[str, str]]:
    """(budget, entered by) e-mails of every row of `table`, as the owner sees them."""
    _, rows = household.owner.sql(
        f"SELECT b.email, p.email FROM {table} t JOIN users b ON b.id = t.user_id "
        "LEFT JOIN users p ON p.id = t.entered_by ORDER BY t.id"
    )
    return rows


def test_every_row_records_who_entered_it_and_lists_filter_by_person(
    household: Household, tmp_path: Any
) -> None:
    alice, bob, owner = household.alice, household.bob, household.owner
    on_alice = ("--user", "alice@example.com")
    alice.ok("share", "bob@example.com")
    alice.ok("category", "add", "Fun", "--budget", "50")
    bob.ok("add-expense", "7.25", "Food", "Bob's groceries", *on_alice)
    bob.ok("add-income", "40", "Bob's refund", *on_alice)
    bob.ok("transfer", "10", "--from", "Food", "--to", "Fun", *on_alice)
    csv = tmp_path / "bank.csv"
    csv.write_text("date,amount,category,description\n2026-05-02,2.50,Fun,Bob's film\n")
    bob.ok("import", str(csv), *on_alice)
    alice.ok("add-income", "1000", "Alice's salary")
    owner.ok("add-expense", "1", "Food", "by the owner", *on_alice)
    owner.ok("transfer", "1", "--from", "Fun", "--to", "Food", *on_alice)
    a, b = "alice@example.com", "bob@example.com"
    assert entered(household, "expenses") == [
        (a, a),
        (b, b),
        (a, b),
        (a, b),
        (a, a),  # the owner's role is no person: the budget's own user
    ]
    assert entered(household, "income") == [(a, b), (a, a)]
    assert entered(household, "budget_transfers") == [(a, b), (a, a)]

    def lines(*args: str) -> list[str]:
        return alice.ok(*args, "--format", "csv").stdout.splitlines()

    assert [line.split(",")[-2:] for line in lines("expenses", "--entered-by", b)[1:]] == [
        ["Bob's groceries", b],
        ["Bob's film", b],
    ]
    assert lines("income", "--entered-by", b)[1:] == [f"1,2026-05-14,40.00,Bob's refund,{b}"]
    # Alice's listings say who entered each row: hers and Bob's are in view.
    table = alice.ok("expenses").stdout.splitlines()
    assert table[0].split()[-2:] == ["Entered", "by"]
    assert {line.split()[-1] for line in table[2:-2]} == {a, b}
    listed = json.loads(alice.ok("expenses", "--format", "json").stdout)["expenses"]
    assert sorted(row["entered_by"] for row in listed) == [a, a, b, b]
    transfers = json.loads(alice.ok("transfers", "--format", "json").stdout)
    assert [row["entered_by"] for row in transfers] == [b, a]
    assert "Entered by" in alice.ok("income").stdout
    # Bob's own budget has only his rows: no column.
    assert "Entered by" not in bob.ok("expenses").stdout
    added = json.loads(bob.ok("add-expense", "1", "Food", *on_alice, "--format", "json").stdout)
    assert added["entered_by"] == b
    bob.ok("delete-expense", str(added["id"]), "--yes", *on_alice)
    assert [line.split(",")[0] for line in lines("transfers", "--entered-by", a)[1:]] == ["2"]
    assert lines("report", "--by", "person") == [
        "row,email,name,expenses,spent",
        "person,alice@example.com,Alice,2,13.50",
        "person,bob@example.com,Bob,2,9.75",
        "total,,,4,23.25",
    ]
    mine = lines("report", "--entered-by", b)
    assert "category,Food,300.00,1.00,10.00,291.00,7.25,283.75,2.5,false,false" in mine
    assert "category,Fun,50.00,10.00,1.00,59.00,2.50,56.50,4.2,false,false" in mine
    trend = json.loads(
        alice.ok("report", "--by", "month", "--entered-by", b, "--format", "json").stdout
    )
    assert trend["months"][-1]["spent"] == "9.75" and trend["months"][-1]["income"] == "40.00"
    table = alice.ok("report", "--by", "person").stdout.splitlines()
    assert table[2:5] == [
        "Entered by                 Expenses  Spent   Share",
        "-------------------------  --------  -----  ------",
        "Alice <alice@example.com>         2  13.50   58.1%",
    ]
    unknown = alice.invoke("expenses", "--entered-by", "nobody@example.com")
    assert (unknown.exit_code, unknown.stderr.splitlines()[0][:38]) == (
        1,
        "Error: no user 'nobody@example.com': s",
    )
    # Unshared: Bob's entries stay in Alice's budget; his user is no longer hers to see.
    alice.ok("unshare", b)
    assert lines("report", "--by", "person")[2] == "person,,,2,9.75"
    bob_id = owner.sql("SELECT id FROM users WHERE email = %s", (b,))[1][0][0]
    assert f"(user {bob_id})" in alice.ok("report", "--by", "person").stdout
    unseen = json.loads(alice.ok("expenses", "--entered-by", a, "--format", "json").stdout)
    assert {row["entered_by"] for row in unseen["expenses"]} == {a}
    everyone = alice.ok("expenses").stdout
    assert f"(user {bob_id})" in everyone and b not in everyone
    listed = json.loads(alice.ok("income", "--format", "json").stdout)["income"]
    assert [row["entered_by"] for row in listed] == [a, None]
    assert alice.ok("transfers", "--format", "csv").stdout.splitlines()[1].endswith(",")


def test_sqlite_records_the_acting_user_as_who_entered_a_row(tmp_path: Any) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'budget.db'}"}
    runner = CliRunner()

    def ok(*args: str) -> Result:
        result = runner.invoke(main, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result

    ok("add-expense", "4", "Food", "mine")
    ok("user", "add", "bo@example.com", "--name", "Bo")
    ok("category", "add", "Food", "--user", "bo@example.com")
    ok("add-expense", "6", "Food", "Bo's", "--user", "bo@example.com")
    ok("add-income", "10", "--user", "bo@example.com")
    ok("transfer", "1", "--from", "Food", "--to", "Transport", "--allow-overdraw")
    import sqlite3

    with sqlite3.connect(tmp_path / "budget.db") as connection:
        for table in ("expenses", "income", "budget_transfers"):
            rows = connection.execute(f"SELECT user_id, entered_by FROM {table}").fetchall()
            assert rows and all(user == person for user, person in rows), (table, rows)
    report = ok("report", "--by", "person", "--user", "bo@example.com", "--format", "csv")
    assert report.stdout.splitlines()[1:] == ["person,bo@example.com,Bo,1,6.00", "total,,,1,6.00"]
    assert "mine" in ok("expenses", "--entered-by", "me@localhost").stdout
    assert ok("expenses", "--entered-by", "bo@example.com").stderr == "no expenses match\n"
    # The default user stays the database's on SQLite.
    assert "mine" in ok("expenses").stdout


def test_a_role_sees_only_its_own_recorded_outcomes_and_its_retries_find_them(
    household: Household,
) -> None:
    from tests.fault_proxy import CommitAckDropper, app_database

    household.alice.ok("category", "add", "Books")  # records Alice's outcome
    household.bob.ok("category", "add", "Games")
    _, everyone = household.owner.sql("SELECT DISTINCT role_name FROM unit_outcomes ORDER BY 1")
    assert everyone == [("budget",), (ALICE,), (BOB,)]
    assert set(household.bob.sql("SELECT role_name FROM unit_outcomes")[1]) == {(BOB,)}
    assert household.bob.sql("DELETE FROM unit_outcomes WHERE role_name = %s", (ALICE,))[0] == 0
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="row-level security"):
        household.bob.sql("INSERT INTO unit_outcomes VALUES ('k', 'null', now(), %s)", (ALICE,))
    # Bob's lost COMMIT acknowledgement, through PgBouncer: the retry reads his record.
    pooled = make_url(household.bob.env["DATABASE_URL"])
    proxy = CommitAckDropper((pooled.host or "127.0.0.1", pooled.port or 6432))
    url = pooled.set(port=proxy.port, query={"sslmode": "disable", "gssencmode": "disable"})
    database = app_database(url.render_as_string(hide_password=False))
    try:
        proxy.armed.set()
        result = CliRunner().invoke(
            main, ["category", "add", "Puzzles"], obj=AppState(database=database)
        )
        assert proxy.dropped == 1
    finally:
        database.close()
        proxy.close()
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Added category") and "Puzzles" in result.stdout
    assert household.bob.sql("SELECT count(*) FROM categories WHERE name = 'Puzzles'")[1] == [(1,)]


# --- every table and every command across the boundary -----------------------------------


def test_every_table_holding_a_users_data_has_row_level_security(household: Household) -> None:
    from budget_tracker.models import Base

    _, secured = household.owner.sql(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND relrowsecurity "
        "AND relnamespace = current_schema()::regnamespace"
    )
    assert {name for (name,) in secured} == set(Base.metadata.tables)


def test_bob_reads_and_changes_none_of_alices_rows_in_any_table(
    household: Household, tmp_path: Any
) -> None:
    alice, bob, owner = household.alice, household.bob, household.owner
    csv = tmp_path / "bank.csv"
    csv.write_text("date,amount,category,description\n2026-05-02,2.50,Food,bread\n")
    alice.ok("import", str(csv), "--save-profile", "mybank")
    alice.ok("add-income", "1000", "Salary")
    alice.ok("category", "add", "Fun", "--budget", "10")
    alice.ok("category", "set-budget", "Food", "350", "--from", "2026-01")
    alice.ok("transfer", "1", "--from", "Food", "--to", "Fun")
    owner.ok("user", "add", "carol@example.com", "--name", "Carol")
    alice.ok("share", "carol@example.com")
    alice_id = owner.sql("SELECT id FROM users WHERE email = 'alice@example.com'")[1][0][0]
    tables = {
        "categories": "user_id",
        "expenses": "user_id",
        "budget_transfers": "user_id",
        "category_budgets": "user_id",
        "import_profiles": "user_id",
        "income": "user_id",
        "budget_shares": "owner_id",
        "users": "id",
    }
    for table, column in tables.items():
        where = f"WHERE {column} = %s"
        assert owner.sql(f"SELECT count(*) FROM {table} {where}", (alice_id,))[1][0][0] > 0
        assert bob.sql(f"SELECT count(*) FROM {table} {where}", (alice_id,))[1] == [(0,)], table
        assert bob.sql(f"DELETE FROM {table} {where}", (alice_id,))[0] == 0, table
    assert owner.sql("SELECT count(*) FROM users WHERE email = 'carol@example.com'")[1] == [(1,)]
    assert bob.sql("SELECT count(*) FROM users WHERE email = 'carol@example.com'")[1] == [(0,)]


ACROSS = ("--user", "alice@example.com")


@pytest.mark.parametrize(
    "args",
    [
        ["expenses", *ACROSS],
        ["income", *ACROSS],
        ["transfers", *ACROSS],
        ["report", *ACROSS],
        ["report", "--by", "person", *ACROSS],
        ["verify", *ACROSS],
        ["export", *ACROSS],
        ["category", "list", *ACROSS],
        ["category", "budgets", "Food", *ACROSS],
        ["shares", *ACROSS],
        ["import-profile", "list", *ACROSS],
        ["add-expense", "1", "Food", *ACROSS],
        ["add-income", "1", *ACROSS],
        ["transfer", "1", "--from", "Food", "--to", "Rent", *ACROSS],
        ["category", "add", "Spy", *ACROSS],
        ["category", "rename", "Food", "Mine", *ACROSS],
        ["category", "set-budget", "Food", "1", *ACROSS],
        ["category", "delete", "Food", *ACROSS],
        ["share", "bob@example.com", *ACROSS],
        ["user", "default", "alice@example.com"],
        ["user", "link", "alice@example.com", BOB],
    ],
    ids=lambda args: " ".join(arg for arg in args if not arg.startswith(("--", "alice"))),
)
def test_every_command_of_bobs_role_treats_alice_as_unknown(
    household: Household, args: list[str]
) -> None:
    before = household.owner.sql("SELECT count(*), sum(amount) FROM expenses")[1]
    result = household.bob.invoke(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: no user 'alice@example.com'"), result.stderr
    assert household.owner.sql("SELECT count(*), sum(amount) FROM expenses")[1] == before
    assert household.owner.sql("SELECT name FROM categories ORDER BY id")[1] == [
        ("Food",),
        ("Rent",),
    ]


@pytest.mark.parametrize(
    ("table", "args", "message"),
    [
        ("expenses", ["edit-expense", "{id}", "--amount", "1"], "no expense with id {id}"),
        ("expenses", ["delete-expense", "{id}", "--yes"], "no expense with id {id}"),
        ("income", ["edit-income", "{id}", "--amount", "1"], "no income with id {id}"),
        ("income", ["delete-income", "{id}", "--yes"], "no income with id {id}"),
        ("budget_transfers", ["transfer", "--undo", "{id}"], "no transfer {id}"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_alices_ids_are_not_found_for_bob(
    household: Household, table: str, args: list[str], message: str
) -> None:
    alice, bob, owner = household.alice, household.bob, household.owner
    alice.ok("add-income", "100", "Salary")
    alice.ok("category", "add", "Fun", "--budget", "10")
    alice.ok("transfer", "1", "--from", "Food", "--to", "Fun")
    before = owner.sql(f"SELECT * FROM {table} ORDER BY id")[1]
    (row_id,) = owner.sql(
        f"SELECT t.id FROM {table} t JOIN users u ON u.id = t.user_id "
        "WHERE u.email = 'alice@example.com'"
    )[1][0]
    result = bob.invoke(*(arg.replace("{id}", str(row_id)) for arg in args))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {message.replace('{id}', str(row_id))}")
    assert owner.sql(f"SELECT * FROM {table} ORDER BY id")[1] == before


def test_a_read_only_member_reads_every_table_of_the_budget_and_changes_none(
    household: Household,
) -> None:
    """What each command may do, table by table, through raw SQL: a read-only member
    reads the shared budget and deletes, changes and adds nothing in it."""
    alice, bob, owner = household.alice, household.bob, household.owner
    alice.ok("category", "add", "Fun", "--budget", "10")
    alice.ok("category", "set-budget", "Food", "350", "--from", "2026-01")
    alice.ok("category", "set-rollover", "Food", "on")
    alice.ok("transfer", "1", "--from", "Food", "--to", "Fun")
    alice.ok("add-income", "1000", "Salary")
    alice.ok("share", "bob@example.com", "--read-only")
    alice_id = owner.sql("SELECT id FROM users WHERE email = 'alice@example.com'")[1][0][0]
    tables = (
        "categories",
        "expenses",
        "budget_transfers",
        "category_budgets",
        "category_rollovers",
        "income",
    )
    for table in tables:
        where = "WHERE user_id = %s"
        seen = owner.sql(f"SELECT count(*) FROM {table} {where}", (alice_id,))[1][0][0]
        assert seen > 0, table
        assert bob.sql(f"SELECT count(*) FROM {table} {where}", (alice_id,))[1] == [(seen,)]
        assert bob.sql(f"DELETE FROM {table} {where}", (alice_id,))[0] == 0, table
        with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="row-level security"):
            bob.sql(f"UPDATE {table} SET user_id = user_id {where}", (alice_id,))
        with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="row-level security"):
            bob.sql(f"INSERT INTO {table} SELECT * FROM {table} {where} LIMIT 1", (alice_id,))
        assert owner.sql(f"SELECT count(*) FROM {table} {where}", (alice_id,))[1] == [(seen,)]
    assert bob.sql("DELETE FROM budget_shares")[0] == 0
    assert bob.sql("UPDATE budget_shares SET read_only = false")[0] == 0
    assert owner.sql("SELECT read_only FROM budget_shares")[1] == [(True,)]


def test_reading_a_table_checks_only_its_read_policy(household: Household) -> None:
    """Every policy that governs writing names its commands: a policy FOR ALL would be
    checked on every read as well, a second check that cannot change what a role sees
    (whatever it may write it may read) but costs each statement time."""
    _, for_all = household.owner.sql(
        "SELECT tablename, policyname FROM pg_policies WHERE cmd = 'ALL' "
        "AND tablename <> 'unit_outcomes' ORDER BY 1, 2"
    )
    assert for_all == []


def test_each_role_may_read_write_and_see_exactly_these_users(household: Household) -> None:
    """`budget_user_ids(role, access)`, which every policy calls, as a set per access."""
    alice, bob, owner = household.alice, household.bob, household.owner
    owner.ok("user", "add", "carol@example.com", "--name", "Carol")
    alice.ok("share", "bob@example.com", "--read-only")
    alice.ok("share", "carol@example.com")
    bob.ok("share", "alice@example.com")
    _, rows = owner.sql("SELECT email, id FROM users")
    a, b, c = (dict(rows)[f"{name}@example.com"] for name in ("alice", "bob", "carol"))
    expected = {
        (ALICE, "own"): {a},
        (ALICE, "read"): {a, b},  # Bob shares his budget with her
        (ALICE, "write"): {a, b},
        (ALICE, "people"): {a, b, c},  # and Bob and Carol are members of hers
        (BOB, "own"): {b},
        (BOB, "read"): {b, a},
        (BOB, "write"): {b},  # Alice's budget is shared with him read-only
        (BOB, "people"): {b, a},
    }
    for (role, access), ids in expected.items():
        _, found = owner.sql("SELECT budget_user_ids(%s, %s)", (role, access))
        assert set(found[0][0]) == ids, (role, access)
