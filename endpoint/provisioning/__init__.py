"""Setup-time work used by bootstrap.py: tenancy data, demo data, OAuth consumers, the instance document."""
