"""``python -m endpoint serve|migrate|push|outbox ...``: see endpoint.cli."""

import sys

from endpoint.cli import main

sys.exit(main())
