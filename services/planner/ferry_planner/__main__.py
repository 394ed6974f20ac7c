"""Allows ``python -m ferry_planner``."""

from ferry_planner.entrypoints.main import main

main()
