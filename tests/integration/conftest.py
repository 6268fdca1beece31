"""Fixtures shared by the integration tests."""

from hostile_server import hostile_server  # noqa: F401  (a fixture: tests ask for it by name)
