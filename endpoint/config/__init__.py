"""Configuration: the TOML file, CONNECTOR_* variables and flags read into one frozen Settings.

loader.py coerces values into section dataclasses (ConfigError names the key), sections.py holds the
service's own sections, settings.py gathers every section and reads them (load_settings).
"""
