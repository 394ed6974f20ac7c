"""Inventory service: connects to providers and keeps their inventory live in JetStream KV."""
