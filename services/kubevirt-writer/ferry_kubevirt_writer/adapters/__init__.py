"""Adapters of the kubevirt-writer service: the outside world behind small ports."""
