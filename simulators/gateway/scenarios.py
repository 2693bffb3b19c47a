"""Named gateway scenarios: Acronis' verification checklists, sent as the gateway sends them.

- ``mirroring``: enable the partner (partner get_state, then enable), enable a customer (customer get_state,
  then set_state ``enabled``), disable the customer, disable the partner (reset) -- with a read after every
  write, and the customer list refused once the partner is off.
- ``mapping``: enable the partner with its credentials (enablement read, write), map one of its customers,
  unmap it, disable the partner (reset) -- the partner ends unmapped, as it started.
- ``authorization``: the three Authorization checks (no Bearer, a corrupted token, a valid token for another
  CyberApp) and the other broken tokens each get 401; then a valid token succeeds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from simulators.gateway import envelopes as cb
from simulators.gateway.run import GatewayRun, all_of, no_payload, payload_of, response_type
from simulators.gateway.tokens import TOKEN_KINDS


def _state_is(expected: str) -> Callable[[Any], str | None]:
    def check(answer: Any) -> str | None:
        payload = payload_of(answer)
        state = payload.get("state") if isinstance(payload, dict) else None
        return None if state == expected else f"state {state!r}, wanted {expected}"

    return check


def _customers(answer: Any) -> dict[str, dict[str, Any]] | None:
    """customer get_state's array, by Acronis tenant id (None: not an array)."""
    items = payload_of(answer)
    if not isinstance(items, list):
        return None
    return {item.get("acronis_tenant_id"): item for item in items if isinstance(item, dict)}


def _customer_listed(tenant: str, listed: bool) -> Callable[[Any], str | None]:
    def check(answer: Any) -> str | None:
        customers = _customers(answer)
        if customers is None:
            return "the payload is not an array"
        if (tenant in customers) != listed:
            return f"customer {tenant} {'missing' if listed else 'still listed'}"
        if listed and not isinstance(customers[tenant].get("vendor_tenant_id"), str):
            return "no vendor_tenant_id for the customer"
        return None

    return check


def mirroring(run: GatewayRun) -> None:
    name = "mirroring"
    partner = run.state.setdefault("mirrored_partner_tenant", str(uuid.uuid4()))
    customer = run.state.setdefault("mirrored_customer_tenant", str(uuid.uuid4()))
    partner_name, customer_name = f"Mirrored Partner {partner[:8]}", f"Mirrored Customer {customer[:8]}"

    def call(step: str, callback: str, payload: Any = None, **options: Any) -> Any:
        return run.call(name, step, callback, payload, tenant_id=partner, **options)

    ok = response_type
    call("enable partner", cb.PARTNER_GET_STATE, check=_state_is("DISABLED"))
    enabled = call(
        "enable partner",
        cb.PARTNER_ENABLE,
        {"acronis_tenant_id": partner, "acronis_tenant_name": partner_name},
        check=all_of(ok("~a.p.partner.mirroring.enable.ok.v1.0"), _state_is("ENABLED"), _same_vendor(run)),
    )
    if enabled.ok:
        run.state["mirrored_partner_vendor_id"] = payload_of(enabled.body)["vendor_tenant_id"]
    call("enable partner", cb.PARTNER_GET_STATE, check=_state_is("ENABLED"))
    call("enable customer", cb.CUSTOMER_GET_STATE, check=_customer_listed(customer, False))
    enable_customer = {
        "partner_tenant_id": partner,
        "partner_tenant_name": partner_name,
        "enabled": [{"acronis_tenant_id": customer, "acronis_tenant_name": customer_name}],
    }
    set_ok = all_of(ok("~a.p.customer.mirroring.set_state.ok.v1.0"), no_payload)
    call("enable customer", cb.CUSTOMER_SET_STATE, enable_customer, check=set_ok)
    call("enable customer", cb.CUSTOMER_GET_STATE, check=_customer_listed(customer, True))
    disable_customer = {
        "partner_tenant_id": partner,
        "partner_tenant_name": partner_name,
        "disabled": [{"acronis_tenant_id": customer}],
    }
    call("disable customer", cb.CUSTOMER_SET_STATE, disable_customer, check=set_ok)
    call("disable customer", cb.CUSTOMER_GET_STATE, check=_customer_listed(customer, False))
    reset_ok = all_of(ok("~a.p.partner.mirroring.reset.ok.v1.0"), no_payload)
    call("disable partner", cb.PARTNER_RESET, check=reset_ok)
    call("disable partner", cb.PARTNER_GET_STATE, check=_state_is("DISABLED"))
    call("disable partner", cb.CUSTOMER_GET_STATE, expected=409)


