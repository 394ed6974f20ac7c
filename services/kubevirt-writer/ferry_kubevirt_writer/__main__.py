"""Allows ``python -m ferry_kubevirt_writer``."""

from ferry_kubevirt_writer.entrypoints.main import main

main()
