"""What the processes tell an operator: the log lines (format, escaping, rejection sampling: logsetup.py) and
the Prometheus metrics (metrics.py)."""
