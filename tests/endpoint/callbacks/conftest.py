"""Fixtures for the callback tests: the tenant tree, a real database runner and a dispatcher."""

from __future__ import annotations

from collections.abc import Iterator

import peewee as pw
import pytest

from endpoint.callbacks.dispatch import CallbackDispatcher
from endpoint.work.executors import DatabaseRunner
from models import Organization
from tests.support.builders import create_org
from tests.support.callback_builders import RecordingHasher, World, build_world


@pytest.fixture
def world(database: pw.Database) -> World:
    return build_world()


@pytest.fixture
def runner(database: pw.Database) -> Iterator[DatabaseRunner]:
    db_runner = DatabaseRunner(threads=2)
    try:
        yield db_runner
    finally:
        db_runner.shutdown()


@pytest.fixture
def hasher() -> RecordingHasher:
    return RecordingHasher()


@pytest.fixture
def dispatcher(runner: DatabaseRunner, hasher: RecordingHasher) -> CallbackDispatcher:
    return CallbackDispatcher("vendor.app", runner, hasher)


@pytest.fixture
def parent(database: pw.Database) -> Organization:
    """callbacks.mirrored_partners_parent: the vendor partner organization mirrored partners go under."""
    return create_org("Mirrored partners")


@pytest.fixture
def mirroring(runner: DatabaseRunner, hasher: RecordingHasher, parent: Organization) -> CallbackDispatcher:
    """A dispatcher with mirroring switched on."""
    return CallbackDispatcher("vendor.app", runner, hasher, parent.id)
