"""Planner service: providers, maps, plans and migrations, and the per-VM migration state machine."""
