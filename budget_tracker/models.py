"""The schema: typed SQLAlchemy models. Alembic revisions are generated from these.

Money is stored as integer cents through the `Money` type on both backends, so sums and
comparisons in SQL are exact and SQLite never sees a Decimal. Ownership is enforced by the
database: an expense or a transfer references its category through `(user_id, id)`, so it
cannot point at another user's category, nor at a user that does not exist (a category's
user does). That composite key is their only link to `users` (revision 0003): a second
`user_id -> users` key would cost a check per inserted row and prove nothing more. Those
keys are NO ACTION, so the database refuses to delete a category, or a user, while
expenses or transfers still reference it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    Date,
    DateTime,
    FetchedValue,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Insert,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from budget_tracker.money import from_cents, to_cents
from budget_tracker.rules import (
    AMOUNT_MAX_CENTS,
    COLOR_SQL_CHECK,
    DESCRIPTION_MAX,
    EMAIL_MAX,
    NAME_KEY_MAX,
    NAME_MAX,
    USER_NAME_MAX,
)
from budget_tracker.rules import name_key as name_key  # re-exported: services derive keys
from budget_tracker.rules import normalize_email as normalize_email

ROLE_NAME_MAX = 63
"""PostgreSQL's identifier limit (NAMEDATALEN - 1)."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Money(TypeDecorator[Decimal]):
    """A Decimal amount stored as integer cents (BIGINT): exact on every backend."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)
        return to_cents(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return from_cents(value)

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        # Comparisons and arithmetic with Python numbers are in money, not in cents.
        return self


class Email(TypeDecorator[str]):
    """An e-mail address, normalized (`rules.normalize_email`) whenever it is bound: in
    inserts, in updates, also Core ones, and in comparisons. The one place it is derived."""

    impl = String(EMAIL_MAX)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else normalize_email(value)


def name_columns(name: str) -> dict[str, str]:
    """What writing `name` to a category or an import profile writes: the name, its
    identity `name_key` (`rules.name_key`) and `keyed_name`, the name that key was derived
    from. For Core statements: `update(Category).values(**name_columns("Groceries"))`.

    The database cannot derive the key itself: NFKC case folding is Python's
    `str.casefold`, which SQLite does not have and PostgreSQL's `lower(normalize(...))`
    only approximates (`ß`, `ς`, `İ`; and `lower()` follows the database's locale). So
    the key is derived here, and the database refuses a change of `name` that does not
    also write `keyed_name` with the new name (revision 0014): a statement that renames
    without re-deriving the key fails instead of leaving a stale key behind.
    """
    return {"name": name, "name_key": name_key(name), "keyed_name": name}


def _name_key_default(context: Any) -> str:
    """`name_key` when an INSERT does not give one: derived from its name."""
    return name_key(context.get_current_parameters()["name"])


def _keyed_name_default(context: Any) -> str:
    """`keyed_name` when an INSERT does not give one: the name inserted with its key."""
    return str(context.get_current_parameters()["name"])


def _keyed_name() -> Mapped[str | None]:
    return mapped_column(String(NAME_MAX), default=_keyed_name_default)


# SQLite ids are never reused (AUTOINCREMENT): an id in a script or a note can never name a
# different row later. PostgreSQL's sequences never go back either.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _created_at() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.current_timestamp())


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(Email, unique=True)
    name: Mapped[str] = mapped_column(String(USER_NAME_MAX))
    created_at: Mapped[dt.datetime] = _created_at()
    role_name: Mapped[str | None] = mapped_column(String(ROLE_NAME_MAX), index=True)
    """The PostgreSQL role this person connects as (row-level security, revision 0011).
    None: not linked, so only the role that owns the tables sees this user."""
    is_default: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    """The user a command acts for when none is named (`budget user default EMAIL`)."""

    __table_args__ = (
        CheckConstraint("email <> ''", name="email_not_empty"),
        CheckConstraint(f"length(email) <= {EMAIL_MAX}", name="email_length"),
        CheckConstraint(f"length(name) <= {USER_NAME_MAX}", name="name_length"),
        # At most one default user: a partial unique index over the one true row.
        Index(
            "ix_users_one_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
        NEVER_REUSE_IDS,
    )

    @validates("email")
    def _normalize_email(self, _key: str, value: str) -> str:
        # The object holds what the column type will store.
        return normalize_email(value)


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    name_key: Mapped[str] = mapped_column(String(NAME_KEY_MAX), default=_name_key_default)
    """`rules.name_key(name)`: set with the name by the ORM, derived by an INSERT without it."""
    keyed_name: Mapped[str | None] = _keyed_name()
    """The name `name_key` was derived from (`name_columns`). The database refuses an
    UPDATE that changes `name` without writing this too, and any row where it is not
    `name`; None only in rows written by raw SQL that left it out."""
    color: Mapped[str | None] = mapped_column(String(7))
    monthly_budget: Mapped[Decimal] = mapped_column(Money, server_default="0")
    """The opening budget: in force in every month before the category's first standing
    change in `category_budgets` (in every month, when it has none). Zero: no budget."""
    created_at: Mapped[dt.datetime] = _created_at()

    __table_args__ = (
        UniqueConstraint("user_id", "name_key"),
        # Target of the composite foreign keys that tie expenses and transfers to a
        # category *of the same user*.
        UniqueConstraint("user_id", "id"),
        CheckConstraint("monthly_budget >= 0", name="budget_not_negative"),
        CheckConstraint("name <> ''", name="name_not_empty"),
        CheckConstraint(f"length(name) <= {NAME_MAX}", name="name_length"),
        CheckConstraint(f"length(name_key) <= {NAME_KEY_MAX}", name="name_key_length"),
        CheckConstraint(COLOR_SQL_CHECK, name="color_hex"),
        NEVER_REUSE_IDS,
    )

    @validates("name")
    def _set_name_key(self, _key: str, value: str) -> str:
        self.name_key, self.keyed_name = name_key(value), value
        return value


class Expense(Base):
    __tablename__ = "expenses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key of its own: the composite key below implies the user exists.
    user_id: Mapped[int] = mapped_column(Integer)
    category_id: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Money)
    description: Mapped[str] = mapped_column(String(DESCRIPTION_MAX), server_default="")
    spent_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = _created_at()
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    """Client-generated key (a retried command, or an imported row's fingerprint)."""
    entered_by: Mapped[int | None] = mapped_column(Integer, server_default=FetchedValue())
    """The user who recorded it. The app writes `entering_user(user_id)` in the same INSERT
    (no statement of its own): on PostgreSQL the user linked to the connected role, else
    the budget's own user. Raw SQL gets the column's PostgreSQL default (revision 0011,
    not declared here), the linked user or None. None (rows from before 0011, raw SQL by
    the owner's role) counts as the budget's own user: see `entered_by_person`. No
    foreign key: users are never deleted, and the key would cost a check per inserted
    row."""

    __table_args__ = (
        ForeignKeyConstraint(
            ["user_id", "category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_expenses_user_id_category_id_categories",
        ),
        UniqueConstraint("user_id", "idempotency_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"amount <= {AMOUNT_MAX_CENTS}", name="amount_max"),
        CheckConstraint(f"length(description) <= {DESCRIPTION_MAX}", name="description_length"),
        # Covering index for reports: a month's spending per category is an index-only
        # range scan however long the history (it also serves every (user_id, spent_on)
        # lookup, so the plain index it replaced would only slow writes down).
        Index(None, "user_id", "spent_on", "category_id", "amount"),
        Index(None, "category_id", "spent_on"),
        NEVER_REUSE_IDS,
    )


class BudgetTransfer(Base):
    """An append-only ledger entry moving budget between two categories for one month."""

    __tablename__ = "budget_transfers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)  # implied by the category keys below
    from_category_id: Mapped[int] = mapped_column(Integer)
    to_category_id: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Money)
    month: Mapped[dt.date] = mapped_column(Date)
    """First day of the month whose budgets move."""
    note: Mapped[str] = mapped_column(String(DESCRIPTION_MAX), server_default="")
    created_at: Mapped[dt.datetime] = _created_at()
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("budget_transfers.id"), unique=True)
    """Set on an undo entry: the transfer it reverses (each can be undone once)."""
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    entered_by: Mapped[int | None] = mapped_column(Integer, server_default=FetchedValue())
    """The user who recorded it (see `Expense.entered_by`)."""

    __table_args__ = (
        ForeignKeyConstraint(
            ["user_id", "from_category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_budget_transfers_user_id_from_category_id_categories",
        ),
        ForeignKeyConstraint(
            ["user_id", "to_category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_budget_transfers_user_id_to_category_id_categories",
        ),
        UniqueConstraint("user_id", "idempotency_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("from_category_id <> to_category_id", name="distinct_categories"),
        CheckConstraint(f"amount <= {AMOUNT_MAX_CENTS}", name="amount_max"),
        CheckConstraint(f"length(note) <= {DESCRIPTION_MAX}", name="note_length"),
        Index(None, "from_category_id", "month"),
        Index(None, "to_category_id", "month"),
        Index(None, "user_id", "month"),
        NEVER_REUSE_IDS,
    )


class ImportProfile(Base):
    """A named set of `budget import` options (layout, rules) as a small TOML document."""

    __tablename__ = "import_profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    name_key: Mapped[str] = mapped_column(String(NAME_MAX), default=_name_key_default)
    keyed_name: Mapped[str | None] = _keyed_name()
    """As `Category.keyed_name`."""
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _created_at()

    __table_args__ = (
        UniqueConstraint("user_id", "name_key"),
        CheckConstraint("name <> ''", name="name_not_empty"),
        NEVER_REUSE_IDS,
    )

    @validates("name")
    def _set_name_key(self, _key: str, value: str) -> str:
        self.name_key, self.keyed_name = name_key(value), value
        return value


class UnitOutcome(Base):
    """What a committed unit of work returned, kept under its key for a retry to report.

    Written in the unit's own transaction (`budget_tracker.outcomes`), so it exists exactly
    when the unit's changes do: a retry after a lost COMMIT acknowledgement reads it back
    instead of running the work again. Rows are needed only for the seconds a retry can
    take, and are pruned by age.
    """

    __tablename__ = "unit_outcomes"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    result: Mapped[str] = mapped_column(Text)
    """The unit's return value as tagged JSON (`outcomes.encode`)."""
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    role_name: Mapped[str | None] = mapped_column(
        String(ROLE_NAME_MAX), server_default=FetchedValue()
    )
    """The PostgreSQL role whose unit recorded it: its default (revision 0013, not declared
    here) is `current_user`, and row-level security shows a role only its own outcomes.
    None on SQLite."""


def insert_new_only(dialect_name: str, model: type[Base], *unique: str) -> Insert:
    """`INSERT ... ON CONFLICT (unique) DO NOTHING` for `model` on PostgreSQL and SQLite.

    For rows that must exist once however many commands create them at the same time
    (the default user, its starter categories, categories an import creates): the loser
    of a race skips the row instead of failing on the unique key, then reads the winner's.
    Add `.values(...)` and `.returning(...)`: what it returns is what this statement made.
    With no `unique` columns, a conflict on any unique index skips the row.
    """
    elements = list(unique) or None
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(model).on_conflict_do_nothing(index_elements=elements)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).on_conflict_do_nothing(index_elements=elements)


class CategoryBudget(Base):
    """A change of a category's monthly budget: from `month` on (until its next standing
    change), or, with `one_month`, for that one month only (the month after returns to
    the standing budget). Before its first standing change a category has its opening
    `categories.monthly_budget`."""

    __tablename__ = "category_budgets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)  # implied by the category key below
    category_id: Mapped[int] = mapped_column(Integer)
    month: Mapped[dt.date] = mapped_column(Date)
    """First day of the (first) month it applies to."""
    amount: Mapped[Decimal] = mapped_column(Money)
    one_month: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[dt.datetime] = _created_at()

    __table_args__ = (
        ForeignKeyConstraint(
            ["user_id", "category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_category_budgets_user_id_category_id_categories",
        ),
        # Also the index of the lookup "the standing budget in force in month M":
        # (category_id, one_month = false, month <= M) ORDER BY month DESC LIMIT 1.
        UniqueConstraint("category_id", "one_month", "month"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        NEVER_REUSE_IDS,
    )


class Income(Base):
    """Money received: it does not fund budgets automatically (no zero-based rule); the
    report sets it beside what was budgeted and spent."""

    __tablename__ = "income"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    source: Mapped[str] = mapped_column(String(DESCRIPTION_MAX), server_default="")
    received_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = _created_at()
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    entered_by: Mapped[int | None] = mapped_column(Integer, server_default=FetchedValue())
    """The user who recorded it (see `Expense.entered_by`)."""

    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"amount <= {AMOUNT_MAX_CENTS}", name="amount_max"),
        CheckConstraint(f"length(source) <= {DESCRIPTION_MAX}", name="source_length"),
        # A period's income is an index-only range scan, like its spending.
        Index(None, "user_id", "received_on", "amount"),
        NEVER_REUSE_IDS,
    )


class BudgetShare(Base):
    """The owner's budget is shared with the member: the member may read it and, unless
    `read_only`, write in it. On PostgreSQL row-level security enforces this (0011)."""

    __tablename__ = "budget_shares"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    read_only: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[dt.datetime] = _created_at()

    __table_args__ = (
        UniqueConstraint("owner_id", "member_id"),
        CheckConstraint("owner_id <> member_id", name="not_self"),
        NEVER_REUSE_IDS,
    )


class CategoryRollover(Base):
    """A change of a category's rollover setting: from `month` on (until its next
    change), what is left at the end of each month is carried into the next one
    (`enabled`), or not. Before its first change a category does not roll over."""

    __tablename__ = "category_rollovers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)  # implied by the category key below
    category_id: Mapped[int] = mapped_column(Integer)
    month: Mapped[dt.date] = mapped_column(Date)
    """First day of the first month the setting applies to."""
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = _created_at()

    __table_args__ = (
        ForeignKeyConstraint(
            ["user_id", "category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_category_rollovers_user_id_category_id_categories",
        ),
        # Also the index of "the run of months rolling over that ends in month M".
        UniqueConstraint("category_id", "month"),
        NEVER_REUSE_IDS,
    )


class CategoryMonthSpent(Base):
    """What was spent in a category in a month: a sum of `expenses` kept by database
    triggers (revision 0012) in the transaction that changes an expense, so a carried
    amount reads one row per month of its run instead of every expense of those months.
    Derived data: never written by the application, not copied by backup or `db copy`
    (the restored expenses' triggers rebuild it), checked against the expenses by
    `budget verify`."""

    __tablename__ = "category_month_spent"

    category_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    """First day of the month."""
    user_id: Mapped[int] = mapped_column(Integer)
    spent: Mapped[Decimal] = mapped_column(Money)

    __table_args__ = (
        # A category is deleted only once it has no expenses: its rows are all zero then.
        ForeignKeyConstraint(
            ["user_id", "category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_category_month_spent_user_id_category_id_categories",
            ondelete="CASCADE",
        ),
    )


class ConnectedUser(FunctionElement[int]):
    """SQL: the user linked to the connected PostgreSQL role — the person running the
    command — or NULL (a role linked to no user, such as the tables' owner; SQLite, which
    knows no logins).

    `budget_entered_by()` (revision 0011: the first user linked to `current_user`) in a
    scalar subquery, so PostgreSQL evaluates it once per statement (an InitPlan), not once
    per row. Nothing to evaluate on SQLite: it compiles to NULL there.
    """

    type = Integer()
    name = "connected_user"
    inherit_cache = True


@compiles(ConnectedUser)
def _connected_user(element: ConnectedUser, compiler: Any, **kw: Any) -> str:
    return "NULL"


@compiles(ConnectedUser, "postgresql")
def _connected_user_postgresql(element: ConnectedUser, compiler: Any, **kw: Any) -> str:
    return "(SELECT budget_entered_by())"


def entering_user(user_id: Any) -> ColumnElement[int]:
    """SQL: the `entered_by` of a row the app inserts into the budget of `user_id`, in the
    INSERT itself (no statement of its own): the connected person, else `user_id`."""
    return func.coalesce(ConnectedUser(), user_id, type_=Integer)


def entered_by_person(model: Any) -> ColumnElement[int]:
    """SQL: the user who entered a row of `model` (expenses, budget_transfers, income) —
    the budget's own user when none was recorded."""
    return func.coalesce(model.entered_by, model.user_id)


TABLE_NAMES = tuple(Base.metadata.tables)
