"""The operator's command line: ``connector`` / ``python -m endpoint`` (cli.py: the verb table, shared flags,
errors as one or two lines and an exit code via problems.py), the verbs that have no package of their own
(doctor.py, migrate.py), and the generator of docs/configuration.md (docgen.py, docgen_notes.py)."""
