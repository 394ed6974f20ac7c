"""The transfer domain: pure types and rules, no I/O."""
