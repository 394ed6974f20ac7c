"""Following a migration live: the planner's change stream, the migration's state, and
the two ways to show it (progress bars for people, JSON lines for scripts)."""
