"""Allows ``python -m ferry_transfer``."""

from ferry_transfer.entrypoints.main import main

main()
