"""The kubevirt-writer domain: pure types and rules, no I/O."""
