"""Stand-ins for remote systems (Acronis API, forward proxy) for tests, the benchmark and the local stack
(devstack/, the one part that may use endpoint/)."""
