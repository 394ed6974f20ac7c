"""Entry points of the transfer service: process start-up and HTTP routes."""
