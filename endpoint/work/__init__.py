"""Where blocking work runs off the IOLoop: the database runner (executors.py: a unit of work inline or on
its thread pool, a lost connection as a 503) and the periodic purges the server runs on it (maintenance.py).
"""
