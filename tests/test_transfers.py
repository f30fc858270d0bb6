"""`budget transfer`, `budget transfer --undo` and `budget transfers`, on both backends."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from budget_tracker.errors import InsufficientBudget
from budget_tracker.models import BudgetTransfer, Category, Expense, User
from budget_tracker.services.transfers import month_balances, transfer_budget, undo_transfer
from budget_tracker.unit_of_work import UNIT_KEY_INFO, Database
from tests.cli_helpers import error_text
from tests.conftest import PG_DIRECT, TODAY, Backend, libpq_dsn

MARCH = dt.date(2026, 3, 1)
ANN = "ann@example.com"


def seed(
    backend: Backend,
    *,
    email: str = ANN,
    budgets: dict[str, str] | None = None,
    spent: dict[str, str] | None = None,
) -> dict[str, int]:
    """A user with categories (base budgets) and March expenses; returns name -> id."""
    budgets = budgets if budgets is not None else {"Food": "300", "Transport": "100", "Fun": "0"}
    with backend.database.transaction() as session:
        user = User(email=email, name=email.split("@")[0])
        session.add(user)
        session.flush()
        categories = {
            name: Category(user_id=user.id, name=name, monthly_budget=Decimal(amount))
            for name, amount in budgets.items()
        }
        session.add_all(categories.values())
        session.flush()
        for name, amount in (spent or {}).items():
            session.add(
                Expense(
                    user_id=user.id,
                    category_id=categories[name].id,
                    amount=Decimal(amount),
                    spent_on=dt.date(2026, 3, 15),
                )
            )
        return {name: category.id for name, category in categories.items()}


def available(backend: Backend, month: dt.date = MARCH, email: str = ANN) -> dict[str, str]:
    with backend.database.transaction(write=False) as session:
        user_id = session.execute(text("SELECT id FROM users WHERE email = :e"), {"e": email})
        balances = month_balances(session, user_id=user_id.scalar_one(), month=month)
    return {balance.category: str(balance.available) for balance in balances}


def ledger(backend: Backend) -> list[tuple[Any, ...]]:
    """(id, from id, to id, amount, month, note, reverses id) of every entry, typed."""
    with backend.database.transaction(write=False) as session:
        rows = session.execute(
            select(
                BudgetTransfer.id,
                BudgetTransfer.from_category_id,
                BudgetTransfer.to_category_id,
                BudgetTransfer.amount,
                BudgetTransfer.month,
                BudgetTransfer.note,
                BudgetTransfer.reverses_id,
            ).order_by(BudgetTransfer.id)
        )
        return [tuple(row) for row in rows]


def transfer(backend: Backend, *args: str) -> Any:
    return backend.invoke(["transfer", *args, "--user", ANN])


def test_transfer_moves_budget_for_that_month_only(backend: Backend) -> None:
    seed(backend, spent={"Food": "50"})
    result = transfer(backend, "100", "--from", "food", "--to", "TRANSPORT", "--month", "2026-03")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        "Transfer 1: moved 100.00 from Food to Transport for 2026-03\n"
        "  Food       150.00 available\n"
        "  Transport  200.00 available\n"
    )
    assert available(backend) == {"Food": "150.00", "Transport": "200.00", "Fun": "0.00"}
    assert available(backend, dt.date(2026, 4, 1)) == {
        "Food": "300.00",
        "Transport": "100.00",
        "Fun": "0.00",
    }
    assert ledger(backend) == [(1, 1, 2, Decimal("100.00"), MARCH, "", None)]


def test_transfer_defaults_to_this_month_and_keeps_the_note(backend: Backend) -> None:
    seed(backend)
    result = transfer(backend, "12.5", "--from", "Food", "--to", "Fun", "--note", " party ")
    assert result.exit_code == 0, result.stderr
    this_month = TODAY.replace(day=1)
    assert ledger(backend) == [(1, 1, 3, Decimal("12.50"), this_month, "party", None)]
    assert available(backend, this_month)["Fun"] == "12.50"


def test_the_whole_available_amount_can_move(backend: Backend) -> None:
    seed(backend, spent={"Food": "299.99"})
    result = transfer(backend, "0.01", "--from", "Food", "--to", "Fun", "--month", "2026-03")
    assert result.exit_code == 0, result.stderr
    assert available(backend)["Food"] == "0.00"


REFUSALS = [
    pytest.param(
        ["250.01", "--from", "Food", "--to", "Fun", "--month", "2026-03"],
        1,
        "Error: Food has only 250.00 available for 2026-03; cannot move 250.01 "
        "(--allow-overdraw moves it anyway)\n",
        id="insufficient",
    ),
    pytest.param(
        ["1", "--from", "Fun", "--to", "Food", "--month", "2026-03"],
        1,
        "Error: Fun has only 0.00 available for 2026-03; cannot move 1.00 "
        "(--allow-overdraw moves it anyway)\n",
        id="nothing-available",
    ),
    pytest.param(
        ["5", "--from", "Food", "--to", " food "],
        2,
        "Error: cannot transfer from 'Food' to itself: --from and --to must be different "
        "categories\n",
        id="same-category",
    ),
    pytest.param(
        ["5", "--from", "Fod", "--to", "Fun"],
        1,
        "Error: no category 'Fod' (categories: Food, Fun, Transport); did you mean 'Food'?\n",
        id="unknown-from",
    ),
    pytest.param(
        ["5", "--from", "Food", "--to", "Rent"],
        1,
        "Error: no category 'Rent' (categories: Food, Fun, Transport)\n",
        id="unknown-to",
    ),
    pytest.param(
        ["5", "--from", "Food", "--to", "Bob's"],
        1,
        'Error: no category "Bob\'s" (categories: Food, Fun, Transport)\n',
        id="unknown-other-users-category",
    ),
    pytest.param(
        ["0", "--from", "Food", "--to", "Fun"],
        2,
        "Error: Invalid value for '[AMOUNT]': '0' is zero; amounts must be positive\n",
        id="zero",
    ),
    pytest.param(
        ["--", "-5", "--from", "Food", "--to", "Fun"],
        2,
        None,
        id="negative",
    ),
    pytest.param(
        ["12.345", "--from", "Food", "--to", "Fun"],
        2,
        "Error: Invalid value for '[AMOUNT]': '12.345' has more than two decimal places\n",
        id="three-decimals",
    ),
    pytest.param(["abc", "--from", "Food", "--to", "Fun"], 2, None, id="text"),
    pytest.param(["nan", "--from", "Food", "--to", "Fun"], 2, None, id="nan"),
    pytest.param(["1e3", "--from", "Food", "--to", "Fun"], 2, None, id="exponent"),
    pytest.param(
        ["5", "--from", "Food", "--to", "Fun", "--month", "2026-13"],
        2,
        "Error: Invalid value for '--month': '2026-13' is not a month (use YYYY-MM)\n",
        id="bad-month",
    ),
    pytest.param(
        ["5", "--from", "Food"],
        2,
        "Error: missing --to (or use --undo ID)\n",
        id="missing-to",
    ),
    pytest.param(
        ["--from", "Food", "--to", "Fun"],
        2,
        "Error: missing AMOUNT (or use --undo ID)\n",
        id="missing-amount",
    ),
]


@pytest.mark.parametrize(("args", "code", "message"), REFUSALS)
def test_refusals_write_nothing(
    backend: Backend, args: list[str], code: int, message: str | None
) -> None:
    seed(backend, spent={"Food": "50"})
    seed(backend, email="bob@example.com", budgets={"Bob's": "500"})
    before = backend.snapshot()
    result = transfer(backend, *args)
    assert result.exit_code == code
    assert result.stdout == ""
    if message is not None:
        assert error_text(result) == message
    else:
        assert result.stderr.startswith("Error: Invalid value for '[AMOUNT]': ")
    assert backend.snapshot() == before


def test_unknown_user_and_ambiguous_user_are_refused(backend: Backend) -> None:
    seed(backend)
    seed(backend, email="bob@example.com", budgets={"Food": "10", "Fun": "0"})
    before = backend.snapshot()
    ambiguous = backend.invoke(["transfer", "5", "--from", "Food", "--to", "Fun"])
    assert ambiguous.exit_code == 2
    assert ambiguous.stderr.startswith("Error: there are several users: choose one with --user")
    unknown = backend.invoke(
        ["transfer", "5", "--from", "Food", "--to", "Fun", "--user", "eve@example.com"]
    )
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("Error: no user 'eve@example.com'")
    assert backend.snapshot() == before


def test_categories_are_the_acting_users(backend: Backend) -> None:
    seed(backend)
    seed(backend, email="bob@example.com", budgets={"Food": "10", "Fun": "0"})
    result = backend.invoke(
        ["transfer", "10", "--from", "Food", "--to", "Fun", "--month", "2026-03"],
        env={"BUDGET_USER": "bob@example.com"},
    )
    assert result.exit_code == 0, result.stderr
    assert available(backend, email="bob@example.com") == {"Food": "0.00", "Fun": "10.00"}
    assert available(backend) == {"Food": "300.00", "Transport": "100.00", "Fun": "0.00"}


def test_the_only_user_needs_no_user_option(backend: Backend) -> None:
    seed(backend)
    result = backend.invoke(["transfer", "1", "--from", "Food", "--to", "Fun"])
    assert result.exit_code == 0, result.stderr


def test_first_run_creates_the_default_user(backend: Backend) -> None:
    result = backend.invoke(
        ["transfer", "5", "--from", "Food", "--to", "Utilities", "--allow-overdraw"]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("Welcome! Created local user me@localhost")
    assert "Warning: Food is overdrawn by 5.00 for " in result.stderr


def test_allow_overdraw_moves_more_than_is_available(backend: Backend) -> None:
    seed(backend, spent={"Food": "50"})
    result = transfer(
        backend, "260", "--from", "Food", "--to", "Fun", "--month", "2026-03", "--allow-overdraw"
    )
    assert result.exit_code == 0
    assert result.stdout == (
        "Transfer 1: moved 260.00 from Food to Fun for 2026-03\n"
        "  Food  -10.00 available\n"
        "  Fun   260.00 available\n"
    )
    assert result.stderr == "Warning: Food is overdrawn by 10.00 for 2026-03\n"


def test_undo_records_the_opposite_move(backend: Backend) -> None:
    seed(backend)
    assert (
        transfer(backend, "40", "--from", "Food", "--to", "Fun", "--month", "2026-03").exit_code
        == 0
    )
    result = transfer(backend, "--undo", "1")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        "Transfer 2: moved 40.00 from Fun to Food for 2026-03 (undoes transfer 1)\n"
        "  Fun     0.00 available\n"
        "  Food  300.00 available\n"
    )
    assert ledger(backend) == [
        (1, 1, 3, Decimal("40.00"), MARCH, "", None),
        (2, 3, 1, Decimal("40.00"), MARCH, "undo of transfer 1", 1),
    ]
    assert available(backend) == {"Food": "300.00", "Transport": "100.00", "Fun": "0.00"}


def test_undo_refusals_write_nothing(backend: Backend) -> None:
    seed(backend)
    seed(backend, email="bob@example.com", budgets={"A": "10", "B": "0"})
    assert (
        transfer(backend, "40", "--from", "Food", "--to", "Fun", "--month", "2026-03").exit_code
        == 0
    )
    assert (
        backend.invoke(
            ["transfer", "5", "--from", "A", "--to", "B", "--user", "bob@example.com"]
        ).exit_code
        == 0
    )
    assert transfer(backend, "--undo", "1").exit_code == 0
    with backend.database.transaction() as session:
        # Fun spends 30 of the 40 it received: undoing transfer 1 would overdraw it.
        transfer_budget(
            session, user_email=ANN, source="Food", target="Fun", amount=Decimal(30), month=MARCH
        )
        session.add(
            Expense(user_id=1, category_id=3, amount=Decimal(30), spent_on=dt.date(2026, 3, 2))
        )
    before = backend.snapshot()
    cases = [
        (["--undo", "1"], 1, "Error: transfer 1 was already undone by transfer 3\n"),
        (["--undo", "99"], 1, "Error: no transfer 99: see `budget transfers`\n"),
        (["--undo", "2", "--user", "bob@example.com"], 1, None),
        (["--undo", "2"], 1, None),  # Ann's transfer 2 is Bob's: not found for Ann
        (
            ["--undo", "4"],
            1,
            "Error: Fun has only 0.00 available for 2026-03; cannot move 30.00 "
            "(--allow-overdraw moves it anyway)\n",
        ),
        (["--undo", "0"], 2, None),
        (["--undo", "4", "--month", "2026-03"], 2, None),
        (["5", "--undo", "4"], 2, "Error: --undo takes no AMOUNT: it repeats the original\n"),
    ]
    for args, code, message in cases:
        result = transfer(backend, *args)
        assert result.exit_code == code, (args, result.stderr)
        if message is not None:
            assert error_text(result) == message
        assert backend.snapshot() == before, args
    bob = backend.invoke(["transfer", "--undo", "1", "--user", "bob@example.com"])
    assert bob.stderr == "Error: no transfer 1: see `budget transfers`\n"


def test_undo_with_allow_overdraw_and_undo_of_an_undo(backend: Backend) -> None:
    seed(backend)
    assert (
        transfer(backend, "40", "--from", "Food", "--to", "Fun", "--month", "2026-03").exit_code
        == 0
    )
    with backend.database.transaction() as session:
        session.add(
            Expense(user_id=1, category_id=3, amount=Decimal(30), spent_on=dt.date(2026, 3, 2))
        )
    result = transfer(backend, "--undo", "1", "--allow-overdraw")
    assert result.exit_code == 0
    assert result.stderr == "Warning: Fun is overdrawn by 30.00 for 2026-03\n"
    redo = transfer(backend, "--undo", "2")
    assert redo.exit_code == 0, redo.stderr
    assert redo.stdout.startswith("Transfer 3: moved 40.00 from Food to Fun for 2026-03 (undoes")
    assert available(backend)["Fun"] == "10.00"


def test_transfers_lists_the_ledger(backend: Backend) -> None:
    seed(backend)
    for args in (
        ["10", "--from", "Food", "--to", "Fun", "--month", "2026-03", "--note", "cinema"],
        ["20", "--from", "Food", "--to", "Transport", "--month", "2026-04"],
        ["--undo", "1"],
    ):
        assert transfer(backend, *args).exit_code == 0
    listed = backend.invoke(["transfers", "--format", "json"])
    assert listed.exit_code == 0
    entries = json.loads(listed.stdout)
    for entry in entries:
        assert dt.datetime.fromisoformat(entry.pop("created_at"))
    assert entries == [
        {"id": 1, "month": "2026-03", "from": "Food", "to": "Fun", "amount": "10.00",
         "note": "cinema", "reverses": None, "undone_by": 3, "entered_by": ANN},
        {"id": 2, "month": "2026-04", "from": "Food", "to": "Transport", "amount": "20.00",
         "note": "", "reverses": None, "undone_by": None, "entered_by": ANN},
        {"id": 3, "month": "2026-03", "from": "Fun", "to": "Food", "amount": "10.00",
         "note": "undo of transfer 1", "reverses": 1, "undone_by": None,
         "entered_by": ANN},
    ]  # fmt: skip
    march = backend.invoke(["transfers", "--month", "2026-03", "--format", "csv"])
    lines = march.stdout.splitlines()
    assert lines[0] == "id,month,from,to,amount,note,reverses,undone_by,created_at,entered_by"
    assert all(line.endswith(f",{ANN}") for line in lines[1:])
    assert [line.rsplit(",", 2)[0] for line in lines[1:]] == [
        "1,2026-03,Food,Fun,10.00,cinema,,3",
        "3,2026-03,Fun,Food,10.00,undo of transfer 1,1,",
    ]
    transport = backend.invoke(["transfers", "--category", "transport"])
    table = transport.stdout.splitlines()
    assert table[0].split() == ["ID", "Month", "From", "To", "Amount", "Note", "Undoes", "Undone",
                                "by", "Recorded"]  # fmt: skip
    assert len(table) == 3
    assert table[2].split()[:5] == ["2", "2026-04", "Food", "Transport", "20.00"]
    empty = backend.invoke(["transfers", "--month", "2020-01"])
    assert (empty.exit_code, empty.stdout, empty.stderr) == (0, "", "no transfers\n")
    unknown = backend.invoke(["transfers", "--category", "Rent"])
    assert unknown.exit_code == 1
    assert unknown.stderr == "Error: no category 'Rent' (categories: Food, Fun, Transport)\n"


# --- idempotency, atomicity, round trips -----------------------------------------------


def test_a_retried_commit_never_doubles(backend: Backend) -> None:
    """The same key again (a retry after a lost COMMIT acknowledgement) finds the first."""
    seed(backend)

    def move(session: Session) -> Any:
        return transfer_budget(
            session,
            user_email=ANN,
            source="Food",
            target="Fun",
            amount=Decimal(300),
            month=MARCH,
            idempotency_key="k1",
        )

    first = backend.database.run(move)
    # Food now has nothing left: a repeat without the key would be refused.
    again = backend.database.run(move)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.transfer == first.transfer
    assert again.source.available == first.source.available == Decimal(0)
    assert backend.scalar("SELECT count(*) FROM budget_transfers") == 1

    def undo(session: Session) -> Any:
        return undo_transfer(session, user_email=ANN, transfer_id=1, idempotency_key="k2")

    assert backend.database.run(undo).replayed is False
    assert backend.database.run(undo).replayed is True
    assert backend.scalar("SELECT count(*) FROM budget_transfers") == 2


def test_without_a_key_a_retry_of_the_same_unit_of_work_finds_the_commit(
    backend: Backend,
) -> None:
    """No caller key: the unit of work's own key (the same on every attempt) is stored."""
    seed(backend)
    info = {UNIT_KEY_INFO: "unit-1"}
    outcomes = []
    for _attempt in range(2):  # as if the first COMMIT's acknowledgement had been lost
        with backend.database.transaction(info=dict(info)) as session:
            outcomes.append(
                transfer_budget(
                    session,
                    user_email=ANN,
                    source="Food",
                    target="Fun",
                    amount=Decimal(300),
                    month=MARCH,
                )
            )
    assert [outcome.replayed for outcome in outcomes] == [False, True]
    assert outcomes[1].transfer == outcomes[0].transfer
    assert backend.rows("SELECT id, idempotency_key FROM budget_transfers") == [(1, "unit-1")]


