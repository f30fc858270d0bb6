"""The budget rules against a reference model: random sequences of operations, every
month's figures compared to the cent, on SQLite and on PostgreSQL through PgBouncer.

`BudgetModel` below is a small plain-Python statement of the rules as the README gives
them (dicts and `Decimal`s, nothing imported from the product's computations):

* a category's monthly budget for a month is its one-month override, else the standing
  budget set most recently for a month on or before it, else its opening budget (only a
  category from before budget history has one: `category add --budget A` records A from
  its `--from` month, default this month, so it has none before); zero means none;
* budget = monthly budget + transfers in − transfers out; a category with no monthly
  budget and no transfer in the period has *no budget* (None, not zero);
  available = budget + carried − spent; rollover is on or off from a month until the next
  setting (off before the first); carried(M) = leftover(M−1) when the category rolls
  over in M−1, else 0, where leftover(m) = budget(m) (0 when none) + carried(m) +
  transfers in − out − spent, negative when overspent; over a range, carried is what
  came into its first month; over budget means a budget or a carried amount exists and
  less than nothing is available;
* a transfer needs the amount available in the source that month (or `allow_overdraw`);
  an undo moves it back and needs it available in the category that received it; an
  entry is undone at most once;
* `merge` and `delete --move-to` add the two histories month by month, keep TARGET's
  rollover settings, net out the transfers between the two, and are refused when the
  result would have a budget below zero in some month (unless `allow_overdraw`);
* income is summed per month: saved = income − spent, unbudgeted = income − budgeted.

`BudgetMachine` drives the product through its services and the unit of work, as the
command line does (transfers also through the command line itself), and applies each
operation to the model too. Refusals must agree (the same error; the model is left as
it was, so any trace of a refused write shows in the next comparison). What a step
prints is compared at once (the add-expense and edit-expense warning's figures, both
balances after a transfer); after every step, the `report --by month` trend of the
window (months, totals, average; each month's available counts what was carried into it),
the category report of the whole window, and the
report of each month whose figures changed in the model (every category's budget or
none, transfers in and out, carried, spent, available; totals; income, budgeted, saved,
unbudgeted). At the end of each run every month's report and `category list` are
compared, and `budget verify` must pass for every month and for the window.

The CI budget is small (`DEFAULT_EXAMPLES` runs of up to `DEFAULT_STEPS` steps per
backend, derandomized so it cannot flake). For a long run with random seeds:

    BUDGET_MODEL_EXAMPLES=500 BUDGET_MODEL_STEPS=60 \\
        .venv/bin/python -m pytest tests/test_budget_model.py

(a failure prints the shortest sequence of steps that shows it).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import TypeVar

import click.testing
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from budget_tracker import errors
from budget_tracker.errors import BudgetError
from budget_tracker.models import TABLE_NAMES, Category
from budget_tracker.services import categories as category_service
from budget_tracker.services import expenses as expense_service
from budget_tracker.services import income as income_service
from budget_tracker.services import reports as report_service
from budget_tracker.services import transfers as transfer_service
from budget_tracker.services import verify as verify_service
from budget_tracker.services.budgets import Figures, Period
from tests.conftest import TODAY, Backend

DEFAULT_EXAMPLES = 4
DEFAULT_STEPS = 20
EXAMPLES = int(os.environ.get("BUDGET_MODEL_EXAMPLES", DEFAULT_EXAMPLES))
STEPS = int(os.environ.get("BUDGET_MODEL_STEPS", DEFAULT_STEPS))
LONG_RUN = "BUDGET_MODEL_EXAMPLES" in os.environ

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
WINDOW = [dt.date(2026, month, 1) for month in range(1, 7)]
"""The months every operation and every comparison covers."""
STARTERS = ("Food", "Transport", "Entertainment", "Utilities")
"""The categories the first writing command creates (README), each without a budget."""
NEW_NAMES = ("Rent", "Gifts", "Travel", "Books", "food")
"""Names `category add` tries (`food` is Food in another case: refused while it exists)."""


def key(name: str) -> str:
    """Category names are one category in any case (the model's names are ASCII)."""
    return name.casefold()


def money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: dt.date) -> dt.date:
    return dt.date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def mean(total: Decimal, count: int) -> Decimal:
    return (total / count).quantize(CENT, rounding=ROUND_HALF_UP)


