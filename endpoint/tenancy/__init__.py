"""Tenancy: organizations, their subtrees, users and tenant mappings -- the domain both protocols act on.

The callbacks (endpoint/callbacks/) and the APS routes (endpoint/aps/) call these functions inside their
units of work. Nothing here knows a protocol, a handler or a payload (tests/test_layout.py keeps it so).
"""