def test_reported_balances_are_the_books_after_each_transfer(backend: Backend) -> None:
    """What a transfer prints is what a fresh read of both categories says afterwards."""
    seed(
        backend,
        budgets={"Food": "300", "Transport": "100", "Fun": "0"},
        spent={"Food": "50", "Transport": "20.50"},
    )
    moves = [
        ("Food", "Fun", "40", False),
        ("Fun", "Transport", "15.25", False),
        ("Transport", "Food", "90", False),
        ("Fun", "Food", "30", True),  # overdraws Fun
        ("Food", "Transport", "0.01", False),
    ]
    for source, target, amount, overdraw in moves:
        outcome = backend.database.run(
            functools.partial(
                transfer_budget,
                user_email=ANN,
                source=source,
                target=target,
                amount=Decimal(amount),
                month=MARCH,
                allow_overdraw=overdraw,
            )
        )
        books = {name: Decimal(left) for name, left in available(backend).items()}
        reported = {b.category: b.available for b in (outcome.source, outcome.target)}
        assert reported == {source: books[source], target: books[target]}
        budgets = {b.category: b.budget for b in (outcome.source, outcome.target)}
        with backend.database.transaction(write=False) as session:
            fresh = month_balances(session, user_id=1, month=MARCH)
        assert budgets == {b.category: b.budget for b in fresh if b.category in budgets}
    assert available(backend) == {"Food": "329.99", "Transport": "4.76", "Fun": "-5.25"}


