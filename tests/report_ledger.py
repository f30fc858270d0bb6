"""The hand-made ledger that the report, verify and streaming tests share, on both backends.

The data (user alice, February 2028 unless said otherwise):

| category | monthly | transfers                         | expenses                           |
|----------|---------|-----------------------------------|------------------------------------|
| Food     | 300.00  | Jan: 25.50 out to Fun; Feb: 40 in | 2027-12-31 7.77, 01-31 100.10,     |
|          |         |                                   | 02-01 200.00, 02-29 150.25 (leap), |
|          |         |                                   | 03-01 5.00                         |
| Fun      | 50.00   | Jan: 25.50 in                     | 01-15 10.00, 02-20 60.00           |
| Gifts    | 0       |                                   | 02-10 30.00 (no budget)            |
| Rent     | 1000.00 | Feb: 40 out to Food               | 02-15 900.00                       |
| Savings  | 200.00  |                                   | none                               |

April 2028 is empty. Bob's spending in the same months must never show up in alice's report.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from budget_tracker.models import BudgetTransfer, Category, Expense, User
from tests.conftest import Backend

ALICE = "alice@example.com"
BOB = "bob@example.com"

BUDGETS = {
    "Food": "300.00",
    "Fun": "50.00",
    "Gifts": "0",
    "Rent": "1000.00",
    "Savings": "200.00",
}
EXPENSES = [
    ("2027-12-31", "Food", "7.77", "new year's eve"),
    ("2028-01-15", "Fun", "10.00", "cinema"),
    ("2028-01-31", "Food", "100.10", "last day of january"),
    ("2028-02-01", "Food", "200.00", "first day of february"),
    ("2028-02-10", "Gifts", "30.00", "birthday"),
    ("2028-02-15", "Rent", "900.00", "february rent"),
    ("2028-02-20", "Fun", "60.00", "concert"),
    ("2028-02-29", "Food", "150.25", "leap day"),
    ("2028-03-01", "Food", "5.00", "first day of march"),
]
TRANSFERS = [
    ("2028-01-01", "Food", "Fun", "25.50"),
    ("2028-02-01", "Rent", "Food", "40.00"),
]


def seed(backend: Backend, *, extra_categories: int = 0) -> dict[str, int]:
    """Alice's ledger above plus Bob's noise; returns alice's category ids by name."""
    with backend.database.transaction() as session:
        alice = User(email=ALICE, name="Alice")
        bob = User(email=BOB, name="Bob")
        session.add_all([alice, bob])
        session.flush()
        categories = {
            name: Category(user_id=alice.id, name=name, monthly_budget=Decimal(budget))
            for name, budget in BUDGETS.items()
        }
        for number in range(extra_categories):
            categories[f"Extra {number:03}"] = Category(
                user_id=alice.id, name=f"Extra {number:03}", monthly_budget=Decimal("1.00")
            )
        bob_food = Category(user_id=bob.id, name="Food", monthly_budget=Decimal("10.00"))
        session.add_all([*categories.values(), bob_food])
        session.flush()
        for day, name, amount, description in EXPENSES:
            session.add(
                Expense(
                    user_id=alice.id,
                    category_id=categories[name].id,
                    amount=Decimal(amount),
                    spent_on=dt.date.fromisoformat(day),
                    description=description,
                )
            )
        for number in range(extra_categories):
            session.add(
                Expense(
                    user_id=alice.id,
                    category_id=categories[f"Extra {number:03}"].id,
                    amount=Decimal("0.01"),
                    spent_on=dt.date(2028, 2, 3),
                )
            )
        for day in ("2028-01-31", "2028-02-01", "2028-02-29"):
            session.add(
                Expense(
                    user_id=bob.id,
                    category_id=bob_food.id,
                    amount=Decimal("999.99"),
                    spent_on=dt.date.fromisoformat(day),
                )
            )
        for month, source, target, amount in TRANSFERS:
            session.add(
                BudgetTransfer(
                    user_id=alice.id,
                    from_category_id=categories[source].id,
                    to_category_id=categories[target].id,
                    amount=Decimal(amount),
                    month=dt.date.fromisoformat(month),
                )
            )
        session.flush()
        return {name: category.id for name, category in categories.items()}
