"""The local development stack behind the README's run command (`connector stack`): it starts the endpoint,
its proxies and the simulators as processes. It ships with the simulators, not the runtime: unlike the rest
of simulators/ it imports endpoint/ (demo data, settings), and endpoint/ names it only in its verb table."""
