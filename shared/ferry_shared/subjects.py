"""Every NATS name Ferry uses: streams, subjects, durable consumers, KV buckets, headers.

Services and tests refer to these constants; no subject string is written inline.
"""

from typing import Final

# Streams. Commands go to a work queue (each message is handled by exactly one
# consumer); events go to a limits stream anyone may read and replay.
COMMANDS_STREAM: Final = "FERRY_COMMANDS"
EVENTS_STREAM: Final = "FERRY_EVENTS"
COMMANDS_PREFIX: Final = "ferry.cmd"
EVENTS_PREFIX: Final = "ferry.evt"
ALL_COMMANDS: Final = f"{COMMANDS_PREFIX}.>"
ALL_EVENTS: Final = f"{EVENTS_PREFIX}.>"

# Services: each owns the commands under its own prefix and one durable consumer.
INVENTORY: Final = "inventory"
PLANNER: Final = "planner"
TRANSFER: Final = "transfer"
KUBEVIRT_WRITER: Final = "kubevirt-writer"
SERVICES: Final = (INVENTORY, PLANNER, TRANSFER, KUBEVIRT_WRITER)


def command_subject(service: str, name: str) -> str:
    """Subject of one command kind handled by ``service``."""
    return f"{COMMANDS_PREFIX}.{service}.{name}"


def commands_of(service: str) -> str:
    """Filter subject matching every command handled by ``service``."""
    return f"{COMMANDS_PREFIX}.{service}.>"


def event_subject(service: str, name: str) -> str:
    """Subject of one event kind produced by ``service``."""
    return f"{EVENTS_PREFIX}.{service}.{name}"


def durable_name(service: str) -> str:
    """Durable consumer name through which ``service`` pulls its commands."""
    return f"{service}-commands"


def events_durable_name(service: str) -> str:
    """Durable consumer name through which ``service`` reads the events it reacts to."""
    return f"{service}-events"


# Core-NATS request/reply (no stream: an answer is for the asker only, and only now).
RPC_PREFIX: Final = "ferry.rpc"


def rpc_subject(service: str, name: str) -> str:
    """Subject of one request kind answered by ``service``."""
    return f"{RPC_PREFIX}.{service}.{name}"


SOURCE_SESSION_RPC: Final = rpc_subject(INVENTORY, "source_session")
"""The transfer asks the inventory for a one-time vSphere clone ticket (see ``ferry_shared.source_sessions``)."""
SOURCE_SESSION_QUEUE: Final = "inventory-source-session"
"""Queue group of the inventory replicas answering :data:`SOURCE_SESSION_RPC` (one answers each request)."""

BUS: Final = "bus"
MESSAGE_FAILED: Final = event_subject(BUS, "message_failed")

# JetStream key-value buckets (state lives here, each owned by one service).
INVENTORY_BUCKET: Final = "ferry_inventory"
PLANNER_BUCKET: Final = "ferry_planner"
TRANSFER_CHECKPOINTS_BUCKET: Final = "ferry_transfer_checkpoints"
CREDENTIALS_BUCKET: Final = "ferry_credentials"

# Message headers.
MSG_ID_HEADER: Final = "Nats-Msg-Id"
MESSAGE_TYPE_HEADER: Final = "Ferry-Message-Type"
TRACEPARENT_HEADER: Final = "traceparent"
TRACESTATE_HEADER: Final = "tracestate"
