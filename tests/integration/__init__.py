"""Ferry's test suite."""
