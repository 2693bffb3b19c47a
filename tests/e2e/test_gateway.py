"""The stack in gateway mode (``scripts/run --gateway jwt``): the endpoint fetches the identity provider's
JWKS through the outbound mitmdump, the gateway simulator's callbacks go through the inbound one, and
Acronis' verification (the three Authorization checks, the mirroring and mapping checklists) passes."""

from __future__ import annotations

import datetime as dt
import io
import shlex
import subprocess
import sys
import time

import pytest
import requests

from simulators.devstack import components
from simulators.devstack.layout import GATEWAY_LOGIN, REPO
from simulators.devstack.summary import print_summary
from tests.e2e.conftest import Rig, wait_until

REFETCH_INTERVAL = 60.0  # an unknown kid makes the endpoint refetch at most once a minute


Run = subprocess.CompletedProcess[str]


def ok(result: Run, summary: str) -> None:
    assert result.returncode == 0 and summary in result.stdout, result.stdout + result.stderr


def admin(rig: Rig) -> list[str]:
    return ["--login", "admin", "--password-file", str(rig.stack.files.admin_password)]


def users_read(rig: Rig, *extra: str) -> Run:
    return rig.gateway("callback", "vendor.app.users_read.v1.0", *admin(rig), *extra)


def wait_for_refetch_window(rig: Rig) -> None:
    """Let a minute pass since the endpoint's last key fetch, so an unknown kid may refetch again."""
    fetches = rig.jwks_fetches()
    if fetches:
        last = dt.datetime.fromisoformat(fetches[-1]["ts"]).timestamp()
        time.sleep(max(0.0, last + REFETCH_INTERVAL + 1 - time.time()))


def wait_for_fetches(rig: Rig, count: int) -> None:
    wait_until(lambda: len(rig.jwks_fetches()) >= count, 30, f"{count} JWKS fetches in the audit log")


def test_the_keys_come_through_the_outbound_proxy(gateway_rig: Rig) -> None:
    rig = gateway_rig
    wait_until(lambda: bool(rig.jwks_fetches()), 30, "the endpoint's first JWKS fetch")
    fetch = rig.jwks_fetches()[0]
    assert (fetch["scheme"], fetch["port"], fetch["status"], fetch["answered_by"]) == (
        "https",
        443,
        200,
        "stand-in",
    )
    assert any(x["method"] == "CONNECT" and x["host"] == "acronis.cloud" for x in rig.audit())
    served = [r for r in rig.received()["requests"] if r["endpoint"] == "jwks"]
    assert len(served) == len(rig.jwks_fetches())  # every key fetch the simulator saw passed the proxy
    assert {line["host"] for line in rig.audit()} <= {
        "eu8-cloud.acronis.com",
        "controller.example.net",
        "acronis.cloud",
    }


def test_the_printed_gateway_call_works(gateway_rig: Rig) -> None:
    out = io.StringIO()
    print_summary(gateway_rig.options, gateway_rig.stack.files, out)
    lines = out.getvalue().replace("\\\n", " ").splitlines()
    command = next(line.strip() for line in lines if "simulators.gateway" in line and "users_read" in line)
    argv = shlex.split(command)
    argv[0] = sys.executable  # the printed command names .venv/bin/python
    call = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert call.returncode == 0 and "users_read_success" in call.stdout, call.stdout + call.stderr
    inbound = [line for line in gateway_rig.audit("inbound-audit.jsonl") if line["path"] == "/callback"]
    headers = inbound[-1]["req_headers"]
    assert inbound[-1]["status"] == 200 and headers["Authorization"] == "[redacted]"
    assert headers["X-CyberApp-Auth"] == "[redacted]" and headers["X-CyberApp-Extra"] == "e30="


@pytest.mark.parametrize(
    "token",
    ["missing", "corrupt", "other-app"],
    ids=["acronis-check-1-no-bearer", "acronis-check-2-corrupted-token", "acronis-check-3-another-cyberapp"],
)
def test_acronis_verification_authorization_check(gateway_rig: Rig, token: str) -> None:
    result = users_read(gateway_rig, "--token", token)
    assert result.returncode == 1 and result.stdout.startswith("HTTP 401"), result.stdout
    assert "Authentication failed." in result.stdout


def test_every_broken_token_is_refused_then_a_valid_one_succeeds(gateway_rig: Rig) -> None:
    state = str(gateway_rig.stack.files.gateway_state)
    ok(gateway_rig.gateway("scenario", "authorization", "--state", state, *admin(gateway_rig)), "9/9 steps")