def rate(part: Decimal, whole: Decimal) -> Decimal | None:
    """`part` as a percentage of `whole`, one decimal, half up; None without a whole."""
    if whole <= 0:
        return None
    return (part * 100 / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


# --- the reference model --------------------------------------------------------------


class Refused(Exception):
    """The model refuses the operation; `error` names the `errors` class the product's
    refusal must be (or be a subclass of)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass
class CategoryModel:
    name: str
    opening: Decimal = ZERO
    standing: dict[dt.date, Decimal] = field(default_factory=dict)
    one_month: dict[dt.date, Decimal] = field(default_factory=dict)
    rollover: dict[dt.date, bool] = field(default_factory=dict)

    def standing_in(self, month: dt.date) -> Decimal:
        starts = [start for start in self.standing if start <= month]
        return self.standing[max(starts)] if starts else self.opening

    def monthly_budget(self, month: dt.date) -> Decimal:
        if month in self.one_month:
            return self.one_month[month]
        return self.standing_in(month)

    def rolls_over(self, month: dt.date) -> bool:
        starts = [start for start in self.rollover if start <= month]
        return self.rollover[max(starts)] if starts else False


@dataclass
class ExpenseModel:
    category: str
    amount: Decimal
    date: dt.date


@dataclass
class TransferModel:
    source: str
    target: str
    amount: Decimal
    month: dt.date
    reverses: int | None
    undone_by: int | None = None


@dataclass(frozen=True)
class Line:
    """One category's (or the total's) figures for a month or a range of months."""

    base: Decimal
    transfers_in: Decimal
    transfers_out: Decimal
    budget: Decimal | None
    carried: Decimal
    spent: Decimal

    @property
    def available(self) -> Decimal:
        return (self.budget or ZERO) + self.carried - self.spent

    @property
    def over_budget(self) -> bool:
        """A budget or a carried amount exists, and less than nothing is available."""
        return (self.budget is not None or self.carried != 0) and self.available < 0


@dataclass
class BudgetModel:
    """The acting user's budget as the README describes it; ids are the product's."""

    started: bool = False
    categories: dict[str, CategoryModel] = field(default_factory=dict)
    expenses: dict[int, ExpenseModel] = field(default_factory=dict)
    income: dict[int, tuple[Decimal, dt.date]] = field(default_factory=dict)
    transfers: dict[int, TransferModel] = field(default_factory=dict)

    # -- reading

    def category(self, name: str) -> CategoryModel:
        found = self.categories.get(key(name))
        if found is None:
            raise Refused("NotFound")
        return found

    def names(self) -> list[str]:
        return sorted(category.name for category in self.categories.values())

    def _moved(self, name: str, months: list[dt.date]) -> tuple[Decimal, Decimal, bool]:
        k = key(name)
        moved_in = moved_out = ZERO
        touched = False
        for transfer in self.transfers.values():
            if transfer.month not in months:
                continue
            if key(transfer.target) == k:
                moved_in += transfer.amount
                touched = True
            if key(transfer.source) == k:
                moved_out += transfer.amount
                touched = True
        return moved_in, moved_out, touched

    def _spent(self, name: str, months: list[dt.date]) -> Decimal:
        return sum(
            (
                expense.amount
                for expense in self.expenses.values()
                if key(expense.category) == key(name) and expense.date.replace(day=1) in months
            ),
            ZERO,
        )

    def line(self, name: str, months: list[dt.date]) -> Line:
        """A category's figures over `months` (one month, or a range)."""
        category = self.category(name)
        base = sum((category.monthly_budget(month) for month in months), ZERO)
        moved_in, moved_out, touched = self._moved(name, months)
        budget = None if base == 0 and not touched else base + moved_in - moved_out
        return Line(
            base=base,
            transfers_in=moved_in,
            transfers_out=moved_out,
            budget=budget,
            carried=self.carried(name, months[0]),
            spent=self._spent(name, months),
        )

    def leftover(self, name: str, month: dt.date) -> Decimal:
        """What is left at the end of `month`: budget (0 when none) + carried + in − out
        − spent, negative when overspent."""
        return self.line(name, [month]).available

    def carried(self, name: str, month: dt.date) -> Decimal:
        before = previous_month(month)
        if not self.category(name).rolls_over(before):
            return ZERO
        return self.leftover(name, before)

    def available(self, name: str, month: dt.date) -> Decimal:
        return self.line(name, [month]).available

    def income_in(self, months: list[dt.date]) -> Decimal:
        return sum(
            (amount for amount, day in self.income.values() if day.replace(day=1) in months),
            ZERO,
        )

    def month_view(self, month: dt.date) -> object:
        """Everything the model says about one month (to tell which months a step changed)."""
        return (
            [(name, self.line(name, [month])) for name in self.names()],
            self.income_in([month]),
        )

    def total(self, months: list[dt.date]) -> Line:
        """Every category added up: the total has no budget only when no line has one."""
        lines = [self.line(name, months) for name in self.names()]
        budgets = [line.budget for line in lines if line.budget is not None]
        return Line(
            base=sum((line.base for line in lines), ZERO),
            transfers_in=sum((line.transfers_in for line in lines), ZERO),
            transfers_out=sum((line.transfers_out for line in lines), ZERO),
            budget=sum(budgets, ZERO) if budgets else None,
            carried=sum((line.carried for line in lines), ZERO),
            spent=sum((line.spent for line in lines), ZERO),
        )

    # -- writing (each checks everything before it changes anything)

    def start(self) -> None:
        """A writing command's first run: the default user and the starter categories."""
        if not self.started:
            self.started = True
            for name in STARTERS:
                self.categories[key(name)] = CategoryModel(name)

    def add_category(self, name: str, budget: Decimal, from_month: dt.date) -> None:
        """`category add`: the budget starts `from_month`, none before (zero: none)."""
        self.new_category(name).standing.update({from_month: budget} if budget else {})

    def add_upgraded_category(self, name: str, opening: Decimal) -> None:
        """A category as an upgrade from before budget history leaves it: its budget is
        the opening budget of every month."""
        self.new_category(name).opening = opening

    def new_category(self, name: str) -> CategoryModel:
        self.start()
        if key(name) in self.categories:
            raise Refused("Conflict")
        category = self.categories[key(name)] = CategoryModel(name)
        return category

    def set_budget(self, name: str, amount: Decimal, month: dt.date, one_month: bool) -> None:
        self.start()
        category = self.category(name)
        (category.one_month if one_month else category.standing)[month] = amount

    def set_rollover(self, name: str, enabled: bool, month: dt.date) -> None:
        self.start()
        self.category(name).rollover[month] = enabled

    def add_expense(
        self, new_id: Callable[[], int], name: str, amount: Decimal, day: dt.date
    ) -> None:
        self.start()
        category = self.category(name)
        self.expenses[new_id()] = ExpenseModel(category.name, amount, day)

    def edit_expense(
        self,
        expense_id: int,
        *,
        amount: Decimal | None,
        name: str | None,
        day: dt.date | None,
    ) -> None:
        if expense_id not in self.expenses:
            raise Refused("NotFound")
        expense = self.expenses[expense_id]
        if name is not None:
            expense.category = self.category(name).name
        if amount is not None:
            expense.amount = amount
        if day is not None:
            expense.date = day

    def delete_expense(self, expense_id: int) -> None:
        if self.expenses.pop(expense_id, None) is None:
            raise Refused("NotFound")

    def transfer(
        self,
        new_id: Callable[[], int],
        source: str,
        target: str,
        amount: Decimal,
        month: dt.date,
        *,
        allow_overdraw: bool,
        reverses: int | None = None,
    ) -> None:
        """Record a transfer; `new_id` gives the product's id once it is allowed."""
        if key(source) == key(target):
            raise Refused("InvalidInput")
        self.start()
        source, target = self.category(source).name, self.category(target).name
        if not allow_overdraw and self.available(source, month) < amount:
            raise Refused("InsufficientBudget")
        transfer_id = new_id()
        self.transfers[transfer_id] = TransferModel(source, target, amount, month, reverses)
        if reverses is not None:
            self.transfers[reverses].undone_by = transfer_id

    def undo(self, original_id: int, new_id: Callable[[], int], *, allow_overdraw: bool) -> None:
        original = self.transfers.get(original_id)
        if original is None:
            raise Refused("UnknownTransfer")
        if original.undone_by is not None:
            raise Refused("Conflict")
        self.transfer(
            new_id,
            original.target,
            original.source,
            original.amount,
            original.month,
            allow_overdraw=allow_overdraw,
            reverses=original_id,
        )

    def add_income(self, new_id: Callable[[], int], amount: Decimal, day: dt.date) -> None:
        self.start()
        self.income[new_id()] = (amount, day)

    def edit_income(self, income_id: int, amount: Decimal | None, day: dt.date | None) -> None:
        if income_id not in self.income:
            raise Refused("NotFound")
        old_amount, old_day = self.income[income_id]
        self.income[income_id] = (amount or old_amount, day or old_day)

    def delete_income(self, income_id: int) -> None:
        if self.income.pop(income_id, None) is None:
            raise Refused("NotFound")

    def delete_category(self, name: str) -> None:
        self.start()
        category = self.category(name)
        in_use = any(key(e.category) == key(name) for e in self.expenses.values()) or any(
            key(name) in (key(t.source), key(t.target)) for t in self.transfers.values()
        )
        if in_use:
            raise Refused("CategoryInUse")
        del self.categories[key(category.name)]

    def merge(self, source: str, target: str, *, allow_overdraw: bool) -> None:
        """Fold SOURCE into TARGET: the budgets add up month by month, the transfers
        between the two net out (they are removed), everything else moves."""
        self.start()
        if key(source) == key(target):
            self.category(source)
            raise Refused("Conflict")
        a, b = self.category(source), self.category(target)
        merged = CategoryModel(
            b.name,
            opening=a.opening + b.opening,
            standing={
                month: a.standing_in(month) + b.standing_in(month)
                for month in {*a.standing, *b.standing}
            },
            one_month={
                month: a.monthly_budget(month) + b.monthly_budget(month)
                for month in {*a.one_month, *b.one_month}
            },
            rollover=dict(b.rollover),  # TARGET's settings: SOURCE's money rolls with them
        )
        pair = {key(a.name), key(b.name)}
        between = {
            transfer_id
            for transfer_id, transfer in self.transfers.items()
            if {key(transfer.source), key(transfer.target)} == pair
        }
        if not allow_overdraw:
            for month in {t.month for t in self.transfers.values()}:
                net = ZERO
                for transfer_id, transfer in self.transfers.items():
                    if transfer_id in between or transfer.month != month:
                        continue
                    if key(transfer.target) in pair:
                        net += transfer.amount
                    if key(transfer.source) in pair:
                        net -= transfer.amount
                if merged.monthly_budget(month) + net < 0:
                    raise Refused("BudgetBelowZero")
        for transfer_id in between:
            del self.transfers[transfer_id]
        for transfer in self.transfers.values():
            if transfer.undone_by in between:
                transfer.undone_by = None
            if key(transfer.source) == key(a.name):
                transfer.source = b.name
            if key(transfer.target) == key(a.name):
                transfer.target = b.name
        for expense in self.expenses.values():
            if key(expense.category) == key(a.name):
                expense.category = b.name
        del self.categories[key(a.name)]
        self.categories[key(b.name)] = merged


