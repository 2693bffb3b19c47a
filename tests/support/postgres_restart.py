"""Restarting the local PostgreSQL cluster for reconnect tests, and never leaving it stopped."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.databases import PG_HOST, PG_PORT, admin_connection

CLUSTERS = Path("/etc/postgresql")
CLUSTER = "main"


def _pg_version() -> str | None:
    versions = sorted(p.name for p in CLUSTERS.iterdir()) if CLUSTERS.is_dir() else []
    return versions[0] if len(versions) == 1 and (CLUSTERS / versions[0] / CLUSTER).is_dir() else None


def restart_blocker() -> str | None:
    """None when this run may restart the local PostgreSQL, else a reason fit for pytest.skip."""
    if os.environ.get("CONNECTOR_TEST_NO_RESTART"):
        return "CONNECTOR_TEST_NO_RESTART is set"
    if PG_HOST not in ("127.0.0.1", "localhost"):
        return f"PostgreSQL on {PG_HOST} is not a local cluster"
    if shutil.which("pg_ctlcluster") is None:
        return "pg_ctlcluster is not installed (not a Debian/Ubuntu PostgreSQL)"
    if _pg_version() is None:
        return f"expected exactly one cluster {CLUSTERS}/<version>/{CLUSTER}"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        return "restarting PostgreSQL needs root or the postgres user (no sudo here)"
    return None


def _ctl(action: str) -> subprocess.CompletedProcess[str]:
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", str(_pg_version()), CLUSTER, action]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _accepting() -> bool:
    try:
        admin_connection("postgresql").close()
        return True
    except Exception:  # noqa: BLE001 - down or still starting
        return False


def wait_accepting(timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _accepting():
            return True
        time.sleep(0.1)
    return False


def restart_postgresql() -> None:
    """``pg_ctlcluster ... restart`` (fast shutdown: every session is cut), then wait until it accepts.

    :raise RuntimeError: when the restart failed; the cluster is started again in any case.
    """
    try:
        done = _ctl("restart")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctlcluster restart failed: {done.stderr.strip()[:500]}")
    finally:
        if _ctl("status").returncode != 0:  # 3: not running; never leave the server stopped
            _ctl("start")
        if not wait_accepting():
            raise RuntimeError(f"PostgreSQL on {PG_HOST}:{PG_PORT} does not accept connections")
