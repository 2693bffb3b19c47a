"""``python -m simulators.controller ...``: see simulators.controller.cli."""

import sys

from simulators.controller.cli import main

sys.exit(main())
