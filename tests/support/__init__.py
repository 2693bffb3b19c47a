"""Helpers shared by the test packages (and bench/): builders, databases, live servers and processes.

Kept free of project imports at package level: tests/proxy/mitm/ imports proxy_variables from .venv-mitm.
"""
