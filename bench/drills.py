"""Fault drills (issue 13): kill -9 under write load, and a database restart under load.

    .venv/bin/python -m bench.drills kill                   # PostgreSQL (127.0.0.1:5432), 2 workers, 20 kills
    .venv/bin/python -m bench.drills kill --kills 3         # a short run while developing
    .venv/bin/python -m bench.drills restart                # a PostgreSQL cluster of its own, 2 restarts
    .venv/bin/python -m bench.drills all

Each drill prints its numbers and a PASS/FAIL line per requirement (bench/kill_drill.py,
bench/restart_drill.py) and exits 1 when one fails. A drill whose PostgreSQL is unavailable says so and is
skipped. Processes and databases are removed afterwards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench import kill_drill, restart_drill
from bench import signed_traffic as st
from bench.callback_data import seeded_database
from bench.processes import free_port
from tests.support.databases import unreachable_reason


def kill(args: argparse.Namespace) -> int:
    why = unreachable_reason("postgresql")
    if why:
        print(f"SKIP  kill -9 drill: {why}")
        return 0
    with tempfile.TemporaryDirectory(prefix="drill-") as tmp, st.controller(Path(tmp)) as (sim, ca):
        with seeded_database("postgresql", Path(tmp)) as url:
            st.prepare(url, sim.url)
            log = Path(tmp) / "endpoint.log"
            endpoint = st.Endpoint(url, free_port(), args.workers, log, kill_drill.settings(ca))
            endpoint.start()
            try:
                return kill_drill.run(url, endpoint, sim.url, args)
            finally:
                endpoint.stop()
                print(kill_drill.log_summary(log))
                st.keep_log(log, args.log_dir, "kill-endpoint.log")


def restart(args: argparse.Namespace) -> int:
    why = unreachable_reason("postgresql")
    if why and "psycopg2" in why:
        print(f"SKIP  database restart drill: {why}")
        return 0
    return restart_drill.run(args)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("drill", choices=("kill", "restart", "all"))
    parser.add_argument("--workers", type=int, default=2, help="endpoint processes (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="client connections (default 16)")
    parser.add_argument("--seed", type=int, help="random seed (kill moments and victims, request mix)")
    parser.add_argument("--log-dir", help="keep the endpoint's (and the drill cluster's) logs here")
    kill_drill.add_arguments(parser.add_argument_group("kill -9"))
    restart_drill.add_arguments(parser.add_argument_group("database restart"))
    args = parser.parse_args()
    st.become_subreaper()
    codes = []
    if args.drill in ("kill", "all"):
        codes.append(kill(args))
    if args.drill in ("restart", "all"):
        codes.append(restart(args))
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
