"""``python -m simulators.gateway ...``: see simulators.gateway.cli."""

import sys

from simulators.gateway.cli import main

sys.exit(main())
