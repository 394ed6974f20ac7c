"""OpenTelemetry set-up and W3C trace-context propagation through message headers.

Spans follow the messaging conventions: a PRODUCER span ``<subject> publish`` around
each publish and a CONSUMER span ``<subject> process`` around each handler, the
latter a child of the context carried in the message's ``traceparent`` header.
"""

import os

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

TRACER_NAME = "ferry"


def configure_tracing(service_name: str, *, extra_processors: tuple[SpanProcessor, ...] = ()) -> TracerProvider:
    """Install a tracer provider for this process.

    Spans are exported over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the
    traces-specific variable) is set; otherwise they are only used for log
    correlation and propagation.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return provider


def tracer() -> trace.Tracer:
    """Ferry's tracer (from whichever provider is installed)."""
    return trace.get_tracer(TRACER_NAME)


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add the current trace context (``traceparent``/``tracestate``) to ``headers``."""
    propagate.inject(headers)
    return headers


def extract_context(headers: dict[str, str] | None) -> Context:
    """The trace context carried by a message's headers (empty when absent)."""
    return propagate.extract(headers or {})


def current_trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the active span as hex, or None outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