def test_a_failure_after_the_write_leaves_no_trace(backend: Backend) -> None:
    seed(backend)
    before = backend.snapshot()

    class Injected(Exception):
        pass

    def move_then_fail(session: Session) -> None:
        transfer_budget(
            session, user_email=ANN, source="Food", target="Fun", amount=Decimal(5), month=MARCH
        )
        assert session.scalar(text("SELECT count(*) FROM budget_transfers")) == 1
        raise Injected

    with pytest.raises(Injected):
        backend.database.run(move_then_fail)
    assert backend.snapshot() == before


def terminate_own_backend(session: Session) -> None:
    """Kill this transaction's server process from outside (like a compute restart)."""
    import psycopg2

    pid = session.scalar(text("SELECT pg_backend_pid()"))
    admin = psycopg2.connect(libpq_dsn(PG_DIRECT))
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        admin.close()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_connection_killed_mid_transaction_is_retried_exactly_once(backend: Backend) -> None:
    seed(backend)
    attempts: list[int] = []

    def move(session: Session) -> Any:
        attempts.append(1)
        outcome = transfer_budget(
            session,
            user_email=ANN,
            source="Food",
            target="Fun",
            amount=Decimal(5),
            month=MARCH,
            idempotency_key="once",
        )
        if len(attempts) == 1:
            terminate_own_backend(session)
        return outcome

    outcome = backend.database.run(move)
    assert len(attempts) == 2
    assert outcome.source.available == Decimal(295)
    assert [(row[0], row[3]) for row in ledger(backend)] == [(outcome.transfer.id, Decimal(5))]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_connection_killed_without_retries_leaves_no_trace(backend: Backend) -> None:
    seed(backend)
    before = backend.snapshot()
    settings = dataclasses.replace(backend.settings, retry_seconds=0.0)
    database = Database(settings)

    def move(session: Session) -> None:
        transfer_budget(
            session, user_email=ANN, source="Food", target="Fun", amount=Decimal(5), month=MARCH
        )
        terminate_own_backend(session)

    try:
        with pytest.raises(DBAPIError):
            database.run(move)
    finally:
        database.close()
    assert backend.snapshot() == before


