"""Adapters of the transfer service: the outside world behind small ports."""
