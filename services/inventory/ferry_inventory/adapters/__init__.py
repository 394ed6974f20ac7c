"""Adapters of the inventory service: the outside world behind small ports."""
