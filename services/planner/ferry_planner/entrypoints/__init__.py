"""Entry points of the planner service: process start-up and HTTP routes."""
