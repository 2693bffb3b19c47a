"""Command lines of the stack's processes: the right addons, allowlist, stand-ins and a clean environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.devstack import components
from simulators.devstack.layout import StackFiles, StackOptions
from simulators.devstack.supervisor import StackError

OPTIONS, FILES = StackOptions(), StackFiles(Path("/data"))


def settings_of(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]


def test_outbound_proxy_audits_allows_and_routes_only_the_two_hosts() -> None:
    proxy = components.outbound_proxy(OPTIONS, FILES, ("503@*?rate=0.5",))
    sets = settings_of(proxy.argv)
    assert {"audit_allow=eu8-cloud.acronis.com:443", "audit_allow=controller.example.net:6308"} <= set(sets)
    assert "standins=eu8-cloud.acronis.com:443=http://127.0.0.1:9101" in sets
    assert "standins=controller.example.net:6308=http://127.0.0.1:9102" in sets
    assert "faults=503@*?rate=0.5" in sets and "confdir=/data/mitm" in sets
    scripts = [proxy.argv[i + 1] for i, arg in enumerate(proxy.argv) if arg == "-s"]
    assert [Path(s).name for s in scripts] == ["audit.py", "standins.py", "faults.py"]
    assert proxy.ready_port == ("127.0.0.1", 8081)


def test_inbound_proxy_is_a_reverse_proxy_in_front_of_the_endpoint() -> None:
    proxy = components.inbound_proxy(OPTIONS, FILES)
    assert proxy.argv[proxy.argv.index("--mode") + 1] == "reverse:http://127.0.0.1:8080@8443"
    assert "inbound_controller_uri=https://controller.example.net:6308/" in settings_of(proxy.argv)


def test_worker_gets_the_simulator_secret_by_environment_only() -> None:
    worker = components.worker(OPTIONS, FILES)
    assert worker.env == {components.SECRET_ENV: components.SIM_CLIENT_SECRET}
    assert components.SIM_CLIENT_SECRET not in " ".join(worker.argv)


def test_child_environment_drops_proxy_and_ca_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://elsewhere:1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/tmp/ca.pem")
    env = components.child_env({"EXTRA": "1"})
    assert "HTTPS_PROXY" not in env and "REQUESTS_CA_BUNDLE" not in env and env["EXTRA"] == "1"


def test_missing_mitmproxy_environment_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(components, "MITMDUMP", tmp_path / "nope" / "mitmdump")
    with pytest.raises(StackError, match="scripts/setup"):
        components.require_mitmdump()


def test_waiting_for_the_ca_times_out_clearly(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="mitmproxy CA"):
        components.wait_for_ca(StackFiles(tmp_path), timeout=0.1)


def test_gateway_mode_routes_and_allows_the_identity_provider_and_keeps_the_keys() -> None:
    options = StackOptions(gateway="jwt")
    sets = settings_of(components.outbound_proxy(options, FILES).argv)
    assert (
        "audit_allow=acronis.cloud:443" in sets and "standins=acronis.cloud:443=http://127.0.0.1:9101" in sets
    )
    assert "audit_allow=eu8-cloud.acronis.com:443" in sets  # the data center stays allowed
    assert "acronis.cloud:443" not in " ".join(settings_of(components.outbound_proxy(OPTIONS, FILES).argv))
    simulator = components.acronis_simulator(options, FILES).argv
    assert simulator[simulator.index("--keys-dir") + 1] == "/data/acronis-keys"
    assert "--keys-dir" not in components.acronis_simulator(OPTIONS, FILES).argv


def test_web_runs_mitmweb_with_its_flow_browser_on_its_own_port() -> None:
    options = StackOptions(web=True, inbound_web_port=9444, outbound_web_port=9082)
    outbound, inbound = components.outbound_proxy(options, FILES), components.inbound_proxy(options, FILES)
    for proxy, port in ((outbound, "9082"), (inbound, "9444")):
        assert Path(proxy.argv[0]).name == "mitmweb" and "--no-web-open-browser" in proxy.argv
        assert proxy.argv[proxy.argv.index("--web-port") + 1] == port
        assert proxy.argv[proxy.argv.index("--web-host") + 1] == "127.0.0.1"
    assert outbound.ready_port == ("127.0.0.1", 8081)  # the proxy port, as with mitmdump
    assert Path(components.outbound_proxy(OPTIONS, FILES).argv[0]).name == "mitmdump"


def test_the_controller_simulator_reads_accounts_slowly() -> None:
    argv = components.controller_simulator(OPTIONS, FILES).argv
    assert float(argv[argv.index("--account-delay") + 1]) == components.ACCOUNT_DELAY


@pytest.mark.parametrize(("version", "token"), [("11.0.2", False), ("11.1.0", True), ("12.1.1", True)])
def test_whether_mitmweb_asks_for_a_login_token(tmp_path: Path, version: str, token: bool) -> None:
    site = tmp_path / "lib" / "python3.12" / "site-packages"
    (site / f"mitmproxy-{version}.dist-info").mkdir(parents=True)
    assert components.mitmproxy_version(tmp_path) == tuple(map(int, version.split(".")))
    assert components.mitmweb_asks_for_a_token(tmp_path) is token
    assert not components.mitmweb_asks_for_a_token(tmp_path / "nothing-installed")
