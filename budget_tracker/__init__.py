"""Budget Tracker: personal spending against monthly category budgets."""

__version__ = "0.1.0"
