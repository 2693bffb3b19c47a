"""Fixtures of the simulator tests (shared with tests/proxy and tests/endpoint/outbox through
tests/support/simulator_processes.py)."""

from tests.support.simulator_processes import proxy_process, simulator, simulator_process, tls

__all__ = ["proxy_process", "simulator", "simulator_process", "tls"]
