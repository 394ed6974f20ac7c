"""The planner domain: pure types and rules, no I/O."""
