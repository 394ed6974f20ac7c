"""One trace per migrated VM, across all four services.

When a VM gets its slot, a root span ``migrate <vm>`` starts a trace of its own (linked
to whatever caused the start: the API request, or the event that freed the slot). Its
``traceparent`` is stored with the VM, and every command the planner sends for that VM
is published inside a span of that trace; the other services' consumer spans and the
events they answer with carry it on, so the VM's whole pipeline is one trace.
"""

import contextlib
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link

from ferry_planner.domain.migrations import VmMigration
from ferry_shared.subjects import TRACEPARENT_HEADER
from ferry_shared.tracing import extract_context, inject_headers, tracer


def new_vm_trace(migration: str, vm: VmMigration) -> str:
    """Start the VM's trace; returns its ``traceparent``."""
    cause = trace.get_current_span().get_span_context()
    links = [Link(cause)] if cause.is_valid else []
    with tracer().start_as_current_span(
        f"migrate {vm.vm_name}",
        context=Context(),  # a new trace, not a child of the request or event at hand
        links=links,
        attributes={"ferry.migration": migration, "ferry.vm.id": vm.vm_id, "ferry.vm.name": vm.vm_name},
    ):
        return inject_headers({}).get(TRACEPARENT_HEADER, "")


@contextlib.contextmanager
def within_vm_trace(migration: str, vm: VmMigration) -> Iterator[None]:
    """Run the block (the publishes of one step) in a span of the VM's trace."""
    if not vm.trace_parent:
        yield
        return
    with tracer().start_as_current_span(
        f"{vm.phase.value} {vm.vm_name}",
        context=extract_context({TRACEPARENT_HEADER: vm.trace_parent}),
        attributes={"ferry.migration": migration, "ferry.vm.id": vm.vm_id, "ferry.vm.phase": vm.phase.value},
    ):
        yield
