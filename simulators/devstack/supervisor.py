"""Child processes of the local stack: start in order, wait until ready, stop all on exit (no orphans).

Three ways a child could outlive the stack, and what closes each:

- the supervisor stops normally (Ctrl-C, SIGTERM, SIGHUP when the terminal goes away): ``stop_all``
  signals every child's whole process group;
- the supervisor dies without cleaning up (SIGKILL, a crash): every child asked the kernel to be sent
  SIGTERM when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``, set between fork and exec);
- a grandchild ignores SIGTERM: the final sweep of ``stop``/``stop_all`` SIGKILLs the group.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class StackError(Exception):
    """A stack component could not start (port taken, crashed, never became ready)."""


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now.

    The probe sets SO_REUSEADDR like the servers themselves (Tornado, mitmproxy, http.server): a
    connection of the previous run still in TIME_WAIT does not keep them from listening, so it must not
    make the port look taken either. A socket that listens there still does.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free_ports(ports: Mapping[str, tuple[str, int]]) -> None:
    """:raise StackError: naming every component whose port is taken."""
    taken = [
        f"{name} ({host}:{port})" for name, (host, port) in ports.items() if not port_is_free(host, port)
    ]
    if taken:
        raise StackError(f"port already in use: {', '.join(taken)}; choose others (see --help)")


_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None
if os.uname().sysname == "Linux":  # loaded once, before any fork: the child only calls into it
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _die_with(parent: int) -> None:
    """Runs in the child between fork and exec: SIGTERM when the supervisor dies, however it dies.

    The kernel sends the signal when the *thread* that forked the child ends, so children are only ever
    started from the supervisor's long-lived thread (the stack's main loop).
    """
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"exited with status {process.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.3):
                return
        except OSError:
            time.sleep(0.05)
    raise StackError(f"not listening on {host}:{port} after {timeout:.0f}s")


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    reported: bool = False  # its exit was already reported (a dead child stays listed until restarted)


@dataclass
class Supervisor:
    """Owns every child; each runs in its own session so one signal from us stops its whole tree."""

    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready_port: tuple[str, int] | None = None,
        timeout: float = 30.0,
    ) -> Child:
        """Start ``argv`` with output to ``<log_dir>/<name>.log``; wait for ``ready_port`` if given.

        :raise StackError: it exits early or never listens (its log file is named in the message).
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as out:
            process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=functools.partial(_die_with, os.getpid()),
            )
        child = Child(name, process, log_path)
        self.children.append(child)
        if ready_port is not None:
            try:
                wait_for_port(*ready_port, process, timeout)
            except StackError as e:
                raise StackError(f"{name}: {e} (log: {log_path})") from e
        log.info("%s started (pid %d)", name, process.pid)
        return child

    def stop(self, name: str, timeout: float = 10.0) -> None:
        """Stop one child (its whole process group) and forget it; unknown names are ignored."""
        for child in [c for c in self.children if c.name == name]:
            _signal_group(child.process, signal.SIGTERM)
            try:
                child.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
            _signal_group(child.process, signal.SIGKILL, leader_may_be_gone=True)
            child.process.wait(5)
            self.children.remove(child)

    def first_exited(self) -> Child | None:
        return next((child for child in self.children if child.process.poll() is not None), None)

    def newly_exited(self) -> list[Child]:
        """Children that exited since the last call (each is returned once; it stays listed as dead)."""
        exited = [c for c in self.children if not c.reported and c.process.poll() is not None]
        for child in exited:
            child.reported = True
        return exited

    def get(self, name: str) -> Child | None:
        return next((child for child in self.children if child.name == name), None)

    def stop_all(self, timeout: float = 10.0) -> None:
        """SIGTERM every child's process group (reverse start order), wait, then SIGKILL what is left.

        The final sweep hits the whole group even when its leader already exited: a grandchild that
        ignores SIGTERM would otherwise outlive the stack.
        """
        for child in reversed(self.children):
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
        for child in reversed(self.children):
            _signal_group(child.process, signal.SIGKILL, leader_may_be_gone=True)
            child.process.wait(5)
        self.children.clear()


def _signal_group(
    process: subprocess.Popen[bytes], sig: signal.Signals, leader_may_be_gone: bool = False
) -> None:
    if process.poll() is not None and not leader_may_be_gone:
        return
    try:
        os.killpg(process.pid, sig)  # the group id is the leader's pid (start_new_session=True)
    except (ProcessLookupError, PermissionError):
        pass
