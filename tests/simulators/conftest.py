"""Fixtures of the simulator tests (shared with tests/proxy and tests/endpoint/outbox through the harness)."""

from tests.simulators.harness import proxy_process, simulator, simulator_process, tls

__all__ = ["proxy_process", "simulator", "simulator_process", "tls"]
