"""``bootstrap.py register``: POST the filled instance document to <controller>/aps/2/applications.

Provider staff credentials: an ``APS-Token`` (what apsconnect-cli sends) or a staff OAuth key, both read
from environment variables, never from flags. It goes out through the configured outbound session (the
egress proxy); TLS verification stays on, with a configurable CA bundle for a private controller CA. The
returned instance id is stored next to the document (``<document>.registration.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1
from requests_oauthlib import OAuth1

from endpoint.aps.headers import controller_base
from endpoint.config.settings import Settings
from endpoint.provisioning.instance import read_instance_document, write_instance_document
from models.db import utcnow
from proxy.controller import controller_message, controller_url
from proxy.errors import ConnectorError
from proxy.session import build_session

DEFAULT_TOKEN_ENV = "APS_TOKEN"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--controller", required=True, help="controller base URL, e.g. https://apsc:6308/")
    parser.add_argument(
        "--instance-json", default="var/app_instance.json", help="the filled document to POST"
    )
    add_controller_access(parser)
    parser.add_argument("--timeout", type=float, default=60.0, help="read timeout; instance creation is slow")


def add_controller_access(parser: argparse.ArgumentParser) -> None:
    """The options of every command that calls the controller: provider credentials, CA, http."""
    parser.add_argument(
        "--token-env",
        default=DEFAULT_TOKEN_ENV,
        help=f"variable holding the APS-Token (default {DEFAULT_TOKEN_ENV})",
    )
    parser.add_argument("--oauth-key", help="provider staff OAuth key (instead of an APS-Token)")
    parser.add_argument("--oauth-secret-env", help="variable holding that staff OAuth secret")
    parser.add_argument(
        "--ca-bundle", help="CA bundle for the controller's certificate (verification stays on)"
    )
    parser.add_argument(
        "--allow-http", action="store_true", help="APS development mode: an http:// controller"
    )


def _auth(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[dict[str, str], OAuth1 | None]:
    """:raise ValueError: no usable credentials."""
    if args.oauth_key:
        secret = environ.get(args.oauth_secret_env or "")
        if not secret:
            raise ValueError("--oauth-key needs --oauth-secret-env naming a set variable")
        return {}, OAuth1(args.oauth_key, client_secret=secret, signature_method=SIGNATURE_HMAC_SHA1)
    token = environ.get(args.token_env)
    if not token:
        raise ValueError(f"no provider credentials: set {args.token_env} (APS-Token) or use --oauth-key")
    return {"APS-Token": token}, None


def send_json(
    command: str,
    method: str,
    url: str,
    body: Any,
    args: argparse.Namespace,
    settings: Settings,
    environ: Mapping[str, str],
) -> requests.Response | int:
    """``body`` as JSON to the controller through the outbound session, with the provider's credentials
    (``_auth``) and ``--ca-bundle``; or, after one line on stderr, the exit code: 2 for the proxy settings,
    3 when the controller cannot be reached."""
    headers, auth = _auth(args, environ)
    proxy = settings.proxy
    if args.ca_bundle:
        proxy = dataclasses.replace(proxy, ca_bundle=args.ca_bundle)
    try:
        session = build_session(proxy, environ)
    except ConnectorError as e:
        print(f"{command}: {e}", file=sys.stderr)
        return 2
    try:
        return session.request(
            method,
            url,
            data=json.dumps(body).encode("utf-8"),
            headers={**headers, "Content-Type": "application/json", "Accept": "application/json"},
            auth=auth,
            timeout=(proxy.connect_timeout, args.timeout),
            allow_redirects=False,
        )
    except ConnectorError as e:
        print(f"{command}: {e}", file=sys.stderr)
        return 3
    except requests.RequestException as e:
        print(f"{command}: cannot reach {urlsplit(url).netloc}: {type(e).__name__}", file=sys.stderr)
        return 3
    finally:
        session.close()


def run(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    path = Path(args.instance_json)
    document = read_instance_document(path)
    if document is None or "auth" not in document.get("aps", {}):
        raise ValueError(f"{path}: no filled instance document; run bootstrap.py init first")
    base = controller_base(args.controller, development_mode=args.allow_http)
    url = controller_url(base, "aps/2/applications")
    response = send_json("register", "POST", url, document, args, settings, environ)
    if isinstance(response, int):
        return response
    if not 200 <= response.status_code < 300:
        message = controller_message(response.text)
        print(
            f"register: the controller refused the registration (HTTP {response.status_code}): {message}",
            file=sys.stderr,
        )
        return 1
    instance_id = _instance_id(response)
    record = {"controller": base, "instance_id": instance_id, "registered_at": utcnow().isoformat() + "Z"}
    write_instance_document(path.with_name(path.name + ".registration.json"), record)
    print(f"registered with {base}: application instance {instance_id or '(id not returned)'}")
    return 0


def _instance_id(response: requests.Response) -> str | None:
    """apsconnect-cli reads app.aps.id; fall back to the top-level aps.id."""
    try:
        body: Any = response.json()
    except ValueError:
        return None
    for path in (("app", "aps", "id"), ("aps", "id")):
        node = body
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str):
            return node
    return None
