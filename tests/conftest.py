"""Root conftest: kept minimal. Real-server fixtures live in tests/support/fixtures.py."""

pytest_plugins = ["tests.support.fixtures"]
