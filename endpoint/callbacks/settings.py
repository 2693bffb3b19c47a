"""The ``callbacks`` settings section: which optional callback families this CyberApp serves."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Organization ids are UUIDs (models/db.py new_id); not schemas.UUID_RE, to keep jsonschema out of settings.
_ORG_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII)


@dataclass(frozen=True, slots=True)
class CallbacksSettings:
    """Optional callback families: mirrored enablement (CyberApp v2) and where its partners go."""

    # Mirrored enablement (CyberApp v2, the five partner/customer.mirroring callbacks). Off: they are
    # unknown callbacks (400 after authentication), as before.
    mirroring: bool = False
    # The id (a UUID, as `connector init` prints it) of the vendor partner organization under which the
    # partner organizations mirrored for Acronis partners are created; required with mirroring (the root
    # partner is the usual choice). `connector doctor` checks that it names a partner organization.
    mirrored_partners_parent: str = ""

    def __post_init__(self) -> None:
        if self.mirrored_partners_parent and not _ORG_ID.fullmatch(self.mirrored_partners_parent):
            raise ValueError("mirrored_partners_parent: must be an organization id (a UUID)")
        if self.mirroring and not self.mirrored_partners_parent:
            raise ValueError(
                "mirrored_partners_parent: required with mirroring on (the id of the vendor partner "
                "organization mirrored partners go under, e.g. the root partner `connector init` created)"
            )
