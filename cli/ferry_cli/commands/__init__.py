"""One module per ``ferry`` sub-command."""
