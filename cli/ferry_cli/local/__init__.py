"""Starting Ferry and its peers as local processes (for ``ferry demo`` and the tests)."""
