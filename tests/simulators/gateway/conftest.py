"""Gateway simulator fixtures: a key ring on disk and the fake CyberApp serving on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulators.keyring import KeyRing
from tests.simulators.gateway.fake_cyberapp import FakeCyberApp, serving


@dataclass
class Served:
    app: FakeCyberApp
    url: str
    keys_dir: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    ring = KeyRing.open(tmp_path / "keys")
    app = FakeCyberApp(ring)
    with serving(app) as url:
        yield Served(app, url, tmp_path / "keys")
