"""Parsing request bodies for both protocols: a strict JSON object, then a JSON Schema with readable errors.

Neutral ground: the callbacks (endpoint/callbacks/) and the APS routes (endpoint/aps/) build on it; nothing
here knows a protocol or a handler (tests/test_layout.py keeps it so).
"""