def test_a_transfer_is_two_statements_inside_its_transaction(backend: Backend) -> None:
    """Lock, then the guarded insert: the round-trip budget (plus BEGIN and COMMIT)."""
    seed(backend)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.upper().split()
        # The guarded insert starts with its CTE: WITH prior AS (...) INSERT INTO ...
        statements.append("INSERT" if "INSERT" in words else words[0])

    event.listen(backend.database.engine, "before_cursor_execute", record)
    try:
        for email in (ANN, None):
            statements.clear()
            backend.database.run(
                functools.partial(
                    transfer_budget,
                    user_email=email,
                    source="Food",
                    target="Fun",
                    amount=Decimal(1),
                    month=MARCH,
                    idempotency_key=f"key-{email}",
                )
            )
            assert [s for s in statements if s != "BEGIN"] == ["SELECT", "INSERT"]
    finally:
        event.remove(backend.database.engine, "before_cursor_execute", record)


def test_refused_transfer_raises_insufficient_budget(backend: Backend) -> None:
    seed(backend)
    with pytest.raises(InsufficientBudget, match=r"^Fun has only 0\.00 available"):
        backend.database.run(
            lambda session: transfer_budget(
                session, user_email=ANN, source="Fun", target="Food", amount=Decimal(1), month=MARCH
            )
        )
    assert backend.scalar("SELECT count(*) FROM budget_transfers") == 0


def test_ledger_rows_reference_both_categories(backend: Backend) -> None:
    ids = seed(backend)
    transfer(backend, "1", "--from", "Food", "--to", "Fun", "--month", "2026-03")
    with backend.database.transaction(write=False) as session:
        row = session.get_one(BudgetTransfer, 1)
        assert (row.from_category_id, row.to_category_id) == (ids["Food"], ids["Fun"])
        assert row.idempotency_key is not None and len(row.idempotency_key) == 32
