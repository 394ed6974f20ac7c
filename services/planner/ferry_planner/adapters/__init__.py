"""Adapters of the planner service: the outside world behind small ports."""
