"""Real nginx and squid for tests/deploy: configs rendered from deploy/, run in the foreground on free ports.

The deploy files are used as they stand; only deployment-specific values (ports, paths, certificates) are
substituted, and every substitution must find its text, so a change to deploy/ that the test no longer
covers fails loudly instead of testing something else. Both daemons drop root to an unprivileged user
(nginx workers to nobody, squid to proxy), so when the tests run as root each gets a directory it owns.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from simulators.devstack.supervisor import Supervisor

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx" / "connector.conf"
SQUID_CONF = REPO / "deploy" / "squid" / "squid.conf"
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")
NCSA_AUTH = Path("/usr/lib/squid/basic_ncsa_auth")
PROXY_USER = "svc-connector"
# Names the proxies must let through; squid resolves them from a hosts file (no DNS is asked).
ACRONIS_HOST = "eu8-cloud.acronis.com"
CONTROLLER_HOST = "controller.example.net"


def find_binary(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


def missing_tools() -> str | None:
    """Why the deploy tests cannot run here, or None."""
    wanted = {
        "nginx": find_binary("nginx"),
        "squid": find_binary("squid"),
        "basic_ncsa_auth": str(NCSA_AUTH) if NCSA_AUTH.exists() else None,
        "openssl": find_binary("openssl"),
    }
    missing = [name for name, path in wanted.items() if path is None]
    if not missing:
        return None
    return f"{', '.join(missing)} not installed (Debian: nginx-light squid openssl; scripts/setup as root)"


def render(template: str, replacements: Mapping[str, str]) -> str:
    """``template`` with each key replaced. :raise AssertionError: a key no longer occurs in it."""
    for old, new in replacements.items():
        assert old in template, f"deploy config no longer contains {old!r}: update tests/deploy/proxies.py"
        template = template.replace(old, new)
    return template


def owned_dir(path: Path, user: str, group: str | None = None) -> Path:
    """``path`` created for a daemon that drops root to ``user`` (plain mkdir when not root)."""
    path.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(path, user, group or grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name)
    return path


def nginx_conf(directory: Path, *, listen: int, upstream: int, cert: str, key: str, uri_part: bool) -> Path:
    """deploy/nginx/connector.conf inside a stand-in for Debian's nginx.conf; returns the main file.

    ``uri_part`` renders the classic mistake (``proxy_pass http://upstream/;``) as a negative control.
    """
    site = render(
        NGINX_CONF.read_text(encoding="utf-8"),
        {
            "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream};",
            "listen 443 ssl default_server;": f"listen 127.0.0.1:{listen} ssl default_server;",
            "/etc/connector/tls/fullchain.pem": cert,
            "/etc/connector/tls/privkey.pem": key,
            "/var/log/nginx/": f"{directory}/",
        },
    )
    if uri_part:
        site = render(
            site, {"proxy_pass http://connector_endpoint;": "proxy_pass http://connector_endpoint/;"}
        )
    (directory / "connector.conf").write_text(site, encoding="utf-8")
    nobody = pwd.getpwnam("nobody")
    user = f"user nobody {grp.getgrgid(nobody.pw_gid).gr_name};" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {directory}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = directory / "nginx.conf"
    lines = [
        user,
        "worker_processes 1;",
        f"pid {directory}/nginx.pid;",
        f"error_log {directory}/error.log info;",
        "events { worker_connections 256; }",
        f"http {{\n{temp}\n    include {directory}/connector.conf;\n}}",
    ]
    main.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return main


def start_nginx(
    supervisor: Supervisor,
    name: str,
    base: Path,
    *,
    upstream: int,
    cert: str,
    key: str,
    uri_part: bool = False,
) -> int:
    """A foreground nginx (master + one worker) on a free loopback port; returns the port."""
    directory = owned_dir(base / name, "nobody")
    port = free_port()
    main = nginx_conf(directory, listen=port, upstream=upstream, cert=cert, key=key, uri_part=uri_part)
    binary = find_binary("nginx") or "nginx"
    check = subprocess.run(
        [binary, "-t", "-p", str(directory), "-c", str(main), "-e", str(directory / "error.log")],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert check.returncode == 0, f"nginx -t failed:\n{check.stderr}"
    argv = [binary, "-p", str(directory), "-c", str(main), "-e", str(directory / "error.log")]
    supervisor.start(name, [*argv, "-g", "daemon off;"], ready_port=("127.0.0.1", port), timeout=15)
    return port


def squid_conf(directory: Path, *, port: int, acronis_port: int, controller_port: int) -> Path:
    text = render(
        SQUID_CONF.read_text(encoding="utf-8"),
        {
            "http_port 127.0.0.1:3128": f"http_port 127.0.0.1:{port}",
            "/etc/squid/connector.passwd": f"{directory}/passwd",
            "/var/log/squid/": f"{directory}/",
            "/run/squid.pid": f"{directory}/squid.pid",
            "coredump_dir /var/spool/squid": f"coredump_dir {directory}",
            # The simulators listen on free ports instead of 443 / 6308.
            "acl acronis_dc_port port 443": f"acl acronis_dc_port port {acronis_port}",
            "acl aps_controller_port port 6308": f"acl aps_controller_port port {controller_port}",
            "shutdown_lifetime 5 seconds": "shutdown_lifetime 1 seconds",
        },
    )
    # Hermetic name resolution: the allowlisted names come from this hosts file, and the only DNS
    # server squid may ask is on loopback (nothing listens there, so any other name fails at once).
    (directory / "hosts").write_text(f"127.0.0.1 {ACRONIS_HOST} {CONTROLLER_HOST}\n", encoding="utf-8")
    text += f"\n# tests/deploy\nhosts_file {directory}/hosts\ndns_nameservers 127.0.0.1\n"
    conf = directory / "squid.conf"
    conf.write_text(text, encoding="utf-8")
    return conf


def write_password_file(path: Path, user: str, password: str) -> None:
    """htpasswd-style ``user:$6$...`` (SHA-512 crypt), the password passed on stdin, never in argv."""
    result = subprocess.run(
        [find_binary("openssl") or "openssl", "passwd", "-6", "-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    path.write_text(f"{user}:{result.stdout.strip()}\n", encoding="utf-8")
    path.chmod(0o640)
    if os.geteuid() == 0:
        shutil.chown(path, "root", "proxy")


def start_squid(
    supervisor: Supervisor, base: Path, *, password: str, acronis_port: int, controller_port: int
) -> tuple[int, Path]:
    """A foreground squid (-N: no daemon, no SMP kids) with basic auth; returns (port, its directory)."""
    directory = owned_dir(base / "squid", "proxy")
    port = free_port()
    conf = squid_conf(directory, port=port, acronis_port=acronis_port, controller_port=controller_port)
    write_password_file(directory / "passwd", PROXY_USER, password)
    binary = find_binary("squid") or "squid"
    check = subprocess.run(
        [binary, "-k", "parse", "-f", str(conf)], capture_output=True, text=True, timeout=20
    )
    assert check.returncode == 0, f"squid -k parse failed:\n{check.stderr[-2000:]}"
    supervisor.start("squid", [binary, "-N", "-d", "1", "-f", str(conf)], ready_port=("127.0.0.1", port))
    return port, directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
