"""Several serving processes on one already-bound port: fork, forward stop signals, restart crashes.

tornado.process.fork_processes would do the forking, but its parent ignores SIGTERM handling: a parent
stopped on its own (``kill <pid>``) leaves its children serving as orphans. Here the parent forwards
SIGTERM/SIGINT to every child (each drains its in-flight requests), restarts a child that crashes (non-zero
exit or signal) while the service runs, with a delay so a crash loop cannot spin, and returns when all
have exited.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import traceback
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0


def run_workers(
    count: int, child: Callable[[int], int], *, on_exit: Callable[[int], None] | None = None
) -> int:
    """Fork ``count`` children running ``child(index)``; returns 0 once a stop request let them all exit.

    ``on_exit(pid)`` runs in the parent for every child that ended (before a crashed one is restarted).

    Call it after binding the sockets and before creating any thread or event loop (fork safety).
    """
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            code = 1
            try:
                code = child(index)
            except BaseException:  # the child must never return into the parent's code
                traceback.print_exc()
            finally:
                os._exit(code)
        children[pid] = index
        log.info("worker %d started (pid %d)", index, pid)

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index in range(count):
            spawn(index)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index = children.pop(pid, None)
            if index is None:
                continue
            if on_exit is not None:
                on_exit(pid)
            code = os.waitstatus_to_exitcode(status)
            if stopping or code == 0:  # asked to stop, or finished of its own accord: not a crash
                log.info("worker %d (pid %d) exited with %d", index, pid, code)
                continue
            log.error("worker %d (pid %d) exited with %d; restarting it", index, pid, code)
            time.sleep(RESTART_DELAY)
            if not stopping:
                spawn(index)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
