"""Shared fixtures: real services (PostgreSQL, Redis, S3) and temporary homes."""

pytest_plugins = [
    "tests.support.services",
    "tests.support.seaweed",
    "tests.support.stores",
    "tests.support.worker",
]
