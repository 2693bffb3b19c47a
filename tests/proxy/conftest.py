"""Fixtures of the outbound tests: the simulator and forward-proxy processes, TLS material."""

from tests.support.simulator_processes import proxy_process, simulator, simulator_process, tls

__all__ = ["proxy_process", "simulator", "simulator_process", "tls"]
