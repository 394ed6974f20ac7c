"""JetStream helpers: connection, topology, publishing and durable consumers."""
