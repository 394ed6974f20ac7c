"""Allows ``python -m ferry_inventory``."""

from ferry_inventory.entrypoints.main import main

main()
