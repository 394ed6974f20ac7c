"""Entry points of the inventory service: process start-up and HTTP routes."""
