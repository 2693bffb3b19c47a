"""The running stack's main loop: stops on a signal, answers ``connector stack`` control requests, reports
children that die and prints the live view."""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING

from simulators.devstack.components import OUTBOUND
from simulators.devstack.control import ControlServer, Request
from simulators.devstack.layout import REPO, StackOptions, shown
from simulators.devstack.liveview import LiveView
from simulators.devstack.supervisor import StackError

if TYPE_CHECKING:
    from simulators.devstack.stack import LocalStack


class Loop:
    """The supervisor's main loop: stop on a signal, answer control requests, report children that die
    (the others keep running), print the live view."""

    def __init__(self, stack: LocalStack, control: ControlServer, view: LiveView, stop: threading.Event):
        self.stack, self.control, self.view, self.stop = stack, control, view, stop

    def run(self) -> int:
        while not self.stop.is_set():
            self.view.poll()
            for child in self.stack.supervisor.newly_exited():
                self.view.event(
                    f"{child.name} exited (status {child.process.returncode}); the rest keeps running. "
                    f"Restart it: connector stack restart {child.name}{self._data_dir()} "
                    f"(log: {shown(child.log_path)})",
                    bad=True,
                )
            try:
                request = self.control.requests.get(timeout=0.25)
            except queue.Empty:
                continue
            self.handle(request)
        self.view.event("stopping...")
        return 0  # run_stack's finally clause stops the children

    def _data_dir(self) -> str:
        root = self.stack.files.root
        return "" if root == REPO / StackOptions().data_dir else f" --data-dir {shown(root)}"

    def handle(self, request: Request) -> None:
        stack, name = self.stack, request.args.get("component")
        try:
            if request.op == "status":
                request.reply(True, components=stack.status(), faults=list(stack.faults))
            elif request.op == "stop" and not name:
                request.reply(True, "stopping the stack")
                self.view.event("stop requested (connector stack stop)")
                self.stop.set()
            elif request.op == "stop":
                stack.stop(str(name))
                self.view.event(
                    f"{name} stopped (connector stack stop); start it: connector stack restart {name}"
                )
                request.reply(True, f"{name} stopped")
            elif request.op in ("restart", "start"):
                faults = request.args.get("faults")
                stack.restart(str(name), tuple(faults) if faults is not None else None)
                drills = (
                    f" with fault drills: {'; '.join(stack.faults) or 'none'}" if name == OUTBOUND else ""
                )
                self.view.event(f"{name} restarted{drills}")
                request.reply(True, f"{name} restarted{drills}")
            else:
                request.reply(False, f"unknown request {request.op!r}")
        except StackError as e:
            self.view.event(f"{request.op} {name}: {e}", bad=True)
            request.reply(False, str(e))
