"""Acronis CyberApp callbacks below HTTP: envelope parsing, catalogue, services and the request ledger."""