def test_an_oauth_signed_callback_is_refused_while_aps_routes_stay_oauth(gateway_rig: Rig) -> None:
    result = gateway_rig.callback_users_read()
    assert result.returncode == 1 and "HTTP 401" in result.stdout, result.stdout + result.stderr
    state = str(gateway_rig.stack.files.root / "controller-sim-state.json")
    ok(gateway_rig.controller("scenario", "create-instance", "--state", state), "1/1 steps as expected")


def test_mirroring_checklist_through_the_stack(gateway_rig: Rig) -> None:
    state = str(gateway_rig.stack.files.gateway_state)
    ok(gateway_rig.gateway("scenario", "mirroring", "--state", state), "mirroring: 11/11 steps as expected")
    ok(gateway_rig.gateway("scenario", "mirroring", "--state", state), "mirroring: 11/11 steps as expected")


def test_mapping_through_the_stack(gateway_rig: Rig) -> None:
    files = gateway_rig.stack.files
    partner = ["--login", GATEWAY_LOGIN, "--password-file", str(files.gateway_password)]
    ok(
        gateway_rig.gateway("scenario", "mapping", "--state", str(files.gateway_state), *partner),
        "mapping: 12/12 steps as expected",
    )
    assert "users_read_success" in users_read(gateway_rig).stdout


def test_an_unknown_kid_is_refused_with_one_refetch_a_minute(gateway_rig: Rig) -> None:
    """The "unknown kid" fault: the gateway signs with a key the JWKS does not list."""
    rig = gateway_rig
    wait_for_refetch_window(rig)
    before = len(rig.jwks_fetches())
    assert rig.jwks("withhold").returncode == 0
    try:
        assert users_read(rig).stdout.startswith("HTTP 401")  # and the endpoint refetches once...
        wait_for_fetches(rig, before + 1)
        assert users_read(rig).stdout.startswith("HTTP 401")  # ...the kid is still unknown...
        time.sleep(1)
        assert len(rig.jwks_fetches()) == before + 1  # ...and no second refetch within the minute
    finally:
        assert rig.jwks("publish").returncode == 0


def test_a_rotated_key_is_fetched_once_then_accepted(gateway_rig: Rig) -> None:
    """A new signing key the endpoint has not fetched: the first token naming it is refused and makes the
    endpoint refetch (at most once a minute); from then on the new key verifies, and so does the old one."""
    rig = gateway_rig
    wait_for_refetch_window(rig)
    before = len(rig.jwks_fetches())
    assert rig.jwks("rotate").returncode == 0
    assert users_read(rig).stdout.startswith("HTTP 401")
    wait_for_fetches(rig, before + 1)
    assert rig.jwks_fetches()[-1]["status"] == 200
    wait_until(lambda: "users_read_success" in users_read(rig).stdout, 10, "the rotated key to verify")
    assert len(rig.jwks_fetches()) == before + 1


def test_jwks_down_keeps_the_last_good_keys(gateway_rig: Rig) -> None:
    assert gateway_rig.jwks("down").returncode == 0
    try:
        assert "users_read_success" in users_read(gateway_rig).stdout
    finally:
        assert gateway_rig.jwks("up").returncode == 0


def test_the_simulator_never_saw_a_direct_key_fetch(gateway_rig: Rig) -> None:
    served = [r for r in gateway_rig.received()["requests"] if r["endpoint"] == "jwks"]
    assert served and len(served) == len(gateway_rig.jwks_fetches())
    proxy = f"http://127.0.0.1:{gateway_rig.options.outbound_port}"
    session = requests.Session()
    session.trust_env = False
    blocked = session.get("http://eu8.acronis.cloud/api/idp/v1/keys", proxies={"http": proxy}, timeout=10)
    assert blocked.status_code == 403  # only the identity provider's exact name is allowed


def test_jwks_down_at_start_gives_503_until_the_keys_arrive(gateway_rig: Rig) -> None:
    """The endpoint restarts while the JWKS is down: gateway calls get 503 (OAuth routes are unaffected);
    the key store retries every minute, and once a fetch succeeds the calls verify again."""
    rig, stack = gateway_rig, gateway_rig.stack
    assert rig.jwks("down").returncode == 0
    try:
        stack.stop("endpoint")
        stack.start(components.endpoint(rig.options, stack.files))
        wait_until(lambda: rig.jwks_fetches()[-1]["status"] == 503, 30, "the failed start-up fetch")
        refused = users_read(rig)
        assert refused.stdout.startswith("HTTP 503"), refused.stdout
        state = str(stack.files.root / "controller-sim-state.json")
        ok(rig.controller("scenario", "create-instance", "--state", state), "1/1 steps as expected")
    finally:
        assert rig.jwks("up").returncode == 0
    wait_until(lambda: rig.jwks_fetches()[-1]["status"] == 200, 90, "the key store's retry")
    assert "users_read_success" in users_read(rig).stdout
