"""Helpers shared by the test packages (and bench/): builders (rows, APS instances, callback envelopes and a
tenant tree, a two-partner tenancy), databases, a stub transport for requests, live servers and processes.

Kept free of project imports at package level: tests/proxy/mitm/ imports proxy_variables from .venv-mitm.
"""
