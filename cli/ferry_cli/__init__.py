"""The ``ferry`` command-line client, and the launcher of a local Ferry stack."""
