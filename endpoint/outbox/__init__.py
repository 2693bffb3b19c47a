"""The outbox: validated alerts and workloads are committed first, then a worker delivers them."""
