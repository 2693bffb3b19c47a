"""Fixtures shared by the APS tests."""

from __future__ import annotations

import peewee as pw
import pytest

from tests.support.aps_builders import Bound, bound_instance


@pytest.fixture
def bound(database: pw.Database) -> Bound:
    """A bound application instance (consumer, APS instance row) in the test database."""
    return bound_instance()
