"""Every benchmark script still imports: they run outside CI, so a rename elsewhere would break them silently
(bench/outbox_bench.py once asked for a normaliser that had moved)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "__init__"))
def test_the_script_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")
