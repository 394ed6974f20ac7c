"""The inventory domain: pure types and rules, no I/O."""