# --- driving the product --------------------------------------------------------------


T = TypeVar("T")


def reset(backend: Backend) -> None:
    """Empty every table: each run starts from a database no command has written to."""
    with backend.database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(TABLE_NAMES)} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(TABLE_NAMES):
                connection.execute(text(f"DELETE FROM {table}"))


AMOUNTS = st.one_of(
    st.integers(min_value=1, max_value=40_000), st.sampled_from([1, 100, 5_000, 99_99])
).map(money)
BUDGETS = st.one_of(st.just(0), st.integers(min_value=1, max_value=60_000)).map(money)
MONTHS = st.sampled_from(WINDOW)
DAYS = st.builds(
    lambda month, day: month.replace(day=min(day, 28 if month.month == 2 else 30)),
    MONTHS,
    st.sampled_from([1, 2, 15, 28, 31]),
)


def pick(index: int, live: list[int], ever: list[int]) -> int:
    """An id by `index`: mostly one that exists, one in four any id ever given out (a
    deleted one is refused)."""
    if live and index % 4:
        return live[index // 4 % len(live)]
    return ever[index % len(ever)]


NAME = st.sampled_from([*STARTERS, *NEW_NAMES])
INDEX = st.integers(min_value=0, max_value=10_000)


class BudgetMachine(RuleBasedStateMachine):
    """Each operation on the model and on the product, side by side."""

    backend: Backend  # set per backend by the test

    def __init__(self) -> None:
        super().__init__()
        reset(self.backend)
        self.model = BudgetModel()
        # Every id the product gave out, deleted ones included (to exercise refusals).
        self.expense_ids: list[int] = []
        self.income_ids: list[int] = []
        self.transfer_ids: list[int] = []
        self.checked: dict[dt.date, object] = {}
        """The model's view of each month when the product was last compared with it."""
        self.consistent = True
        """False from the start of a step until the comparison after it passed: a run that
        failed is not compared again at its end (that would hide the first failure)."""

    def run(self, work: Callable[[Session], T], *, write: bool = True) -> T:
        """One unit of work, as a command runs it."""
        return self.backend.database.run(work, write=write)

    def apply(
        self, step: Callable[[BudgetModel, Callable[[], T]], None], product: Callable[[], T]
    ) -> T | None:
        """Apply an operation to the model and to the product: both do it, or both refuse
        it with the same error. `step` changes the model and calls its second argument,
        which runs the product, once the model allows the operation (a step that creates
        a row needs the product's id). Returns the product's result, None when refused."""
        self.consistent = False
        before = copy.deepcopy(self.model)
        results: list[T] = []

        def run_product() -> T:
            try:
                results.append(product())
            except BudgetError as error:
                raise AssertionError(
                    f"the model allows it; the product refused: {error!r}"
                ) from None
            return results[-1]

        try:
            step(self.model, run_product)
        except Refused as refused:
            self.model = before
            assert not results, "the model refused after the product ran"
            try:
                outcome = product()
            except BudgetError as error:
                # The model names the kind of refusal; the product may say more precisely
                # which (an UnknownTransfer is a NotFound).
                assert isinstance(error, getattr(errors, refused.error)), (refused.error, error)
                event(f"refused: {refused.error}")
                return None
            raise AssertionError(
                f"the model refuses ({refused.error}); the product did it: {outcome}"
            ) from None
        assert len(results) == 1, "the model step must run the product once"
        event("done")
        return results[0]

    def apply_plain(
        self, step: Callable[[BudgetModel], None], product: Callable[[], T]
    ) -> T | None:
        """`apply` for an operation whose model step needs nothing from the product."""

        def both(model: BudgetModel, run: Callable[[], T]) -> None:
            step(model)
            run()

        return self.apply(both, product)

    def draw_name(self, data: st.DataObject) -> str:
        """A category name: mostly one the model has (sometimes in another case),
        sometimes any name (an unknown one is refused)."""
        existing = self.model.names()
        if not existing:
            return data.draw(NAME)
        known = st.sampled_from(existing)
        return data.draw(st.one_of(known, known, known.map(str.upper), NAME))

    # -- budgets and categories

    @rule(data=st.data(), amount=BUDGETS, month=MONTHS, one_month=st.booleans())
    def set_budget(
        self, data: st.DataObject, amount: Decimal, month: dt.date, one_month: bool
    ) -> None:
        """`category set-budget NAME AMOUNT --from M`, or `--month M` (one month)."""
        name = self.draw_name(data)
        self.apply_plain(
            lambda model: model.set_budget(name, amount, month, one_month),
            lambda: self.run(
                lambda session: category_service.set_category_budget(
                    session,
                    user_email=None,
                    name=name,
                    monthly_budget=amount,
                    month=month,
                    one_month=one_month,
                )
            ),
        )

    @rule(data=st.data(), enabled=st.booleans(), month=MONTHS)
    def set_rollover(self, data: st.DataObject, enabled: bool, month: dt.date) -> None:
        """`category set-rollover NAME on|off --from M`."""
        name = self.draw_name(data)
        self.apply_plain(
            lambda model: model.set_rollover(name, enabled, month),
            lambda: self.run(
                lambda session: category_service.set_rollover(
                    session, user_email=None, name=name, enabled=enabled, month=month
                )
            ),
        )

    @rule(name=st.sampled_from(NEW_NAMES), amount=BUDGETS, from_month=st.none() | MONTHS)
    def add_category(self, name: str, amount: Decimal, from_month: dt.date | None) -> None:
        """`category add NAME --budget A [--from M]`; without --from the budget starts
        this month (the command line's today, inside the window)."""
        start = from_month or TODAY.replace(day=1)
        self.apply_plain(
            lambda model: model.add_category(name, amount, start),
            lambda: self.run(
                lambda session: category_service.add_category(
                    session,
                    user_email=None,
                    name=name,
                    monthly_budget=amount,
                    color=None,
                    from_month=start,
                )
            ),
        )

    @rule(name=st.sampled_from(NEW_NAMES), amount=BUDGETS)
    def add_upgraded_category(self, name: str, amount: Decimal) -> None:
        """A category with an opening budget, as upgrading a database from before budget
        history leaves it (revision 0006): its budget applies to every month."""

        def upgraded(session: Session) -> category_service.CategoryChange:
            added = category_service.add_category(
                session,
                user_email=None,
                name=name,
                monthly_budget=ZERO,
                color=None,
                from_month=WINDOW[0],
            )
            session.execute(
                update(Category).where(Category.id == added.id).values(monthly_budget=amount)
            )
            return added

        self.apply_plain(
            lambda model: model.add_upgraded_category(name, amount),
            lambda: self.run(upgraded),
        )

    @precondition(lambda self: len(self.model.categories) >= 4)
    @rule(
        data=st.data(),
        how=st.sampled_from(["merge", "delete --move-to", "delete"]),
        allow_overdraw=st.booleans(),
    )
    def remove_category(self, data: st.DataObject, how: str, allow_overdraw: bool) -> None:
        """`category merge SOURCE --into TARGET`, `category delete SOURCE --move-to
        TARGET` (the same fold), or `category delete SOURCE` (refused while it has
        expenses or transfers). Only while there are categories enough to go on with."""
        from_name, to_name = self.draw_name(data), self.draw_name(data)

        def product() -> category_service.CategoryRemoval:
            if how == "merge":
                return self.run(
                    lambda session: category_service.merge_categories(
                        session,
                        user_email=None,
                        source=from_name,
                        target=to_name,
                        today=WINDOW[0],
                        allow_overdraw=allow_overdraw,
                    )
                )
            return self.run(
                lambda session: category_service.delete_category(
                    session,
                    user_email=None,
                    name=from_name,
                    move_to=to_name if how == "delete --move-to" else None,
                    today=WINDOW[0],
                    allow_overdraw=allow_overdraw,
                )
            )

        def step(model: BudgetModel) -> None:
            if how == "delete":
                model.delete_category(from_name)
            else:
                model.merge(from_name, to_name, allow_overdraw=allow_overdraw)

        self.apply_plain(step, product)

    # -- expenses

    @rule(data=st.data(), expenses=st.lists(st.tuples(AMOUNTS, DAYS), min_size=1, max_size=3))
    def add_expenses(self, data: st.DataObject, expenses: list[tuple[Decimal, dt.date]]) -> None:
        """`add-expense AMOUNT CATEGORY --date D`, a few times (one command each)."""
        for amount, day in expenses:
            self.add_expense(self.draw_name(data), amount, day)

    def add_expense(self, name: str, amount: Decimal, day: dt.date) -> None:
        def product() -> expense_service.AddedExpense:
            return self.run(
                lambda session: expense_service.add_expense(
                    session,
                    user_email=None,
                    category=name,
                    amount=amount,
                    spent_on=day,
                    description="",
                    idempotency_key=None,
                )
            )

        added = self.apply(
            lambda model, run: model.add_expense(lambda: run().expense.id, name, amount, day),
            product,
        )
        if added is not None:
            self.expense_ids.append(added.expense.id)
            self.check_warning(added.expense.category, day, added.month.figures)

    def check_warning(self, category: str, day: dt.date, figures: Figures) -> None:
        """The figures behind the over-budget warning of add-expense and edit-expense
        (the month's budget, carried, spending and over-budget) follow the same rules."""
        line = self.model.line(category, [day.replace(day=1)])
        assert (
            figures.budget,
            figures.carried,
            figures.spent,
            figures.available,
            figures.over_budget,
        ) == (
            line.budget,
            line.carried,
            line.spent,
            line.available,
            line.over_budget,
        ), f"warning figures of {category} for {day:%Y-%m}"

    @precondition(lambda self: self.expense_ids)
    @rule(
        data=st.data(),
        index=INDEX,
        amount=st.none() | AMOUNTS,
        recategorize=st.booleans(),
        day=st.none() | DAYS,
    )
    def edit_expense(
        self,
        data: st.DataObject,
        index: int,
        amount: Decimal | None,
        recategorize: bool,
        day: dt.date | None,
    ) -> None:
        name = self.draw_name(data) if recategorize else None
        expense_id = pick(index, sorted(self.model.expenses), self.expense_ids)
        change = self.apply_plain(
            lambda model: model.edit_expense(expense_id, amount=amount, name=name, day=day),
            lambda: self.run(
                lambda session: expense_service.edit_expense(
                    session,
                    user_email=None,
                    expense_id=expense_id,
                    amount=amount,
                    category=name,
                    spent_on=day,
                )
            ),
        )
        if change is not None:
            assert change.after is not None and change.month is not None
            self.check_warning(change.after.category, change.after.date, change.month.figures)

    @precondition(lambda self: self.expense_ids)
    @rule(index=INDEX)
    def delete_expense(self, index: int) -> None:
        expense_id = pick(index, sorted(self.model.expenses), self.expense_ids)
        self.apply_plain(
            lambda model: model.delete_expense(expense_id),
            lambda: self.run(
                lambda session: expense_service.delete_expense(
                    session, user_email=None, expense_id=expense_id
                )
            ),
        )

    # -- transfers

    @rule(
        data=st.data(),
        amount=AMOUNTS,
        month=MONTHS,
        allow_overdraw=st.sampled_from([False, False, False, True]),
    )
    def transfer(
        self, data: st.DataObject, amount: Decimal, month: dt.date, allow_overdraw: bool
    ) -> None:
        from_name, to_name = self.draw_name(data), self.draw_name(data)
        outcome = self.apply(
            lambda model, run: model.transfer(
                lambda: run().transfer.id,
                from_name,
                to_name,
                amount,
                month,
                allow_overdraw=allow_overdraw,
            ),
            lambda: self.run(
                lambda session: transfer_service.transfer_budget(
                    session,
                    user_email=None,
                    source=from_name,
                    target=to_name,
                    amount=amount,
                    month=month,
                    allow_overdraw=allow_overdraw,
                )
            ),
        )
        if outcome is not None:
            self.after_transfer(outcome)

    def after_transfer(self, outcome: transfer_service.TransferOutcome) -> None:
        """What a transfer prints: both categories' budget, carried, spending and
        availability."""
        self.transfer_ids.append(outcome.transfer.id)
        month = outcome.transfer.month
        for balance in (outcome.source, outcome.target):
            line = self.model.line(balance.category, [month])
            assert (balance.budget, balance.carried, balance.spent, balance.available) == (
                line.base + line.transfers_in - line.transfers_out,
                line.carried,
                line.spent,
                line.available,
            ), f"transfer balance of {balance.category} for {month:%Y-%m}"

    @rule(
        data=st.data(),
        amount=AMOUNTS,
        month=MONTHS,
        allow_overdraw=st.sampled_from([False, False, True]),
    )
    def transfer_command(
        self, data: st.DataObject, amount: Decimal, month: dt.date, allow_overdraw: bool
    ) -> None:
        from_name, to_name = self.draw_name(data), self.draw_name(data)
        """`budget transfer` itself: exit 0 and the entry in JSON, or a one-line refusal
        (exit 1; exit 2 for a transfer to the same category) with nothing on stdout."""
        args = ["transfer", str(amount), "--from", from_name, "--to", to_name]
        args += ["--month", f"{month:%Y-%m}", "--format", "json"]
        args += ["--allow-overdraw"] if allow_overdraw else []

        def command() -> click.testing.Result:
            return self.backend.invoke(args)

        def step(model: BudgetModel, run: Callable[[], click.testing.Result]) -> None:
            def new_id() -> int:
                result = run()
                assert result.exit_code == 0, (args, result.stderr)
                return int(json.loads(result.stdout)["id"])

            model.transfer(new_id, from_name, to_name, amount, month, allow_overdraw=allow_overdraw)

        self.consistent = False
        before = copy.deepcopy(self.model)
        try:
            step(self.model, command)
        except Refused as refused:
            self.model = before
            result = command()
            expected = 2 if refused.error == "InvalidInput" else 1
            assert result.exit_code == expected, (args, refused.error, result.stderr)
            assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
            return
        self.transfer_ids.append(max(self.model.transfers))

    @precondition(lambda self: self.transfer_ids)
    @rule(index=INDEX, allow_overdraw=st.sampled_from([False, False, True]))
    def undo_transfer(self, index: int, allow_overdraw: bool) -> None:
        original = pick(index, sorted(self.model.transfers), self.transfer_ids)
        outcome = self.apply(
            lambda model, run: model.undo(
                original, lambda: run().transfer.id, allow_overdraw=allow_overdraw
            ),
            lambda: self.run(
                lambda session: transfer_service.undo_transfer(
                    session, user_email=None, transfer_id=original, allow_overdraw=allow_overdraw
                )
            ),
        )
        if outcome is not None:
            self.after_transfer(outcome)

    # -- income

    @rule(amount=AMOUNTS, day=DAYS)
    def add_income(self, amount: Decimal, day: dt.date) -> None:
        added = self.apply(
            lambda model, run: model.add_income(lambda: run().income.id, amount, day),
            lambda: self.run(
                lambda session: income_service.add_income(
                    session,
                    user_email=None,
                    amount=amount,
                    received_on=day,
                    source="",
                    idempotency_key=None,
                )
            ),
        )
        assert added is not None
        self.income_ids.append(added.income.id)

    @precondition(lambda self: self.income_ids)
    @rule(index=INDEX, amount=st.none() | AMOUNTS, day=st.none() | DAYS, delete=st.booleans())
    def change_income(
        self, index: int, amount: Decimal | None, day: dt.date | None, delete: bool
    ) -> None:
        """`edit-income ID [--amount] [--date]`, or `delete-income ID`."""
        income_id = pick(index, sorted(self.model.income), self.income_ids)
        if delete:
            self.apply_plain(
                lambda model: model.delete_income(income_id),
                lambda: self.run(
                    lambda session: income_service.delete_income(
                        session, user_email=None, income_id=income_id
                    )
                ),
            )
            return
        self.apply_plain(
            lambda model: model.edit_income(income_id, amount, day),
            lambda: self.run(
                lambda session: income_service.edit_income(
                    session, user_email=None, income_id=income_id, amount=amount, received_on=day
                )
            ),
        )

    # -- the comparisons

    @invariant()
    def figures_match_the_model(self) -> None:
        """After every step: the trend and the whole window's report, and the report of
        each month whose figures the step changed in the model. (Every month, and
        `category list`, at the end of the run: see `teardown`.)"""
        months = {month: self.model.month_view(month) for month in WINDOW}
        changed = [month for month in WINDOW if months[month] != self.checked.get(month)]
        self.run(lambda session: self.compare(session, changed), write=False)
        self.checked = months
        self.consistent = True

    def compare(self, session: Session, months: list[dt.date], *, listings: bool = False) -> None:
        model = self.model
        for month in months:
            report = report_service.category_report(
                session, user_email=None, period=Period(month, month)
            )
            self.compare_report(report, [month])
            if not listings:
                continue
            listing = category_service.list_categories(session, user_email=None, today=month)
            assert {
                row.name: (row.monthly_budget, row.budget, row.carried, row.spent, row.available)
                for row in listing.rows
            } == {
                name: (line.base, line.budget, line.carried, line.spent, line.available)
                for name in model.names()
                for line in [model.line(name, [month])]
            }, f"category list for {month:%Y-%m}"
        window = Period(WINDOW[0], WINDOW[-1])
        self.compare_report(
            report_service.category_report(session, user_email=None, period=window), WINDOW
        )
        self.compare_trend(report_service.monthly_trend(session, user_email=None, period=window))

    def compare_report(self, report: report_service.CategoryReport, months: list[dt.date]) -> None:
        """Every category's line, the totals and the summary of a category report."""
        model = self.model
        label = f"report {months[0]:%Y-%m}..{months[-1]:%Y-%m}"
        assert {
            line.category: (
                line.base_budget,
                line.transfers_in,
                line.transfers_out,
                line.budget,
                line.carried,
                line.spent,
                line.available,
            )
            for line in report.lines
        } == {
            name: (
                line.base,
                line.transfers_in,
                line.transfers_out,
                line.budget,
                line.carried,
                line.spent,
                line.available,
            )
            for name in model.names()
            for line in [model.line(name, months)]
        }, label
        total = model.total(months)
        income = model.income_in(months)
        budgeted = total.budget or ZERO
        summary = report.summary
        assert (
            report.totals.budget,
            report.totals.carried,
            report.totals.spent,
            report.totals.available,
            summary.income,
            summary.budgeted,
            summary.spent,
            summary.saved,
            summary.unbudgeted,
            summary.savings_rate,
        ) == (
            total.budget,
            total.carried,
            total.spent,
            total.available,
            income,
            budgeted,
            total.spent,
            income - total.spent,
            income - budgeted,
            rate(income - total.spent, income),
        ), f"{label}: totals and summary"

    def compare_trend(self, trend: report_service.TrendReport) -> None:
        """`report --by month`: each month, the totals and the average."""
        model = self.model
        expected = []
        for month in WINDOW:
            total, income = model.total([month]), model.income_in([month])
            saved = rate(income - total.spent, income)
            # Each month's available counts what was carried into it, as its report does.
            available = (total.budget or ZERO) + total.carried - total.spent
            expected.append(
                (month, total.budget, total.carried, total.spent, available, income, saved)
            )
        assert [
            (
                line.month,
                line.budget,
                line.carried,
                line.spent,
                line.available,
                line.income,
                line.savings_rate,
            )
            for line in trend.lines
        ] == expected, "report --by month"
        budgets = [line[1] for line in expected if line[1] is not None]
        budget = sum(budgets, ZERO) if budgets else None
        carried = expected[0][2]  # into the window's first month
        spent = sum((line[3] for line in expected), ZERO)
        income = model.income_in(WINDOW)
        count = len(WINDOW)
        assert (
            trend.totals.budget,
            trend.totals.carried,
            trend.totals.spent,
            trend.totals.available,
            trend.income,
        ) == (
            budget,
            carried,
            spent,
            (budget or ZERO) + carried - spent,
            income,
        ), "report --by month: totals"
        assert (trend.average.budget, trend.average.spent, trend.average_income) == (
            None if budget is None else mean(budget, count),
            mean(spent, count),
            mean(income, count),
        ), "report --by month: average"

    def teardown(self) -> None:
        """Every month's report and `category list` against the model; then `budget
        verify` recomputes each month and the window from the raw rows."""
        if not self.model.started or not self.consistent:
            return

        self.run(lambda session: self.compare(session, WINDOW, listings=True), write=False)
        for period in [*(Period(m, m) for m in WINDOW), Period(WINDOW[0], WINDOW[-1])]:
            # One unit of work each, as `budget verify` runs (it reads one snapshot).
            verification = self.run(
                partial(verify_service.verify_report, period=period, user_email=None), write=False
            )
            assert verification.verified, (period, verification.mismatches)
        result = self.backend.invoke(
            ["verify", "--from", f"{WINDOW[0]:%Y-%m}", "--to", f"{WINDOW[-1]:%Y-%m}"]
        )
        assert result.exit_code == 0, result.stdout + result.stderr


SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=not LONG_RUN,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_budget_rules_match_the_model(backend: Backend) -> None:
    machine = type("Machine", (BudgetMachine,), {"backend": backend})
    run_state_machine_as_test(machine, settings=SETTINGS)
