"""Use cases of the kubevirt-writer service: one handler per command, and the handler table."""

from ferry_shared.bus.consumer import HandlerTable

HANDLERS: HandlerTable = {}
"""Command type → handler. Empty until the service's first command lands."""
