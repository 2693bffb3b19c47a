"""JSON Schemas of the callback envelope and the payloads of the mapped and custom callbacks."""

from __future__ import annotations

from typing import Any

from endpoint.parsing.schemas import (
    CTI,
    EMAIL,
    LOGIN,
    NAME,
    UUID,
    closed_object,
    formatted_string,
)

ENVELOPE_SCHEMA: dict[str, Any] = {
    **closed_object(
        {
            "type": CTI,
            "request_id": UUID,
            "created_at": formatted_string("date-time", 64),
            "context": {
                "type": "object",
                "required": ["callback_id", "endpoint_id", "tenant_id"],
                # Acronis owns this object and may add fields: tolerated, but bounded and never read.
                "maxProperties": 16,
                "properties": {
                    "callback_id": CTI,
                    "endpoint_id": CTI,
                    "tenant_id": UUID,
                    "datacenter_url": formatted_string("https-url", 255),
                },
                "additionalProperties": {"type": ["string", "number", "boolean", "null"], "maxLength": 1024},
            },
            "payload": {"type": "object", "maxProperties": 64},
        },
        required=("type", "request_id", "created_at", "context"),
    ),
    "$schema": "https://json-schema.org/draft/2020-12/schema",
}

EMPTY_PAYLOAD = closed_object({})
ENABLEMENT_WRITE_PAYLOAD = closed_object(
    {"vendor_tenant_id": UUID, "acronis_tenant_id": UUID}, required=("vendor_tenant_id", "acronis_tenant_id")
)
MAPPING_WRITE_PAYLOAD = closed_object(
    {
        "modified": {
            "type": "array",
            "maxItems": 1000,
            "items": closed_object(
                {
                    "vendor_tenant_id": UUID,
                    "acronis_tenant_id": {"type": "string", "format": "uuid-or-empty"},
                },
                required=("vendor_tenant_id",),
            ),
        }
    },
    required=("modified",),
)
USER_WRITE_PAYLOAD = closed_object(
    {"login": LOGIN, "name": NAME, "email": EMAIL}, required=("login", "name", "email")
)
USER_UPDATE_PAYLOAD = closed_object(
    {"id": UUID, "name": NAME, "email": EMAIL}, required=("id", "name", "email")
)
USER_ID_PAYLOAD = closed_object({"id": UUID}, required=("id",))
