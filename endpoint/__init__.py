"""Connector endpoint: settings, the signed Tornado service, callback and APS services, the outbox worker."""
