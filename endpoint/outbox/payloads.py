"""Builders that validate alerts and workloads (§3, §4) and route them to a mapped tenant on a configured DC.

Input records (spool files, the Python API) are the Acronis objects plus a routing key:

- alert: ``{"type", "category", "details": {"title", "category", "description", "fields"?},
  "ResourceID"?, "ResourceName"?}`` with ``tenantID`` (Acronis tenant) or ``organization_id`` (ours);
- workload: ``{"type", "name", "attributes"?, "enabled"?, "allowed_actions"?}`` with ``tenant_id`` or
  ``organization_id``. ``client_id`` is filled with the DC's API client id.

Spool records also carry ``"kind": "alert" | "workload"``. Anything else is rejected with PayloadError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from endpoint.config.settings import Settings
from endpoint.errors import PayloadError
from models import OrganizationMapping
from models.outbox import ALERT, WORKLOAD
from proxy.origins import normalize_datacenter_url

MAX_PAYLOAD = 64 * 1024
_NAME = r"[a-z][a-z0-9_]*"
_VER = r"\.v\d+\.\d+"
# Used with fullmatch only: "$" also matches before a final newline, so re.match("^...$") accepts "x\n".
ANY_CTI = re.compile(rf"cti\.{_NAME}(?:\.{_NAME})*{_VER}(?:~{_NAME}(?:\.{_NAME})*{_VER})*")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ALERT_FIELDS = {
    "kind",
    "organization_id",
    "tenantID",
    "type",
    "category",
    "details",
    "ResourceID",
    "ResourceName",
}
WORKLOAD_FIELDS = {
    "kind",
    "organization_id",
    "tenant_id",
    "type",
    "name",
    "attributes",
    "enabled",
    "allowed_actions",
    "client_id",
}


@dataclass(frozen=True, slots=True)
class QueuedItem:
    """A validated item ready for the outbox: where it goes and the exact JSON object to send."""

    kind: str
    tenant_id: str
    datacenter_url: str
    payload: dict[str, Any]
    source: str | None = None

    def payload_json(self) -> str:
        return json.dumps(self.payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class PayloadRules:
    """What validation needs from the settings: the app's CTI namespace and the configured DCs."""

    app_code: str
    client_ids: Mapping[str, str]  # normalized DC URL -> API client id
    default_allowed_actions: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> PayloadRules:
        return cls(
            app_code=settings.endpoint.app_code,
            client_ids={dc.key: dc.client_id for dc in settings.acronis.datacenters},
            default_allowed_actions=settings.acronis.default_allowed_actions,
        )

    def check_cti(self, record: Mapping[str, Any], key: str, prefix: str) -> None:
        """``record[key]`` must be ``<prefix>~<app_code>.<name>.v<major>.<minor>``. :raise PayloadError:"""
        pattern = rf"{re.escape(prefix)}~{re.escape(self.app_code)}\.{_NAME}{_VER}"
        value = record.get(key)
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise PayloadError(f"{key}: expected a CTI like {prefix}~{self.app_code}.<name>.v1.0")


class TenantResolver:
    """Mapping lookups for one batch of records (cached): (Acronis tenant id, DC URL) or PayloadError."""

    def __init__(self, rules: PayloadRules) -> None:
        self.rules = rules
        self._cache: dict[tuple[str, str], tuple[str, str]] = {}

    def resolve(self, record: Mapping[str, Any], tenant_key: str) -> tuple[str, str]:
        org, tenant = record.get("organization_id"), record.get(tenant_key)
        if (org is None) == (tenant is None):
            raise PayloadError(f"give exactly one of organization_id or {tenant_key}")
        key = ("org", str(org)) if org is not None else ("tenant", str(tenant))
        if key not in self._cache:
            self._cache[key] = self._lookup(key)
        return self._cache[key]

    def _lookup(self, key: tuple[str, str]) -> tuple[str, str]:
        kind, value = key
        if kind == "tenant" and not UUID.fullmatch(value):
            raise PayloadError("tenant id: not a lower-case UUID")
        field = OrganizationMapping.organization if kind == "org" else OrganizationMapping.acronis_tenant_id
        mapping = OrganizationMapping.get_or_none(field == value)
        if mapping is None:
            raise PayloadError(f"{'organization' if kind == 'org' else 'tenant'} {value!r} is not mapped")
        dc = normalize_datacenter_url(mapping.datacenter_url)
        if dc not in self.rules.client_ids:
            raise PayloadError(f"tenant {mapping.acronis_tenant_id} lives on {dc}, which is not configured")
        return mapping.acronis_tenant_id, dc


