"""Outbound traffic: the single proxy-routed session, the Acronis API client and the controller client."""
