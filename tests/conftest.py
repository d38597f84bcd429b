"""Shared test configuration: tier markers follow the folder a test lives in."""

from pathlib import Path

import pytest

_TIERS = ("unit", "integration", "e2e", "compose")


def pytest_collection_modifyitems(config, items):
    """Mark each test with its tier (unit, integration, e2e, compose) from its folder."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return Path(__file__).resolve().parents[1]
