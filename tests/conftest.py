"""Test-suite wiring: the real-peer fixtures and the in-memory span exporter."""

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ferry_shared.tracing import configure_tracing

pytest_plugins = ["ferry_testpeers.plugin"]

_EXPORTER = InMemorySpanExporter()
configure_tracing("ferry-tests", extra_processors=(SimpleSpanProcessor(_EXPORTER),))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans finished in this process during the test."""
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()
