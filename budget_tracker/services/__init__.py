"""Business rules. Every function takes a `Session` (keyword-only arguments), flushes but
never commits, never prints, and raises `budget_tracker.errors` exceptions on refusal."""
