"""Entry points of the kubevirt-writer service: process start-up and HTTP routes."""