def _same_vendor(run: GatewayRun) -> Callable[[Any], str | None]:
    """enable answers the same vendor id every time, and its acronis_tenant_id is the partner's."""

    def check(answer: Any) -> str | None:
        payload = payload_of(answer) or {}
        vendor, before = payload.get("vendor_tenant_id"), run.state.get("mirrored_partner_vendor_id")
        if not isinstance(vendor, str) or not vendor:
            return "no vendor_tenant_id string"
        if before is not None and vendor != before:
            return f"vendor_tenant_id {vendor!r} changed (was {before!r})"
        if payload.get("acronis_tenant_id") != run.state["mirrored_partner_tenant"]:
            return "acronis_tenant_id is not the partner's"
        return None

    return check


def _mapped(acronis: str | None) -> Callable[[Any], str | None]:
    """enablement.read: mapped to ``acronis`` (None: not mapped)."""

    def check(answer: Any) -> str | None:
        payload = payload_of(answer) or {}
        if not payload.get("vendor_tenant_id"):
            return "no vendor_tenant_id"
        found = payload.get("acronis_tenant_id")
        return None if found == acronis else f"acronis_tenant_id {found!r}, wanted {acronis!r}"

    return check


def _mapping_of(vendor: str, acronis: str | None) -> Callable[[Any], str | None]:
    """tenant_mapping.read lists ``vendor``, mapped to ``acronis`` (None: listed unmapped)."""

    def check(answer: Any) -> str | None:
        items = (payload_of(answer) or {}).get("items")
        rows = [item for item in items or [] if item.get("vendor_tenant_id") == vendor]
        if len(rows) != 1:
            return f"customer {vendor} listed {len(rows)} times"
        found = rows[0].get("acronis_tenant_id")
        return None if found == acronis else f"acronis_tenant_id {found!r}, wanted {acronis!r}"

    return check


def mapping(run: GatewayRun) -> None:
    name = "mapping"
    if run.cyberapp_auth is None:
        run.fail(name, "enable", "the mapped callbacks need the partner's credentials (--login)")
        return
    partner = run.state.setdefault("mapped_partner_tenant", str(uuid.uuid4()))
    customer_tenant = run.state.setdefault("mapped_customer_tenant", str(uuid.uuid4()))

    def call(step: str, callback: str, payload: Any = None, **options: Any) -> Any:
        return run.call(name, step, callback, payload, tenant_id=partner, credentials=True, **options)

    read = call("enable", "a.p.enablement.read.v1.0", check=_mapped(None))
    org = (payload_of(read.body) or {}).get("vendor_tenant_id")
    if not read.ok or not org:
        run.fail(name, "enable", "enablement.read gave no vendor_tenant_id")
        return
    write = {"vendor_tenant_id": org, "acronis_tenant_id": partner}
    call("enable", "a.p.enablement.write.v1.0", write, check=no_payload)
    call("enable", "a.p.enablement.read.v1.0", check=_mapped(partner))
    topology = call("map", "a.p.topology.read.v1.0", {})
    items = (payload_of(topology.body) or {}).get("items") or []
    if not items:
        run.fail(name, "map", "topology.read listed no customer to map")
    else:
        vendor = items[0]["id"]
        call("map", "a.p.tenant_mapping.read.v1.0", check=_mapping_of(vendor, None))
        mapped = {"modified": [{"vendor_tenant_id": vendor, "acronis_tenant_id": customer_tenant}]}
        call("map", "a.p.tenant_mapping.write.v1.0", mapped, check=no_payload)
        call("map", "a.p.tenant_mapping.read.v1.0", check=_mapping_of(vendor, customer_tenant))
        unmapped = {"modified": [{"vendor_tenant_id": vendor}]}
        call("unmap", "a.p.tenant_mapping.write.v1.0", unmapped, check=no_payload)
        call("unmap", "a.p.tenant_mapping.read.v1.0", check=_mapping_of(vendor, None))
    call("disable", "a.p.enablement.reset.v1.0", check=no_payload)
    call("disable", "a.p.enablement.read.v1.0", check=_mapped(None))
    call("disable", "a.p.tenant_mapping.read.v1.0", expected=409)


def authorization(run: GatewayRun) -> None:
    """Against enablement.read with credentials (--login), else against partner.mirroring.get_state."""
    name = "authorization"
    tenant = run.state.setdefault("authorization_tenant", str(uuid.uuid4()))
    mapped = run.cyberapp_auth is not None
    callback = "a.p.enablement.read.v1.0" if mapped else cb.PARTNER_GET_STATE
    for kind in (k for k in TOKEN_KINDS if k != "valid"):
        run.call(name, kind, callback, tenant_id=tenant, expected=401, token_kind=kind, credentials=mapped)
    run.call(name, "valid", callback, tenant_id=tenant, credentials=mapped)


SCENARIOS: dict[str, tuple[Callable[[GatewayRun], None], str]] = {
    "mirroring": (mirroring, "partner on, customer on, customer off, partner off (mirrored enablement)"),
    "mapping": (mapping, "partner enabled with credentials, a customer mapped and unmapped, partner reset"),
    "authorization": (authorization, "every broken token gets 401, then a valid one succeeds"),
}
