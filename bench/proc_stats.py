"""Server cost from /proc for a whole process tree: CPU time (user/system) and context switches, as deltas."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.processes import process_tree

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class TreeSample:
    """Cumulative counters: CPU ticks per process (all threads, ended ones too) and switches per task."""

    utime: dict[int, int]  # pid -> clock ticks in user mode
    stime: dict[int, int]  # pid -> clock ticks in kernel mode
    voluntary: dict[tuple[int, int], int]  # (pid, tid) -> voluntary_ctxt_switches
    involuntary: dict[tuple[int, int], int]  # (pid, tid) -> nonvoluntary_ctxt_switches


@dataclass(frozen=True)
class Usage:
    """What the tree spent between two samples."""

    user_s: float
    system_s: float
    voluntary: int
    involuntary: int

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.system_s

    def per_request(self, requests: int) -> tuple[float, float, float, float]:
        """(user ms, system ms, total ms, voluntary switches) per request."""
        n = max(requests, 1)
        return 1000 * self.user_s / n, 1000 * self.system_s / n, 1000 * self.cpu_s / n, self.voluntary / n


def _cpu_ticks(pid: int) -> tuple[int, int] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return int(fields[11]), int(fields[12])  # stat fields 14 (utime) and 15 (stime)


def _switches(pid: int) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    """Per thread: /proc/<pid>/status only counts the main thread, so read every task's status."""
    voluntary: dict[tuple[int, int], int] = {}
    involuntary: dict[tuple[int, int], int] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            lines = (task / "status").read_text().splitlines()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended between listing and reading
        for line in lines:
            if line.startswith("voluntary_ctxt_switches:"):
                voluntary[(pid, int(task.name))] = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                involuntary[(pid, int(task.name))] = int(line.split()[1])
    return voluntary, involuntary


def sample(pid: int) -> TreeSample:
    utime: dict[int, int] = {}
    stime: dict[int, int] = {}
    voluntary: dict[tuple[int, int], int] = {}
    involuntary: dict[tuple[int, int], int] = {}
    for p in process_tree(pid):
        ticks = _cpu_ticks(p)
        if ticks is None:
            continue
        utime[p], stime[p] = ticks
        vol, invol = _switches(p)
        voluntary.update(vol)
        involuntary.update(invol)
    return TreeSample(utime, stime, voluntary, involuntary)


def usage(before: TreeSample, after: TreeSample) -> Usage:
    """Deltas over processes/threads alive at ``after`` (a thread that ended in between is not counted)."""

    def delta(b: dict, a: dict) -> int:  # type: ignore[type-arg]
        return sum(max(0, value - b.get(key, 0)) for key, value in a.items())

    return Usage(
        delta(before.utime, after.utime) / _TICK,
        delta(before.stime, after.stime) / _TICK,
        delta(before.voluntary, after.voluntary),
        delta(before.involuntary, after.involuntary),
    )


def current_rss_mb(pid: int) -> float:
    """Sum of the resident set (VmRSS) of every process in the tree, now."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1024


def machine_ticks() -> tuple[int, int]:
    """(all CPU ticks, idle + iowait ticks) of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]


def idle_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time (every core) that nothing used between two samples."""
    total = after[0] - before[0]
    return 100.0 * (after[1] - before[1]) / total if total > 0 else 0.0
