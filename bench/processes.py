"""Process helpers for benchmarks: free ports, readiness, and peak RSS over a whole process tree."""

from __future__ import annotations

import socket
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc): with --workers the parent only supervises."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except (FileNotFoundError, ProcessLookupError):
                children = []  # the thread or process ended while walking
            queue.extend(int(child) for child in children)
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def peak_rss_mb(pid: int) -> float:
    """Sum of the peak resident set (VmHWM) of every process in the tree."""
    return sum(_status_kb(p, "VmHWM") for p in process_tree(pid)) / 1024


def reset_peak_rss(pid: int) -> None:
    """Start a new VmHWM window for the whole tree (Linux: writing 5 to clear_refs)."""
    for p in process_tree(pid):
        try:
            Path(f"/proc/{p}/clear_refs").write_text("5")
        except (FileNotFoundError, PermissionError):
            pass