def build_alert(record: Mapping[str, Any], rules: PayloadRules, tenants: TenantResolver) -> QueuedItem:
    """:raise PayloadError: naming the first problem."""
    _known(
        record,
        ALERT_FIELDS,
        {
            "tenant_id": "alerts use tenantID (capital ID), not tenant_id",
            "resourceId": "use ResourceID",
            "resource_id": "use ResourceID",
            "resourceName": "use ResourceName",
            "resource_name": "use ResourceName",
        },
    )
    rules.check_cti(record, "type", "cti.a.p.am.alert.v1.0~a.p.basic.v1.0")
    rules.check_cti(record, "category", "cti.a.p.am.category.v1.0")
    details = record.get("details")
    if not isinstance(details, dict):
        raise PayloadError("details: required object")
    unknown = set(details) - {"title", "category", "description", "fields"}
    if unknown:
        raise PayloadError(f"details: unknown field {sorted(unknown)[0]!r}")
    for key in ("title", "category", "description"):
        if not isinstance(details.get(key), str) or not details[key].strip():
            raise PayloadError(f"details.{key}: required non-empty string")
    fields = details.get("fields", {})
    if not isinstance(fields, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
    ):
        raise PayloadError("details.fields: must be a flat object of strings")
    for key in ("ResourceID", "ResourceName"):
        if key in record and (not isinstance(record[key], str) or not record[key]):
            raise PayloadError(f"{key}: must be a non-empty string")
    tenant_id, dc = tenants.resolve(record, "tenantID")
    payload = {k: v for k, v in record.items() if k not in ("kind", "organization_id")}
    payload["tenantID"] = tenant_id
    payload["details"] = {**details, "fields": dict(fields)}
    return _sized(QueuedItem(ALERT, tenant_id, dc, payload))


def build_workload(record: Mapping[str, Any], rules: PayloadRules, tenants: TenantResolver) -> QueuedItem:
    """:raise PayloadError: naming the first problem."""
    _known(record, WORKLOAD_FIELDS, {"tenantID": "workloads use tenant_id (snake case), not tenantID"})
    rules.check_cti(record, "type", "cti.a.p.wm.workload.v1.0~a.p.wm.aspect.v1.0")
    if not isinstance(record.get("name"), str) or not record["name"].strip():
        raise PayloadError("name: required non-empty string")
    attributes = record.get("attributes", {})
    if not isinstance(attributes, dict):
        raise PayloadError("attributes: must be an object")
    enabled = record.get("enabled", True)
    if not isinstance(enabled, bool):
        raise PayloadError("enabled: must be true or false")
    actions = record.get("allowed_actions", list(rules.default_allowed_actions))
    if not isinstance(actions, list) or not all(isinstance(a, str) and ANY_CTI.fullmatch(a) for a in actions):
        raise PayloadError("allowed_actions: must be a list of action CTIs")
    tenant_id, dc = tenants.resolve(record, "tenant_id")
    client_id = rules.client_ids[dc]
    if "client_id" in record and record["client_id"] != client_id:
        raise PayloadError("client_id: must be the API client id configured for the tenant's datacenter")
    payload = {
        "type": record["type"],
        "name": record["name"],
        "attributes": attributes,
        "enabled": enabled,
        "tenant_id": tenant_id,
        "client_id": client_id,
        "allowed_actions": actions,
    }
    return _sized(QueuedItem(WORKLOAD, tenant_id, dc, payload))


def build_item(record: Any, rules: PayloadRules, tenants: TenantResolver) -> QueuedItem:
    """A spool record: ``kind`` chooses the builder. :raise PayloadError:"""
    if not isinstance(record, dict):
        raise PayloadError("each record must be a JSON object")
    kind = record.get("kind")
    if kind == ALERT:
        return build_alert(record, rules, tenants)
    if kind == WORKLOAD:
        return build_workload(record, rules, tenants)
    raise PayloadError(f'kind: must be "{ALERT}" or "{WORKLOAD}"')


def _known(record: Mapping[str, Any], allowed: set[str], hints: dict[str, str]) -> None:
    for key in sorted(set(record) - allowed):
        raise PayloadError(hints.get(key, f"unknown field {key!r}"))


def _sized(item: QueuedItem) -> QueuedItem:
    if len(item.payload_json().encode("utf-8")) > MAX_PAYLOAD:
        raise PayloadError(f"payload larger than {MAX_PAYLOAD} bytes")
    return item
