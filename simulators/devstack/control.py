"""How ``connector stack status|stop|restart|start`` reach a running stack: a PID file and a control socket.

Both live in the stack's data directory (0700, so only its owner can reach them):

- ``stack.pid`` holds the supervisor's pid and an exclusive ``flock`` for as long as the supervisor lives.
  The kernel drops the lock when the process dies, however it dies, so a left-over file never blocks the
  next start and "is a stack running here?" is answered by trying the lock, not by trusting a pid.
- ``stack.sock`` is a Unix socket taking one JSON request per connection and sending one JSON answer.
  Requests are queued for the supervisor's main loop, which starts and stops children itself (a child's
  parent-death signal is tied to the thread that forked it, so no other thread ever does).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_MESSAGE = 64 * 1024


class ControlError(Exception):
    """No stack answers from that data directory, or it refused the request."""


def pid_path(root: Path) -> Path:
    return root / "stack.pid"


def socket_path(root: Path) -> Path:
    return root / "stack.sock"


class PidLock:
    """The supervisor's claim on a data directory: ``stack.pid`` locked and holding our pid."""

    def __init__(self, root: Path) -> None:
        self.path = pid_path(root)
        self._fd: int | None = None

    def acquire(self) -> None:
        """:raise ControlError: another supervisor holds this data directory (its pid in the message)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise ControlError(f"a stack is already running from {self.path.parent} (pid {other})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


def running_pid(root: Path) -> int | None:
    """The pid of the supervisor that holds ``root``, or None when no stack runs from there."""
    try:
        fd = os.open(pid_path(root), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else -1
        return None  # nobody holds it: a file left by a supervisor that was killed
    finally:
        os.close(fd)


@dataclass
class Request:
    """One control request, answered by the supervisor's main loop."""

    op: str
    args: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict[str, Any] = field(default_factory=dict)

    def reply(self, ok: bool, message: str = "", **extra: Any) -> None:
        self.answer = {"ok": ok, "message": message, **extra}
        self.done.set()


class ControlServer:
    """Accepts requests on ``stack.sock`` in a thread of its own; ``requests`` feeds the main loop."""

    def __init__(self, root: Path, answer_timeout: float = 120.0) -> None:
        self.path = socket_path(root)
        self.requests: queue.Queue[Request] = queue.Queue()
        self.answer_timeout = answer_timeout
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a supervisor that was killed (we hold the PID lock)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        _bind(sock, self.path)
        os.chmod(self.path, 0o600)
        sock.listen(8)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="stack-control", daemon=True)
        self._thread.start()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        # Requests still queued get an answer instead of a hang.
        while True:
            try:
                self.requests.get_nowait().reply(False, "the stack is stopping")
            except queue.Empty:
                break

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                message = json.loads(_read_line(conn))
                request = Request(str(message["op"]), dict(message.get("args") or {}))
            except (OSError, ValueError, KeyError, TypeError):
                return
            self.requests.put(request)
            if not request.done.wait(self.answer_timeout):
                request.reply(False, "the stack did not answer in time")
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(request.answer).encode("utf-8") + b"\n")


def send(root: Path, op: str, timeout: float = 120.0, **args: Any) -> dict[str, Any]:
    """One request to the stack running from ``root``. :raise ControlError: none runs there."""
    path = socket_path(root)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            _connect(sock, path)
            sock.sendall(json.dumps({"op": op, "args": args}).encode("utf-8") + b"\n")
            line = _read_line(sock)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(f"no stack is running from {root}") from None
        except OSError as e:
            raise ControlError(f"the stack at {root} did not answer: {e}") from None
    if not line:
        raise ControlError(f"the stack at {root} closed the connection without an answer")
    answer: dict[str, Any] = json.loads(line)
    return answer


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < MAX_MESSAGE:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


# A Unix socket path has room for about 107 bytes. A deep data directory is reached through the
# process's own descriptor of it (/proc/self/fd/N), which is short whatever the directory's path.
_SUN_PATH_MAX = 100


def _bind(sock: socket.socket, path: Path) -> None:
    _via_short_path(sock.bind, path)


def _connect(sock: socket.socket, path: Path) -> None:
    _via_short_path(sock.connect, path)


def _via_short_path(call: Any, path: Path) -> None:
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        call(str(path))
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        call(f"/proc/self/fd/{fd}/{path.name}")
    finally:
        os.close(fd)
