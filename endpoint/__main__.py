"""``python -m endpoint serve|migrate|push|outbox ...``: see endpoint.commands.cli."""

import sys

from endpoint.commands.cli import main

sys.exit(main())
